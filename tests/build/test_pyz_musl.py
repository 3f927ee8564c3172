"""The musllinux asset as an Alpine user runs it: built here from PyPI's musllinux wheels, audited, then
smoke-tested with a real CPython on musl 1.2.5 (scripts/install-musl-python; .ci/run names it in
CODEX_ORCHESTRATOR_MUSL_PYTHON). The glibc interpreter of this machine is refused with one sentence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import _archive as arc
import _audit
import _pyzlib as lib
import _smoke
import pytest
from pyz_helpers import Built, do_build, require_wheelhouse, snapshot_source

# Read at import time: the suite's autouse fixtures drop CODEX_ORCHESTRATOR_* variables.
MUSL_PYTHON = os.environ.get("CODEX_ORCHESTRATOR_MUSL_PYTHON", "")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def musl_built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    if not sys.platform.startswith("linux"):
        pytest.skip("musl assets run on Linux")
    if not MUSL_PYTHON:
        message = "no musl CPython: run scripts/install-musl-python and set CODEX_ORCHESTRATOR_MUSL_PYTHON"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    require_wheelhouse()
    root = tmp_path_factory.mktemp("pyz-musl")
    target = lib.Target.parse("3.11", f"musllinux_1_2_{lib.Target.host().machine}")
    try:
        yield do_build(snapshot_source(root / "source"), root / "dist", target)
    except lib.BuildError as exc:
        pytest.fail(f"build/pyz failed for {target.platform}: {exc.message} ({exc.hint})")


def test_musl_interpreter_is_what_it_claims() -> None:
    if not MUSL_PYTHON:
        pytest.skip("no musl CPython")
    probed = _smoke._probe(MUSL_PYTHON)
    assert probed is not None and probed[:2] == ("3.11", "musl")


def test_musl_asset_passes_the_audit_and_wants_new_enough_musl(musl_built: Built) -> None:
    report = _audit.audit(musl_built.pyz, version=musl_built.version, source=musl_built.source)
    assert report.ok, "\n".join(map(str, report.findings))
    with zipfile.ZipFile(musl_built.pyz) as zf:
        table = arc.launcher_build_table(zf.read("__main__.py")) or {}
        libs = zipfile.ZipFile(zf.open(lib.LIBS_MEMBER))
        binaries = [libs.read(n) for n in libs.namelist() if ".so" in n.rsplit("/", 1)[-1]]
    assert "glibc" not in table and table["platform"] == musl_built.target.platform
    links = [arc.elf_links(b) for b in binaries]
    assert links and all(one is not None for one in links)
    # every shared object is linked against musl, none against glibc
    assert not any(_audit.GLIBC_NEEDED.match(n) for one in links if one for n in one.needed)
    packed = any(one.relr for one in links if one)
    assert table["musl"] == ("1.2.4" if packed else "1.2")


def test_musl_asset_smoke_passes_on_musl(musl_built: Built, tmp_path: Path) -> None:
    """The whole smoke of build/verify: first use, --version/--help, self-check, init, a real pipeline run,
    mcp serve (initialize, tools/list, tools/call), the wrong-Python answers, odd HOMEs."""
    report = _smoke.smoke(
        musl_built.pyz,
        musl_built.version,
        musl_built.target,
        python=MUSL_PYTHON,
        work=tmp_path,
        log=lambda c: None,
    )
    failed = [str(c) for c in report.checks if not c.ok]
    assert not failed, "smoke checks failed on musl:\n" + "\n".join(failed)
    names = " ".join(c.name for c in report.checks)
    assert "mcp serve" in names and "start" in names


def test_glibc_interpreter_is_refused(musl_built: Built, tmp_path: Path) -> None:
    python = _smoke.find_python("3.11", "glibc")
    if python is None:
        pytest.skip("no glibc CPython 3.11 here")
    out = subprocess.run(
        [python, "-S", "-I", str(musl_built.pyz), "--version"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "SHIV_ROOT": str(tmp_path / "shiv")},
        timeout=60,
        check=False,
    )
    assert out.returncode == 3 and out.stdout == ""
    assert "(musl >= " in out.stderr and "the C library is glibc, not musl" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_self_check_on_musl_names_musl(musl_built: Built, tmp_path: Path) -> None:
    out = subprocess.run(
        [MUSL_PYTHON, "-S", "-I", str(musl_built.pyz), "self-check", "--format", "json"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "SHIV_ROOT": str(tmp_path / "shiv")},
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["platform"]["libc"].startswith("musl 1.2.")
    assert report["artifact"]["sha256"] == musl_built.sha256
