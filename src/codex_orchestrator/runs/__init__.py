"""Runs: a run's files, manifest and transitions, the engine, lifecycle, queries, retention, metrics."""
