"""`python -m codex_orchestrator`."""

from codex_orchestrator.cli import main

if __name__ == "__main__":
    main()
