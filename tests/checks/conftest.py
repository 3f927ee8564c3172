"""The CLI test kit's fixtures (temp targets, a fake Codex home and binary) for this folder."""

from clikit import codex_home, fake_codex, target  # noqa: F401 - re-exported fixtures
