"""The archive audit of build/verify: what a codex-orchestrator .pyz must and must not contain.

Every defect becomes a Finding with a stable code (tests and CI match on it) and the entry it concerns.

Longer than 400 lines because it is the allowlist and the checks of one archive audit, read as one
list of rules; each rule is small.
"""

from __future__ import annotations

import csv
import email.parser
import hashlib
import io
import json
import posixpath
import re
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import _archive as arc
import _bytecode
import _pyzlib as lib
from _pyzlib import Target

SITE = "site-packages/"
BOOTSTRAP_FILES = ("__init__.py", "environment.py", "filelock.py", "interpreter.py")
OUR_REQUIRED = ("__init__.py", "__main__.py", "cli/__init__.py", "runtime.py", "resources.py")
ENV_EXPECTED: dict[str, object] = {
    "always_write_cache": False,
    "compile_pyc": False,
    "entry_point": lib.ENTRY_POINT,
    "extend_pythonpath": False,
    "hashes": {},
    "no_modify": False,
    "preamble": None,
    "prepend_pythonpath": None,
    "reproducible": True,
    "root": None,
    "script": None,
}
DEV_TOOLS = {
    "pip", "setuptools", "pkg-resources", "distutils-hack", "wheel", "shiv", "pytest", "hatchling", "hatch",
    "uv", "ruff", "mypy", "build", "pip-tools", "piptools", "tox", "nox", "coverage", "hypothesis",
    "virtualenv", "black", "flake8", "pylint",
}  # fmt: skip
SECRET_NAMES = {
    ".netrc",
    ".pypirc",
    ".npmrc",
    ".git-credentials",
    ".htpasswd",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
}
SECRET_RE = re.compile(r"^(\.env(\..*)?|id_ed25519.*|id_rsa.*|.*\.(pem|key|p12|pfx|keystore|jks))$", re.I)
VCS_SEGMENTS = {".git", ".hg", ".svn", ".github", ".gitlab", ".bzr"}
VCS_FILES = {".gitignore", ".gitattributes", ".gitmodules", ".hgignore", ".gitlab-ci.yml"}
FOREIGN_SUFFIXES = (".pyd", ".dll", ".dylib", ".exe")
SO_RE = re.compile(r"\.so(\.\d+)*$")
# The C library's own files as a shared object names them (DT_NEEDED): an extension built against one
# libc does not load on the other, whatever its file name says.
GLIBC_NEEDED = re.compile(
    r"^(libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1|ld-linux[-\w.]*)$"
)
MUSL_NEEDED = re.compile(r"^(libc\.so|libc\.musl-\w+\.so\.1|ld-musl-[-\w.]*)$")
GLIBC_VERSION = re.compile(r"^GLIBC_(\d+)\.(\d+)(?:\.\d+)?$")


@dataclass(frozen=True)
class Finding:
    code: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f" {self.path}:" if self.path else ""
        return f"[{self.code}]{where} {self.message}"


@dataclass
class AuditReport:
    archive: Path
    version: str
    target: Target | None
    size: int = 0
    entries: int = 0
    distributions: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def codes(self) -> set[str]:
        return {f.code for f in self.findings}

    def add(self, code: str, path: str, message: str) -> None:
        self.findings.append(Finding(code, path, message))


def audit(
    archive: Path,
    *,
    version: str | None = None,
    source: Path | None = lib.REPO_ROOT,
    lock: Path | None = None,
    budget: int = lib.SIZE_BUDGET,
) -> AuditReport:
    """Audit one .pyz. `source` (a source tree) enables the byte-for-byte check of schemas and templates."""
    expected_version = version or lib.project_version(source or lib.REPO_ROOT)
    parsed = lib.parse_asset_name(archive.name)
    report = AuditReport(archive, expected_version, parsed[1] if parsed else None)
    report.size = archive.stat().st_size
    if report.size > budget:
        report.add("size", "", f"the archive is {report.size:,} bytes, over the {budget:,}-byte budget")
    if parsed is None:
        report.add(
            "asset-name",
            archive.name,
            "the file name is not codex-orchestrator-<version>-<pytag>-<platform>.pyz",
        )
    elif parsed[0] != expected_version:
        report.add(
            "version-mismatch",
            archive.name,
            f"the file name says {parsed[0]}, the build is {expected_version}",
        )
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        report.add("not-a-zip", archive.name, f"cannot be opened as a zip archive ({exc})")
        return report
    with zf:
        data = {}
        infos = zf.infolist()
        report.entries = len(infos)
        for info in infos:
            if not info.is_dir() and info.filename not in data:
                data[info.filename] = zf.read(info)
        _check_stored_bytecode(report, infos)
        libs = _open_libs(report, zf, infos, data)
        _check_entries(report, infos, data)
        target = report.target or _target_from_launcher(report, data)
        if target is not None:
            report.target = target
            _check_shebang(report, archive, target)
            _check_launcher(report, data, target, archive.name, libs)
            _check_extensions(report, data, target)
            _check_bytecode(report, data, target)
            _check_distributions(report, data, target, lock or lib.RUNTIME_LOCK)
        _check_environment(report, data)
        _check_records(report, data)
        _check_our_package(report, data, source)
    return report


# ------------------------------------------------------------------------------------------- entries


def _open_libs(
    report: AuditReport, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], data: dict[str, bytes]
) -> tuple[list[str], int]:
    """Audit libs.zip's entries as the archive's own: add them to `infos` and `data` in its place.

    Returns libs.zip's member names and size. Each entry must sit where build/pyz puts it: a library of
    HOT_PACKAGES in the archive itself, every other library in libs.zip, libs.zip stored uncompressed.
    """
    blob = data.pop(lib.LIBS_MEMBER, None)
    for info in infos:
        if info.filename.startswith(SITE) and arc.in_libs(info.filename):
            report.add("libs", info.filename, f"belongs in {lib.LIBS_MEMBER}: no package of the plain CLI")
    if blob is None:
        return [], 0
    if zf.getinfo(lib.LIBS_MEMBER).compress_type != zipfile.ZIP_STORED:
        report.add("libs", lib.LIBS_MEMBER, "is compressed; it must be stored, its entries are compressed")
    names: list[str] = []
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as inner:
            for info in inner.infolist():
                infos.append(info)
                names.append(info.filename)
                if not arc.in_libs(info.filename):
                    report.add("libs", info.filename, f"does not belong in {lib.LIBS_MEMBER}")
                if not info.is_dir() and info.filename not in data:
                    data[info.filename] = inner.read(info)
    except (zipfile.BadZipFile, OSError) as exc:
        report.add("libs", lib.LIBS_MEMBER, f"cannot be opened as a zip archive ({exc})")
    report.entries = len(infos)
    return names, len(blob)


def _check_entries(report: AuditReport, infos: list[zipfile.ZipInfo], data: dict[str, bytes]) -> None:
    seen: set[str] = set()
    for info in infos:
        name = info.filename
        if name in seen:
            report.add("duplicate-entry", name, "the name appears more than once")
        seen.add(name)
        if _unsafe_path(name):
            report.add("unsafe-path", name, "absolute, '..', backslash or empty path segment")
            continue
        mode = arc.file_mode(info)
        if arc.is_symlink_entry(info):
            report.add("symlink", name, "symbolic links are not allowed in the archive")
        elif mode and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            report.add("special-file", name, f"not a regular file (mode {oct(mode)})")
        if mode & 0o002:
            report.add("world-writable", name, f"world-writable mode {oct(mode & 0o7777)}")
        elif mode & 0o020:
            report.add("group-writable", name, f"group-writable mode {oct(mode & 0o7777)}")
        if mode & 0o7000:
            report.add("special-mode", name, f"setuid, setgid or sticky bit set ({oct(mode & 0o7777)})")
        if info.is_dir():
            continue
        top = name.split("/", 1)[0]
        if not (
            name in ("__main__.py", "__main__.pyc", "environment.json", lib.LIBS_MEMBER)
            or top in ("_bootstrap", "site-packages")
        ):
            report.add(
                "unexpected-entry",
                name,
                f"only __main__.py(c), environment.json, {lib.LIBS_MEMBER}, _bootstrap/ and site-packages/",
            )
        _check_denylist(report, name)


def _unsafe_path(name: str) -> bool:
    if name.startswith("/") or "\\" in name or "\0" in name or re.match(r"^[A-Za-z]:", name):
        return True
    parts = name.rstrip("/").split("/")
    return any(p in ("", ".", "..") for p in parts)


def _check_denylist(report: AuditReport, name: str) -> None:
    parts = name.split("/")
    base = parts[-1]
    rel = name[len(SITE) :] if name.startswith(SITE) else ""
    rel_parts = rel.split("/") if rel else []
    if "__pycache__" in parts or base.endswith(".pyo"):
        report.add(
            "bytecode", name, "builder bytecode must not be shipped (only build-time X.pyc beside X.py)"
        )
    if VCS_SEGMENTS & set(parts[:-1]) or base in VCS_FILES:
        report.add("vcs", name, "version-control or CI files must not be shipped")
    if base in SECRET_NAMES or SECRET_RE.match(base):
        report.add("secret", name, "looks like a secret or credentials file")
    if rel_parts:
        if rel_parts[0] in ("tests", "test", "conftest.py"):
            report.add("our-tests", name, "a top-level tests package must not be shipped")
        elif rel_parts[0] == lib.PACKAGE and (
            {"tests", "test"} & set(rel_parts[1:-1]) or re.match(r"^(test_.*\.py|conftest\.py)$", base)
        ):
            report.add("our-tests", name, "our test code must not be shipped")
        if rel_parts[0] == "bin":
            report.add("bin-dir", name, "console scripts (bin/) carry the builder's interpreter path")
        if base == "direct_url.json":
            report.add("direct-url", name, "direct_url.json carries the builder's source path")
        if any(p.endswith((".egg-info", ".egg")) for p in rel_parts[:-1]) or base.endswith(".egg-info"):
            report.add("egg-info", name, "egg-info metadata must not be shipped")
        if len(rel_parts) == 1 and base.endswith(".pth"):
            report.add("pth-file", name, ".pth files run code at start-up")
        top = rel_parts[0].split("-", 1)[0] if rel_parts[0].endswith(".dist-info") else rel_parts[0]
        if lib.canonical_name(top.removesuffix(".py")) in DEV_TOOLS:
            report.add("dev-tool", name, f"a development tool ({top}) must not be shipped")
    if base.lower().endswith(FOREIGN_SUFFIXES) and not (
        report.target and report.target.os == "macos" and base.endswith(".dylib")
    ):
        report.add("foreign-extension", name, "a Windows binary, or a macOS one in a Linux build")


# ------------------------------------------------------------------------------ launcher, environment


def _target_from_launcher(report: AuditReport, data: dict[str, bytes]) -> Target | None:
    table = arc.launcher_build_table(data.get("__main__.py", b""))
    if table:
        try:
            return Target.parse(table.get("python", ""), table.get("platform", ""))
        except lib.BuildError:
            pass
    report.add("target-unknown", "", "neither the file name nor the launcher says which Python and platform")
    return None


def _check_shebang(report: AuditReport, archive: Path, target: Target) -> None:
    want = f"#!/usr/bin/env python{target.python}\n".encode()
    have = arc.read_prefix(archive)
    if have != want:
        report.add("shebang", "", f"expected the first line {want!r}, found {have!r}")


def _check_launcher(
    report: AuditReport, data: dict[str, bytes], target: Target, asset: str, libs: tuple[list[str], int]
) -> None:
    for name in BOOTSTRAP_FILES:
        if f"_bootstrap/{name}" not in data:
            report.add("missing-required", f"_bootstrap/{name}", "shiv's bootstrap is incomplete")
    source = data.get("__main__.py")
    if source is None:
        report.add("launcher", "__main__.py", "missing")
        return
    table = arc.launcher_build_table(source)
    if table is None or not arc.launcher_matches_template(source):
        report.add("launcher", "__main__.py", "is not build/launcher.py (shiv's own or an edited launcher)")
        return
    env = _environment(data)
    expected = {
        **target.launcher_fields(),
        **arc.libc_fields(target.libc, (blob for name, blob in data.items() if name.startswith(SITE))),
        "version": report.version,
        "asset": target.asset_name(report.version),
        "build_id": str(env.get("build_id")) if env else "",
        "entry_point": lib.ENTRY_POINT,
        "dists": ",".join(d for d in sorted(_dist_infos(data)) if not arc.in_libs(f"{SITE}{d}/")),
        "libs": ",".join(arc.top_level_names(libs[0])),
        "libs_dists": ",".join(arc.dist_folders(libs[0])),
        "libs_size": str(libs[1]),
        "mcp_handshake": arc.mcp_handshake_versions(data.get(arc.MCP_VERSIONS)),
    }
    for key, value in expected.items():
        if table.get(key) != value:
            report.add("launcher", "__main__.py", f"BUILD[{key!r}] is {table.get(key)!r}, expected {value!r}")
    if table.get("bytecode") not in ("none", f"cpython-{target.pytag[2:]}"):
        report.add("launcher", "__main__.py", f"BUILD['bytecode'] is {table.get('bytecode')!r}")
    version_out = table.get("out_version")
    if version_out is not None and version_out != f"{report.version}\n":
        report.add("launcher", "__main__.py", f"the prepared --version answer is {version_out!r}")
    native = arc.launcher_native_table(source)
    names = [n[len(SITE) :] for n in data if n.startswith(SITE)]
    want = arc.native_table(names, target.extension_suffixes())
    if native != want:
        report.add(
            "launcher",
            "__main__.py",
            f"the NATIVE table lists {sorted(native or {})}, the archive's extensions are {sorted(want)}",
        )
    if asset != expected["asset"] and lib.parse_asset_name(asset) is not None:
        report.add("asset-name", asset, f"the launcher was built for {expected['asset']}")


def _environment(data: dict[str, bytes]) -> dict[str, object] | None:
    try:
        env = json.loads(data["environment.json"])
    except (KeyError, ValueError):
        return None
    return env if isinstance(env, dict) else None


def _check_environment(report: AuditReport, data: dict[str, bytes]) -> None:
    env = _environment(data)
    if env is None:
        report.add("environment", "environment.json", "missing or not a JSON object")
        return
    shiv_version = lib.tools_versions().get("shiv")
    if env.get("shiv_version") != shiv_version:
        report.add(
            "environment", "environment.json", f"shiv_version {env.get('shiv_version')!r} != {shiv_version}"
        )
    for key, value in ENV_EXPECTED.items():
        if env.get(key, "<missing>") != value:
            report.add(
                "environment",
                "environment.json",
                f"{key} is {env.get(key, '<missing>')!r}, expected {value!r}",
            )
    if not isinstance(env.get("built_at"), str):
        report.add("environment", "environment.json", "built_at is missing")
    build_id = env.get("build_id")
    if not (isinstance(build_id, str) and re.fullmatch(r"[0-9a-f]{64}", build_id)):
        report.add("environment", "environment.json", f"build_id {build_id!r} is not a SHA-256")
        return
    h = hashlib.sha256()
    for name in sorted(n for n in data if n.startswith(SITE) and not n.endswith(".pyc")):  # as shiv does
        h.update(data[name])
        h.update(name[len(SITE) :].encode())
    if h.hexdigest() != build_id:
        report.add(
            "build-id",
            "environment.json",
            "build_id does not match the packed site-packages (edited after build)",
        )


# --------------------------------------------------------------------------------- binaries, dists


def _check_extensions(report: AuditReport, data: dict[str, bytes], target: Target) -> None:
    for name, blob in data.items():
        base = name.rsplit("/", 1)[-1]
        binary = arc.is_elf(blob) or arc.macho_cpus(blob) is not None
        if not (SO_RE.search(base) or base.endswith(".dylib") or binary):
            continue
        problem = _binary_problem(blob, target)
        if problem:
            report.add("foreign-extension", name, problem)
        elif not target.extension_ok(name):
            report.add(
                "foreign-extension",
                name,
                f"an extension for another Python or platform than {target.pytag}-{target.platform}",
            )


def _binary_problem(blob: bytes, target: Target) -> str | None:
    if target.os == "macos":
        cpus = arc.macho_cpus(blob)
        if cpus is None:
            return "a shared library that is not a macOS (Mach-O) file"
        if lib.MACHO_CPUS[target.machine] not in cpus:
            return f"a Mach-O file without {target.machine} code"
        return None
    if not arc.is_elf(blob):
        return "a shared library that is not a Linux ELF file"
    if blob[4] != 2:
        return "a 32-bit ELF file"
    if arc.elf_machine(blob) != lib.ELF_MACHINES[target.machine]:
        return f"built for ELF machine {arc.elf_machine(blob)}, not {target.machine}"
    return _libc_problem(blob, target)


def _libc_problem(blob: bytes, target: Target) -> str | None:
    """Whether a Linux shared object loads with the target's C library: musl assets carry nothing linked
    against glibc, glibc assets nothing linked against musl, nor anything that needs a glibc newer than
    the platform tag's floor (the symbol versions it asks for, as auditwheel judges them)."""
    links = arc.elf_links(blob)
    if links is None:
        return "an ELF file whose dynamic section cannot be read"
    # only glibc's own files count: aarch64's libgcc_s names a GLIBC_2.0 version of its own
    needs = [
        (int(m.group(1)), int(m.group(2)))
        for file, names in links.versions.items()
        if GLIBC_NEEDED.match(file)
        for m in map(GLIBC_VERSION.match, names)
        if m
    ]
    if target.libc == "musl":
        glibc = sorted({n for n in [*links.needed, *links.versions] if GLIBC_NEEDED.match(n)})
        if glibc:
            return f"linked against glibc ({', '.join(glibc)}), not musl"
        return None
    musl = [n for n in links.needed if MUSL_NEEDED.match(n)]
    if musl:
        return f"linked against musl libc ({', '.join(musl)}), not glibc"
    if needs and max(needs) > target.floor:
        newest = "{}.{}".format(*max(needs))
        floor = "{}.{}".format(*target.floor)
        return f"needs glibc {newest} (GLIBC_{newest} symbols), newer than the asset's glibc {floor}"
    return None


# ------------------------------------------------------------------------------------------ bytecode


def _check_stored_bytecode(report: AuditReport, infos: list[zipfile.ZipInfo]) -> None:
    """What every start reads (byte code, the schemas) is stored, not deflated: no inflating, no zlib."""
    for info in infos:
        if arc.read_on_every_start(info.filename) and info.compress_type != zipfile.ZIP_STORED:
            report.add("stored", info.filename, "is compressed; what every start reads is stored")


def _check_bytecode(report: AuditReport, data: dict[str, bytes], target: Target) -> None:
    """Exactly one build-time pyc beside each packed .py (site-packages and the launcher), none elsewhere."""
    table = arc.launcher_build_table(data.get("__main__.py", b"")) or {}
    enabled = table.get("bytecode", "none") != "none"
    magic = _bytecode.magic_bytes(target.python)
    for name, blob in sorted(data.items()):
        if not name.endswith(".pyc") or "__pycache__" in name.split("/"):
            continue
        source = name[:-1]
        if not (name.startswith(SITE) or name == "__main__.pyc") or source not in data:
            report.add(
                "bytecode", name, "a .pyc without its .py beside it (only build-time byte code is shipped)"
            )
        elif not enabled:
            report.add("bytecode", name, "the launcher says this build has no byte code")
        else:
            problem = _bytecode.pyc_problem(blob, data[source], magic)
            if problem:
                report.add("bytecode-mismatch", name, problem)
    if not enabled:
        return
    for name in sorted(data):
        if (
            name.endswith(".py")
            and (name.startswith(SITE) or name == "__main__.py")
            and name + "c" not in data
        ):
            report.add("missing-bytecode", name, "no build-time .pyc: every run would compile it")


def _dist_infos(data: dict[str, bytes]) -> dict[str, str]:
    """dist-info folder -> canonical distribution name."""
    out: dict[str, str] = {}
    for name in data:
        if name.startswith(SITE):
            first = name[len(SITE) :].split("/", 1)[0]
            if first.endswith(".dist-info") and first not in out:
                out[first] = lib.canonical_name(first[: -len(".dist-info")].rsplit("-", 1)[0])
    return out


def _metadata(data: dict[str, bytes], folder: str) -> dict[str, str]:
    raw = data.get(f"{SITE}{folder}/METADATA")
    if raw is None:
        return {}
    msg = email.parser.BytesHeaderParser().parsebytes(raw)
    return {"name": str(msg.get("Name", "")), "version": str(msg.get("Version", ""))}


def _check_distributions(report: AuditReport, data: dict[str, bytes], target: Target, lock: Path) -> None:
    expected = {e.name: e.version for e in lib.entries_for_target(lib.parse_lock(lock), target)}
    expected[lib.canonical_name(lib.DIST_NAME)] = report.version
    found: dict[str, str] = {}
    for folder, dist in sorted(_dist_infos(data).items()):
        meta = _metadata(data, folder)
        if not meta:
            report.add("missing-required", f"{SITE}{folder}/METADATA", "dist-info without METADATA")
            continue
        found[dist] = meta["version"]
        if folder.removesuffix(".dist-info").rsplit("-", 1)[-1] != meta["version"]:
            report.add("version-mismatch", f"{SITE}{folder}", f"METADATA says version {meta['version']}")
        if dist not in expected:
            code = "dev-tool" if dist in DEV_TOOLS else "unexpected-distribution"
            report.add(
                code, f"{SITE}{folder}", f"{dist} {meta['version']} is not in the lock for {target.pytag}"
            )
        elif expected[dist] != meta["version"]:
            report.add(
                "version-mismatch",
                f"{SITE}{folder}",
                f"{dist} is {meta['version']}, expected {expected[dist]}"
                + (" (the build's version)" if dist == lib.canonical_name(lib.DIST_NAME) else " (the lock)"),
            )
        _check_wheel_tags(report, data, folder, target)
    for dist in sorted(set(expected) - set(found)):
        report.add("missing-distribution", dist, f"{dist} {expected[dist]} is locked but not in the archive")
    report.distributions = sorted(f"{d}=={v}" for d, v in found.items())


def _check_wheel_tags(report: AuditReport, data: dict[str, bytes], folder: str, target: Target) -> None:
    raw = data.get(f"{SITE}{folder}/WHEEL")
    if raw is None:
        report.add("missing-required", f"{SITE}{folder}/WHEEL", "dist-info without WHEEL")
        return
    platforms = {"any", *target.pip_platforms()}
    for line in raw.decode("utf-8", "replace").splitlines():
        if not line.startswith("Tag:"):
            continue
        py, abi, plat = line.split(":", 1)[1].strip().split("-")
        ok_py = all(
            p.startswith("py3") or (p.startswith("cp3") and int(p[3:]) <= target.python_tuple[1])
            for p in py.split(".")
        )
        ok_abi = all(a in ("none", "abi3", target.pytag) for a in abi.split("."))
        ok_plat = any(p in platforms for p in plat.split("."))
        if not (ok_py and ok_abi and ok_plat):
            report.add(
                "foreign-wheel",
                f"{SITE}{folder}/WHEEL",
                f"wheel tag {py}-{abi}-{plat} does not fit {target.pytag}-{target.platform}",
            )


# ---------------------------------------------------------------------------------------- RECORD


def _check_records(report: AuditReport, data: dict[str, bytes]) -> None:
    owned: set[str] = set()
    for folder in sorted(_dist_infos(data)):
        record_name = f"{SITE}{folder}/RECORD"
        raw = data.get(record_name)
        if raw is None:
            report.add("record-missing", record_name, "dist-info without RECORD")
            continue
        for row in csv.reader(io.StringIO(raw.decode("utf-8", "replace"))):
            if not row or not row[0]:
                continue
            rel = posixpath.normpath(row[0])
            entry = SITE + rel
            if rel.startswith("../") or rel.startswith("/"):
                report.add("record-path", record_name, f"lists a file outside site-packages: {row[0]}")
                continue
            owned.add(entry)
            digest = row[1] if len(row) > 1 else ""
            if entry not in data:
                report.add("record-missing-file", entry, f"listed in {folder}/RECORD but not in the archive")
                continue
            if not digest:
                if entry != record_name:
                    report.add("record-unhashed", entry, f"listed without a hash in {folder}/RECORD")
                continue
            algo, _, _ = digest.partition("=")
            if algo != "sha256" or arc.record_hash(data[entry]) != digest:
                report.add("record-mismatch", entry, f"content does not match its hash in {folder}/RECORD")
            elif len(row) > 2 and row[2] and row[2] != str(len(data[entry])):
                report.add(
                    "record-mismatch", entry, f"size {len(data[entry])} != {row[2]} in {folder}/RECORD"
                )
    for name in sorted(n for n in data if n.startswith(SITE) and n not in owned):
        report.add("unowned-file", name, "belongs to no distribution's RECORD (planted or left over)")


# ------------------------------------------------------------------------------------- our package


def _check_our_package(report: AuditReport, data: dict[str, bytes], source: Path | None) -> None:
    pkg = f"{SITE}{lib.PACKAGE}/"
    for rel in OUR_REQUIRED:
        if pkg + rel not in data:
            report.add("missing-required", pkg + rel, "part of codex_orchestrator is missing")
    schemas = {n: b for n, b in data.items() if n.startswith(pkg + "_assets/schemas/")}
    if not any(n.endswith(".json") for n in schemas):
        report.add("missing-asset", pkg + "_assets/schemas/", "no bundled JSON schema")
    if not any(n.startswith(pkg + "_assets/templates/") for n in data):
        report.add("missing-asset", pkg + "_assets/templates/", "no bundled template")
    for name, blob in sorted(schemas.items()):
        if name.endswith(".json"):
            try:
                json.loads(blob)
            except ValueError as exc:
                report.add("bad-asset", name, f"not valid JSON ({exc})")
    if source is None:
        return
    packed = {n[len(pkg + "_assets/") :]: b for n, b in data.items() if n.startswith(pkg + "_assets/")}
    wanted: dict[str, bytes] = {}
    for folder in ("schemas", "templates"):
        root = source / folder
        if root.is_dir():
            for path in arc.iter_files(root):
                rel = path.relative_to(source).as_posix()
                if "__pycache__" not in rel.split("/"):
                    wanted[rel] = path.read_bytes()
    for rel, blob in sorted(wanted.items()):
        if rel not in packed:
            report.add(
                "missing-asset", pkg + "_assets/" + rel, f"{rel} is in the source tree but not bundled"
            )
        elif packed[rel] != blob:
            report.add("asset-mismatch", pkg + "_assets/" + rel, f"differs from {rel} in the source tree")
    for rel in sorted(set(packed) - set(wanted)):
        if rel.startswith(("schemas/", "templates/")):
            report.add("unexpected-asset", pkg + "_assets/" + rel, "not in the source tree")
