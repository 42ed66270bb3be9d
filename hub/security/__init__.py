"""Who is asking, and what they may see (issue 6)."""
