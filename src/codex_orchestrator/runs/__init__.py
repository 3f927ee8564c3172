"""Runs: a run's files, manifest and transitions, the engine, lifecycle, queries, retention, metrics."""

#: The values of `manifest.RunStatus`, for what names them without importing the manifest module: the
#: quick command line (`runs list --status`) and the MCP tool schemas. A test keeps the two equal.
RUN_STATUSES = ("queued", "in_progress", "succeeded", "failed", "cancelled")
