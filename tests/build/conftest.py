"""Fixtures for tests/build: see pyz_helpers.py."""

from pyz_helpers import built  # noqa: F401  (session fixture: one good archive)
