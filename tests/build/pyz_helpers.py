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


def make_elf(
    machine: int, needed: list[str], versions: dict[str, list[str]] | None = None, relr: bool = False
) -> bytes:
    """A minimal 64-bit little-endian ELF shared object with a .dynstr, a .dynamic (DT_NEEDED entries, and
    DT_RELR with `relr`) and, when `versions` is given, a .gnu.version_r: what the audit reads to tell glibc
    from musl links."""
    strtab = bytearray(b"\0")

    def intern(text: str) -> int:
        strtab.extend(text.encode() + b"\0")
        return len(strtab) - len(text) - 1

    entries = [(1, intern(n)) for n in needed] + ([(36, 0x36A0)] if relr else [])
    dynamic = b"".join(tag.to_bytes(8, "little") + value.to_bytes(8, "little") for tag, value in entries)
    dynamic += bytes(16)
    verneed = bytearray()
    files = list((versions or {}).items())
    for i, (file, names) in enumerate(files):
        record = bytearray()
        record += (1).to_bytes(2, "little") + len(names).to_bytes(2, "little")
        record += intern(file).to_bytes(4, "little") + (16).to_bytes(4, "little")
        aux = b"".join(
            bytes(8)
            + intern(n).to_bytes(4, "little")
            + (16 if j < len(names) - 1 else 0).to_bytes(4, "little")
            for j, n in enumerate(names)
        )
        following = 16 + len(aux) if i < len(files) - 1 else 0
        record += following.to_bytes(4, "little")
        verneed += record + aux
    body = [(3, bytes(strtab), 0), (6, dynamic, 1)] + ([(0x6FFFFFFE, bytes(verneed), 1)] if files else [])
    offset = 64
    sections = [bytes(64)]
    blobs = b""
    for kind, blob, link in body:
        header = bytearray(64)
        header[4:8] = kind.to_bytes(4, "little")
        header[0x18:0x20] = (offset + len(blobs)).to_bytes(8, "little")
        header[0x20:0x28] = len(blob).to_bytes(8, "little")
        header[0x28:0x2C] = link.to_bytes(4, "little")
        sections.append(bytes(header))
        blobs += blob
    shoff = offset + len(blobs)
    ident = b"\x7fELF\x02\x01\x01" + bytes(9)
    head = bytearray(ident + bytes(48))
    head[16:18] = (3).to_bytes(2, "little")  # ET_DYN
    head[18:20] = machine.to_bytes(2, "little")
    head[0x28:0x30] = shoff.to_bytes(8, "little")
    head[0x3A:0x3C] = (64).to_bytes(2, "little")
    head[0x3C:0x3E] = len(sections).to_bytes(2, "little")
    return bytes(head) + blobs + b"".join(sections)
