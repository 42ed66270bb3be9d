"""Runtime source registration (issue 5)."""
