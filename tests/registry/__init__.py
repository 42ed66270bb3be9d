"""Runtime source registration."""
