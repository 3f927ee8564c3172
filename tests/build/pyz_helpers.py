"""Helpers and fixtures for the .pyz build, audit, smoke and release tests (re-exported by conftest.py).

The archive is built once per session, offline, from a wheelhouse that `.ci/run` fills beforehand
(`python3 build/pyz --fetch-only`). The build uses a snapshot of the source tree, so edits made while the
suite runs cannot change what is being audited.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
for folder in (REPO / "build", REPO / "release"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import _build  # noqa: E402
import _pyzlib as lib  # noqa: E402
import _tools as tk  # noqa: E402

# Resolved at import time: the suite's autouse fixtures move HOME and drop CODEX_ORCHESTRATOR_* variables.
CACHE = tk.cache_root()
WHEELHOUSE = CACHE / "wheelhouse"
SDE = "1700000000"


def snapshot_source(dest: Path, origin: Path = REPO) -> Path:
    """Copy what the wheel is built from (links kept, bytecode dropped)."""
    dest.mkdir(parents=True)
    return lib.copy_source_tree(origin, dest)


def build_env() -> dict[str, str]:
    return {"CODEX_ORCHESTRATOR_BUILD_CACHE": str(CACHE), "SOURCE_DATE_EPOCH": SDE}


def require_wheelhouse() -> None:
    if not WHEELHOUSE.is_dir() or not any(WHEELHOUSE.glob("*.whl")):
        message = f"no wheelhouse at {WHEELHOUSE}: run `python3 build/pyz --fetch-only` first (needs PyPI)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@dataclass(frozen=True)
class Built:
    pyz: Path
    sha256: str
    source: Path
    version: str
    target: lib.Target


def do_build(source: Path, out: Path, target: lib.Target | None = None) -> Built:
    with pytest.MonkeyPatch.context() as mp:
        for key, value in build_env().items():
            mp.setenv(key, value)
        result = _build.build(
            target or lib.Target.host(),
            source=source,
            out_dir=out,
            wheelhouse=WHEELHOUSE,
            offline=True,
            quiet=True,
        )
    return Built(result.path, result.sha256, source, result.version, result.target)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """One good archive for the whole session (this machine's CPU and CPython minor)."""
    require_wheelhouse()
    root = tmp_path_factory.mktemp("pyz-good")
    source = snapshot_source(root / "source")
    try:
        yield do_build(source, root / "dist")
    except lib.BuildError as exc:
        pytest.fail(f"build/pyz failed: {exc.message} ({exc.hint})")
