"""The Imaging Hub service: config, sources, index backends, API and CLI."""
