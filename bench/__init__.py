"""Reproducible benchmarks; run from the repository root with `python -m bench`."""
