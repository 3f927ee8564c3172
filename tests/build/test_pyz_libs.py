"""libs.zip: the archive's own zip directory holds our package and click only; every other library is in
one stored member, copied out whole by the first command that imports one of them, and self-check holds
what was copied out against the archive."""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path

import _archive as arc
import _pyzlib as lib
import _smoke
import pytest
from pyz_helpers import Built

pytestmark = pytest.mark.slow


def test_the_archive_directory_holds_only_the_plain_cli(built: Built) -> None:
    with zipfile.ZipFile(built.pyz) as zf:
        outer = zf.infolist()
        libs_info = zf.getinfo(lib.LIBS_MEMBER)
        with zipfile.ZipFile(zf.open(lib.LIBS_MEMBER)) as inner:
            inner_names = inner.namelist()
        table = arc.launcher_build_table(zf.read("__main__.py"))
    tops = {i.filename.split("/")[1] for i in outer if i.filename.startswith("site-packages/")}
    assert {t.split("-")[0] for t in tops} == set(lib.HOT_PACKAGES)
    assert len(outer) < 400  # the directory every start reads (it was ~1,950 entries with everything)
    assert libs_info.compress_type == zipfile.ZIP_STORED
    assert all(arc.in_libs(n) for n in inner_names) and len(inner_names) > 1000
    assert table is not None
    assert {"mcp", "pydantic", "pydantic_core", "jsonschema", "anyio"} <= set(table["libs"].split(","))
    assert table["libs_size"] == str(libs_info.file_size)
    namespace: dict[str, object] = {}
    with zipfile.ZipFile(built.pyz) as zf, zipfile.ZipFile(zf.open(lib.LIBS_MEMBER)) as inner:
        exec(inner.read(arc.MCP_VERSIONS), namespace)  # the SDK's own module, run
    assert table["mcp_handshake"] == ",".join(namespace["HANDSHAKE_PROTOCOL_VERSIONS"])  # type: ignore[arg-type]


def _run(built: Built, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    python = _smoke.find_python(built.target.python)
    assert python is not None
    env = {"PATH": os.environ["PATH"], "HOME": str(root.parent), "SHIV_ROOT": str(root)}
    return subprocess.run(
        [python, "-S", "-I", str(built.pyz), *args],
        env=env,
        cwd=root.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_libs_zip_is_copied_out_only_when_needed_and_checked_by_self_check(
    built: Built, tmp_path: Path
) -> None:
    root = tmp_path / "shiv"
    plain = _run(built, root, "runs", "list")
    assert plain.returncode == 0, plain.stderr
    assert not list(root.rglob(lib.LIBS_MEMBER))  # a plain command reads nothing from libs.zip

    first = _run(built, root, "self-check", "--format", "json")  # imports jsonschema: copies libs.zip
    assert first.returncode == 0, first.stderr
    (copied,) = root.rglob(lib.LIBS_MEMBER)
    checks = {c["name"]: c for c in json.loads(first.stdout)["checks"]}
    assert checks["extracted files"]["status"] == "ok", checks["extracted files"]

    data = bytearray(copied.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: the launcher keeps it, self-check must not
    copied.write_bytes(bytes(data))
    tampered = _run(built, root, "self-check")
    assert tampered.returncode == 1
    assert "FAILED  extracted files" in tampered.stdout and "libs.zip" in tampered.stdout
    assert "remove that folder" in tampered.stdout

    copied.write_bytes(b"truncated")  # another size: copied out again on the next import
    again = _run(built, root, "self-check", "--format", "json")
    assert again.returncode == 0, again.stdout
    assert copied.stat().st_size == len(data)
