"""Zip-level helpers for build/pyz and build/verify: rewrite an archive, render the launcher, RECORD."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import re
import shutil
import stat
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from _pyzlib import EXIT_FAILED, LAUNCHER_BUILD_LINE, LAUNCHER_SOURCE, BuildError


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def read_prefix(path: Path) -> bytes:
    """The bytes before the zip data (the shebang line)."""
    with open(path, "rb") as fh:
        head = fh.read(256)
    nl = head.find(b"\n")
    return head[: nl + 1] if head.startswith(b"#!") and nl >= 0 else b""


Transform = Callable[[zipfile.ZipInfo, bytes], "tuple[zipfile.ZipInfo, bytes] | None"]


def rewrite_archive(
    src: Path,
    dst: Path,
    *,
    shebang: bytes | None = None,
    transform: Transform | None = None,
    add: Sequence[tuple[zipfile.ZipInfo, bytes]] = (),
    canonical_order: bool = False,
) -> None:
    """Copy a zipapp entry by entry (timestamps and compression kept), optionally editing entries.

    With `canonical_order`, entries are written as site-packages/ (sorted), _bootstrap/ (sorted),
    environment.json, __main__.py: shiv lists its bootstrap files in directory order, which varies.
    """
    prefix = read_prefix(src) if shebang is None else shebang
    tmp = dst.with_name(dst.name + ".tmp")
    with zipfile.ZipFile(src) as zin, open(tmp, "wb") as fh:
        fh.write(prefix)
        infos = zin.infolist()
        if canonical_order:
            infos = sorted(infos, key=_canonical_key)
        with zipfile.ZipFile(fh, "w") as zout:
            for info in infos:
                data = zin.read(info)
                item: tuple[zipfile.ZipInfo, bytes] | None = (_clone(info), data)
                if transform is not None:
                    item = transform(*item)  # type: ignore[misc]
                if item is not None:
                    zout.writestr(item[0], item[1])
            for info, data in add:
                zout.writestr(info, data)
    os.chmod(tmp, 0o755)
    os.replace(tmp, dst)


def _canonical_key(info: zipfile.ZipInfo) -> tuple[int, str]:
    name = info.filename
    for rank, prefix in enumerate(("site-packages/", "_bootstrap/", "environment.json", "__main__.py")):
        if name.startswith(prefix):
            return rank, name
    return 4, name


def _clone(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    new = zipfile.ZipInfo(info.filename, date_time=info.date_time)
    new.compress_type = info.compress_type
    new.external_attr = info.external_attr
    new.create_system = info.create_system
    return new


def entry_like(info: zipfile.ZipInfo, name: str, mode: int = 0o100644) -> zipfile.ZipInfo:
    new = zipfile.ZipInfo(name, date_time=info.date_time)
    new.compress_type = info.compress_type
    new.external_attr = mode << 16
    new.create_system = info.create_system
    return new


def render_launcher(build: dict[str, str]) -> bytes:
    source = LAUNCHER_SOURCE.read_text(encoding="utf-8")
    if source.count(LAUNCHER_BUILD_LINE) != 1:
        raise BuildError(f"{LAUNCHER_SOURCE} lacks its '{LAUNCHER_BUILD_LINE}' line", exit_code=EXIT_FAILED)
    table = json.dumps(dict(sorted(build.items())), sort_keys=True)
    return source.replace(LAUNCHER_BUILD_LINE, f"BUILD: dict[str, str] = {table}  # @BUILD@").encode()


def launcher_build_table(source: bytes) -> dict[str, str] | None:
    """The BUILD table a rendered launcher carries, or None if the source is not our launcher."""
    text = source.decode("utf-8", "replace")
    m = re.search(r"^BUILD: dict\[str, str\] = (\{.*\})  # @BUILD@$", text, re.MULTILINE)
    if not m:
        return None
    try:
        table = json.loads(m.group(1))
    except ValueError:
        return None
    return table if isinstance(table, dict) else None


def launcher_matches_template(source: bytes) -> bool:
    text = source.decode("utf-8", "replace")
    normalised = re.sub(
        r"^BUILD: dict\[str, str\] = \{.*\}  # @BUILD@$", LAUNCHER_BUILD_LINE, text, flags=re.M
    )
    return normalised == LAUNCHER_SOURCE.read_text(encoding="utf-8")


def iter_files(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath, name)


def normalise_site_packages(site: Path) -> list[str]:
    """Drop bin/, direct_url.json and bytecode, fix RECORD files to match, set modes 644/755."""
    removed: list[str] = []
    for name in ("bin",):
        if (site / name).exists():
            removed += [p.relative_to(site).as_posix() for p in iter_files(site / name)]
            shutil.rmtree(site / name)
    for dirpath, dirnames, filenames in os.walk(site):
        for d in list(dirnames):
            if d == "__pycache__":
                full = Path(dirpath, d)
                removed += [p.relative_to(site).as_posix() for p in iter_files(full)]
                shutil.rmtree(full)
                dirnames.remove(d)
        for f in filenames:
            if f == "direct_url.json" or f.endswith((".pyc", ".pyo")):
                full = Path(dirpath, f)
                removed.append(full.relative_to(site).as_posix())
                full.unlink()
    gone = set(removed)
    for record in sorted(site.glob("*.dist-info/RECORD")):
        raw = record.read_bytes()
        kept: list[bytes] = []
        for line in raw.splitlines(keepends=True):
            row = next(csv.reader(io.StringIO(line.decode("utf-8"))), [""])
            path = os.path.normpath(row[0]).replace(os.sep, "/") if row and row[0] else ""
            if path in gone or path.startswith("../") or path.startswith("bin/"):
                continue
            kept.append(line)
        record.write_bytes(b"".join(kept))
    for dirpath, dirnames, filenames in os.walk(site):
        for d in dirnames:
            os.chmod(Path(dirpath, d), 0o755)
        for f in filenames:
            p = Path(dirpath, f)
            if p.is_symlink():
                raise BuildError(f"the installed tree holds a symlink: {p.relative_to(site)}", exit_code=1)
            os.chmod(p, 0o644)
    os.chmod(site, 0o755)
    return sorted(removed)


def is_elf(data: bytes) -> bool:
    return data[:4] == b"\x7fELF"


def elf_machine(data: bytes) -> int | None:
    if not is_elf(data) or len(data) < 20:
        return None
    return int.from_bytes(data[18:20], "little" if data[5] == 1 else "big")


def file_mode(info: zipfile.ZipInfo) -> int:
    return (info.external_attr >> 16) & 0xFFFF


def is_symlink_entry(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(file_mode(info))
