"""Live federation: fetching from sources and merging their answers into the index."""
