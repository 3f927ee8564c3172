"""codex-orchestrator: guarded, auditable pipelines for people and coding agents.

Importing the package has no side effects and imports nothing heavy.
"""

__version__ = "0.1.0"
