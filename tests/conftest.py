"""Fixtures for the whole suite live in testkit.py, imported here so pytest registers them.

Test modules import helpers with `from testkit import ...`, never `from testkit import ...`:
tests/build has a conftest.py of its own, and the module name `conftest` is ambiguous.
"""

from testkit import (  # noqa: F401 - re-exported fixtures
    _every_manifest_is_valid,
    _isolated_env,
    clock,
    repo,
)
