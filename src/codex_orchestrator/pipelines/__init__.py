"""Pipelines: their model, the repository configuration, the built-in adapters, resolution."""
