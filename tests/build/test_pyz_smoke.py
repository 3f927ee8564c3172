"""The built .pyz runs like a user would run it: build/verify's smoke test against the session build."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import _smoke
import pytest
from pyz_helpers import REPO, Built


@pytest.mark.slow
def test_smoke_all_checks_pass(built: Built, tmp_path: Path) -> None:
    python = _smoke.find_python(built.target.python)
    assert python is not None, f"no CPython {built.target.python} to run the archive with"
    checks: list[_smoke.Check] = []
    report = _smoke.smoke(
        built.pyz, built.version, built.target, python=python, work=tmp_path, log=checks.append
    )
    failed = [str(c) for c in report.checks if not c.ok]
    assert not failed, "smoke checks failed:\n" + "\n".join(failed)
    names = " ".join(c.name for c in report.checks)
    for expected in (
        "--help",
        "self-check",
        "init codex",
        "start",
        "mcp serve",
        "HOME=/nonexistent",
        "spaces",
    ):
        assert expected in names


@pytest.mark.slow
def test_verify_command_end_to_end(built: Built) -> None:
    """`build/verify --audit-only` exit code and report; the full smoke is covered above."""
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "build" / "verify"),
            "--audit-only",
            "--source",
            str(built.source),
            str(built.pyz),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok   audit:" in out.stdout and "verify: PASSED" in out.stdout


def test_verify_missing_file_is_an_environment_error(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "build" / "verify"), str(tmp_path / "nope.pyz")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 3
    assert "does not exist" in out.stderr and "Traceback" not in out.stderr


def test_find_python_returns_a_real_interpreter() -> None:
    minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    found = _smoke.find_python(minor)
    assert found is not None and Path(found).is_file()
    assert "shims" not in found


def test_find_python_keeps_to_the_asked_c_library(monkeypatch: pytest.MonkeyPatch) -> None:
    """A musl asset is never smoked with a glibc interpreter (nor the reverse): the launcher would refuse it
    and the smoke would report a failure that says nothing about the asset."""
    import os

    if not sys.platform.startswith("linux"):
        pytest.skip("Linux only")
    minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    monkeypatch.delenv(f"CODEX_ORCHESTRATOR_PYTHON{minor.replace('.', '')}", raising=False)
    try:
        mine = "glibc" if os.confstr("CS_GNU_LIBC_VERSION") else "musl"
    except (ValueError, OSError):
        mine = "musl"
    other = "musl" if mine == "glibc" else "glibc"
    found = _smoke.find_python(minor, mine)
    assert found is not None and _smoke._probe(found) == (minor, mine, found)
    monkeypatch.setattr(_smoke, "_candidates", lambda m: [found])
    assert _smoke.find_python(minor, other) is None
    assert _smoke.find_python(minor) == found
