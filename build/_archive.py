"""Zip-level helpers for build/pyz and build/verify: rewrite an archive, render the launcher, RECORD."""

from __future__ import annotations

import ast
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
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Literal, NamedTuple

from _pyzlib import EXIT_FAILED, HOT_PACKAGES, LAUNCHER_SOURCE, BuildError

SITE = "site-packages/"


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

    With `canonical_order`, entries (added ones included) are written as site-packages/ (sorted),
    _bootstrap/ (sorted), environment.json, __main__.py(c): shiv lists its bootstrap files in directory
    order, which varies. Without it, added entries come last.
    """
    prefix = read_prefix(src) if shebang is None else shebang
    tmp = dst.with_name(dst.name + ".tmp")
    with zipfile.ZipFile(src) as zin, open(tmp, "wb") as fh:
        fh.write(prefix)
        items: list[tuple[zipfile.ZipInfo, bytes | None]] = [(i, None) for i in zin.infolist()]
        items += [(i, d) for i, d in add]
        if canonical_order:
            items.sort(key=lambda item: _canonical_key(item[0]))
        with zipfile.ZipFile(fh, "w") as zout:
            for info, added in items:
                if added is not None:
                    zout.writestr(info, added)
                    continue
                item: tuple[zipfile.ZipInfo, bytes] | None = (_clone(info), zin.read(info))
                if transform is not None:
                    item = transform(*item)  # type: ignore[misc]
                if item is not None:
                    zout.writestr(item[0], item[1])
    os.chmod(tmp, 0o755)
    os.replace(tmp, dst)


def read_on_every_start(name: str) -> bool:
    """The archive's byte code and the schemas every run validates against: stored, not deflated, so a
    start neither inflates them nor loads zlib (a start from the .pyz took about 7% less; the archive
    grows by about 0.9 MB). `libs.zip` is stored for its own reason (see the launcher)."""
    return name.endswith(".pyc") or (name.startswith(SCHEMAS) and name.endswith(".json"))


SCHEMAS = "site-packages/codex_orchestrator/_assets/schemas/"


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


def in_libs(name: str) -> bool:
    """Whether an archive member belongs in libs.zip: under site-packages/, of no package in HOT_PACKAGES."""
    if not name.startswith(SITE):
        return False
    top = name[len(SITE) :].split("/", 1)[0]
    if top.endswith(".dist-info"):
        top = top[: -len(".dist-info")].rsplit("-", 1)[0]
    return bool(top) and top.split(".", 1)[0] not in HOT_PACKAGES


def top_level_names(members: Iterable[str]) -> list[str]:
    """The importable names at the top of site-packages/ among these members: packages and modules."""
    names: set[str] = set()
    for member in members:
        first, sep, _ = member[len(SITE) :].partition("/")
        name = first if sep else first.split(".", 1)[0]
        if name.isidentifier() and (sep or name != first):
            names.add(name)
    return sorted(names)


def dist_folders(members: Iterable[str]) -> list[str]:
    """The "name-version.dist-info" folders under site-packages/ among these members."""
    return sorted(
        {
            m[len(SITE) :].split("/", 1)[0]
            for m in members
            if m[len(SITE) :].split("/", 1)[0].endswith(".dist-info")
        }
    )


MCP_VERSIONS = "site-packages/mcp_types/version.py"


def mcp_handshake_versions(source: bytes | None) -> str:
    """HANDSHAKE_PROTOCOL_VERSIONS of the MCP SDK's mcp_types/version.py, comma-separated ("" if absent),
    for the launcher's record: `mcp serve` answers the handshake with them before loading the SDK."""
    if not source:
        return ""
    target: ast.expr
    for node in ast.parse(source).body:
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id == "HANDSHAKE_PROTOCOL_VERSIONS":
            return ",".join(str(v) for v in ast.literal_eval(value))
    return ""


def zip_bytes(items: Iterable[tuple[zipfile.ZipInfo, bytes]]) -> bytes:
    """A zip archive of these entries in name order (each entry's compression and times kept)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for info, data in sorted(items, key=lambda item: item[0].filename):
            zf.writestr(info, data)
    return buffer.getvalue()


def _table_line(name: str, type_comment: str, tag: str) -> str:
    return f"{name} = {{}}  # type: {type_comment}  # @{tag}@"


_TABLES = (("BUILD", "dict[str, str]", "BUILD"), ("NATIVE", "dict[str, list[str]]", "NATIVE"))


def render_launcher(build: dict[str, str], native: dict[str, list[str]] | None = None) -> bytes:
    """build/launcher.py with its BUILD and NATIVE tables filled in (one JSON line each, ASCII only)."""
    source = LAUNCHER_SOURCE.read_text(encoding="utf-8")
    values: dict[str, object] = {
        "BUILD": dict(sorted(build.items())),
        "NATIVE": dict(sorted((native or {}).items())),
    }
    for name, type_comment, tag in _TABLES:
        line = _table_line(name, type_comment, tag)
        if source.count(line) != 1:
            raise BuildError(f"{LAUNCHER_SOURCE} lacks its '{line}' line", exit_code=EXIT_FAILED)
        table = json.dumps(values[name], sort_keys=True, ensure_ascii=True)
        source = source.replace(line, line.replace("{}", table, 1))
    return source.encode("ascii")


def _launcher_table(source: bytes, name: str) -> dict[str, object] | None:
    text = source.decode("utf-8", "replace")
    m = re.search(rf"^{name} = (\{{.*\}})  # type: [^#]*  # @{name}@$", text, re.MULTILINE)
    if not m:
        return None
    try:
        table = json.loads(m.group(1))
    except ValueError:
        return None
    return table if isinstance(table, dict) else None


def launcher_build_table(source: bytes) -> dict[str, str] | None:
    """The BUILD table a rendered launcher carries, or None if the source is not our launcher."""
    table = _launcher_table(source, "BUILD")
    if table is None or not all(isinstance(v, str) for v in table.values()):
        return None
    return {str(k): str(v) for k, v in table.items()}


def launcher_native_table(source: bytes) -> dict[str, list[str]] | None:
    """The NATIVE table (extension module -> archive members) a rendered launcher carries."""
    table = _launcher_table(source, "NATIVE")
    if table is None:
        return None
    out: dict[str, list[str]] = {}
    for key, value in table.items():
        if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
            return None
        out[str(key)] = [str(v) for v in value]
    return out


def launcher_matches_template(source: bytes) -> bool:
    text = source.decode("utf-8", "replace")
    for name, type_comment, tag in _TABLES:
        pattern = rf"^{name} = \{{.*\}}  # type: [^#]*  # @{tag}@$"
        text = re.sub(pattern, _table_line(name, type_comment, tag), text, flags=re.M)  # no backslashes
    return text == LAUNCHER_SOURCE.read_text(encoding="utf-8")


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


class ElfLinks(NamedTuple):
    """What a 64-bit ELF shared object asks of the dynamic linker: the libraries it names (DT_NEEDED) and the
    symbol versions it needs from each (.gnu.version_r), e.g. {"libc.so.6": ["GLIBC_2.14", ...]}, and
    whether it packs relative relocations (DT_RELR), which musl before 1.2.4 cannot apply."""

    needed: list[str]
    versions: dict[str, list[str]]
    relr: bool = False


def _cstr(data: bytes, offset: int) -> str:
    end = data.find(b"\0", offset)
    return data[offset : end if end >= 0 else len(data)].decode("ascii", "replace")


def elf_links(data: bytes) -> ElfLinks | None:
    """The dynamic links of a 64-bit ELF file from its section headers, or None when it is not one we can
    read (not ELF, 32-bit, truncated, no section headers)."""
    if not is_elf(data) or len(data) < 64 or data[4] != 2:
        return None
    order: Literal["little", "big"] = "little" if data[5] == 1 else "big"

    def num(at: int, size: int) -> int:
        if at + size > len(data):
            raise IndexError(at)
        return int.from_bytes(data[at : at + size], order)

    try:
        shoff, shentsize, shnum = num(0x28, 8), num(0x3A, 2), num(0x3C, 2)
        sections = [
            (num(base + 4, 4), num(base + 0x18, 8), num(base + 0x20, 8), num(base + 0x28, 4))
            for base in (shoff + i * shentsize for i in range(shnum))
        ]  # (type, offset, size, link)
        needed: list[str] = []
        versions: dict[str, list[str]] = {}
        relr = False
        for kind, offset, size, link in sections:
            strtab = sections[link][1] if link < len(sections) else 0
            if kind == 6:  # SHT_DYNAMIC: (tag, value) pairs; DT_NEEDED = 1, DT_NULL = 0 ends them
                for at in range(offset, offset + size, 16):
                    tag = num(at, 8)
                    if tag == 0:
                        break
                    if tag == 1:
                        needed.append(_cstr(data, strtab + num(at + 8, 8)))
                    relr |= tag == 36  # DT_RELR
            elif kind == 0x6FFFFFFE:  # SHT_GNU_verneed: Verneed records, each with a chain of Vernaux
                at = offset
                for _ in range(1024):
                    count, file, aux, nxt = num(at + 2, 2), num(at + 4, 4), num(at + 8, 4), num(at + 12, 4)
                    names = versions.setdefault(_cstr(data, strtab + file), [])
                    vna = at + aux
                    for _ in range(count):
                        names.append(_cstr(data, strtab + num(vna + 8, 4)))
                        vna += num(vna + 12, 4)
                    if not nxt:
                        break
                    at += nxt
    except IndexError:
        return None
    return ElfLinks(needed, versions, relr)


# musl applies DT_RELR relocations from 1.2.4 on; an older loader jumps through unrelocated pointers and the
# process dies with SIGSEGV (seen: cryptography's musllinux_1_2 wheel bundles such a libgcc_s, musl 1.2.3).
MUSL_RELR_FLOOR = "1.2.4"


def libc_fields(target_libc: str | None, blobs: Iterable[bytes]) -> dict[str, str]:
    """Launcher fields that the archive's own binaries raise above the platform tag's floor: a musl asset
    holding any DT_RELR object needs musl 1.2.4, which the musllinux_1_2 tag cannot say."""
    if target_libc != "musl":
        return {}
    for blob in blobs:
        links = elf_links(blob) if is_elf(blob) else None
        if links is not None and links.relr:
            return {"musl": MUSL_RELR_FLOOR}
    return {}


def macho_cpus(data: bytes) -> set[int] | None:
    """The CPU types of a Mach-O file (thin 64-bit or universal), or None when it is not one."""
    if data[:4] == b"\xcf\xfa\xed\xfe" and len(data) >= 8:
        return {int.from_bytes(data[4:8], "little")}
    if data[:4] in (b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf") and len(data) >= 8:
        count = int.from_bytes(data[4:8], "big")
        size = 20 if data[3] == 0xBE else 32
        if count > 32:  # a Java class file shares the magic; Mach-O fat files have a handful of slices
            return None
        return {int.from_bytes(data[8 + i * size : 12 + i * size], "big") for i in range(count)}
    return None


def file_mode(info: zipfile.ZipInfo) -> int:
    return (info.external_attr >> 16) & 0xFFFF


def is_symlink_entry(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(file_mode(info))


def add_bytecode_to_records(site: Path, compiled: Sequence[str]) -> int:
    """List each build-time `X.pyc` in the RECORD that lists its `X.py`, right after it (like pip does).

    Returns how many pyc were recorded; a pyc whose source no RECORD lists is a build error.
    """
    pending = set(compiled)
    for record in sorted(site.glob("*.dist-info/RECORD")):
        out: list[bytes] = []
        for line in record.read_bytes().splitlines(keepends=True):
            out.append(line)
            row = next(csv.reader(io.StringIO(line.decode("utf-8"))), [""])
            path = posix_norm(row[0]) if row and row[0] else ""
            if path in pending:
                pending.discard(path)
                pyc = site / (path + "c")
                data = pyc.read_bytes()
                ending = line[len(line.rstrip(b"\r\n")) :] or b"\n"
                out.append(f"{path}c,{record_hash(data)},{len(data)}".encode() + ending)
        record.write_bytes(b"".join(out))
    if pending:
        raise BuildError(
            f"compiled modules that no RECORD lists: {', '.join(sorted(pending)[:5])}", exit_code=EXIT_FAILED
        )
    return len(compiled)


def posix_norm(path: str) -> str:
    return os.path.normpath(path).replace(os.sep, "/")


LIBRARY_DIR_RE = re.compile(r"(^|/)([^/]+\.libs|\.dylibs)/")


def is_library_member(rel: str) -> bool:
    """A shared library a wheel vendors for its extensions (auditwheel `X.libs/`, delocate `.dylibs/`)."""
    return bool(LIBRARY_DIR_RE.search(rel))


def native_table(
    names: Sequence[str], suffixes: Sequence[str], prefix: str = "site-packages/"
) -> dict[str, list[str]]:
    """Extension module name -> the archive members to extract for it (the module, then vendored libraries).

    `names` are paths relative to site-packages; `suffixes` the target's extension suffixes, longest first.
    """
    libraries = sorted(prefix + n for n in names if is_library_member(n))
    table: dict[str, list[str]] = {}
    for rel in sorted(names):
        if is_library_member(rel):
            continue
        base = rel.rsplit("/", 1)[-1]
        suffix = next((s for s in suffixes if base.endswith(s)), None)
        if suffix is None:
            continue
        module = rel[: -len(suffix)].replace("/", ".")
        if not all(part.isidentifier() for part in module.split(".")):
            continue
        table[module] = [prefix + rel, *libraries]
    return table


def namespace_dirs(site: Path) -> list[str]:
    """Directories importable as implicit namespace packages (Python files below, no __init__.py)."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(site):
        dirnames.sort()
        here = Path(dirpath)
        if here == site or "__init__.py" in filenames:
            continue
        rel = here.relative_to(site).as_posix()
        if not all(part.isidentifier() for part in rel.split("/")):
            dirnames.clear()  # a dist-info, X.libs or data folder: nothing importable below
            continue
        if any(p.suffix == ".py" for p in here.rglob("*.py")):
            found.append(rel)
    return found
