"""Shared pieces of build/pyz, build/verify and release/release: targets, locks, tools, archive rewriting.

Standard library only on the host side; pip, shiv and hatchling run from a pinned tools venv that is
installed from a local wheelhouse (filled from PyPI only when something is missing and `--offline` is off).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

BUILD_DIR = Path(__file__).resolve().parent
REPO_ROOT = BUILD_DIR.parent
RUNTIME_LOCK = BUILD_DIR / "requirements.lock"
TOOLS_LOCK = BUILD_DIR / "tools.lock"
LAUNCHER_SOURCE = BUILD_DIR / "launcher.py"

DIST_NAME = "codex-orchestrator"
PACKAGE = "codex_orchestrator"
CONSOLE_SCRIPT = "codex-orchestrator"
ENTRY_POINT = "codex_orchestrator.cli:main"
# What stays in the archive's own zip directory: our package and the one library plain CLI commands
# import. Every other library goes into the stored member LIBS_MEMBER (see build/launcher.py): each start
# reads the archive's directory, and a short one costs ~1 ms where the whole ~2,000 entries cost ~12 ms.
HOT_PACKAGES = ("codex_orchestrator", "click")
LIBS_MEMBER = "libs.zip"
SUPPORTED_PYTHONS = ("3.11", "3.12", "3.13", "3.14")
SUPPORTED_MACHINES = ("x86_64", "aarch64")
DEFAULT_GLIBC = (2, 17)
DEFAULT_MUSL = (1, 2)
# The platforms release/release builds by default: Linux glibc, Linux musl (Alpine) and macOS, both CPUs
# each. musllinux_1_2 takes musllinux_1_1 wheels too (pydantic-core publishes only those, checked on PyPI).
DEFAULT_PLATFORMS = (
    "manylinux_2_17_x86_64",
    "manylinux_2_17_aarch64",
    "musllinux_1_2_x86_64",
    "musllinux_1_2_aarch64",
    "macosx_11_0_arm64",
    "macosx_10_15_x86_64",
)
# bytes, per asset: ~9.9 MB of code and wheels plus ~4.5 MB of build-time byte code (one .pyc per .py);
# the macOS x86_64 asset is ~17.5 MB because its cryptography wheel is universal2 (both CPUs' code)
SIZE_BUDGET = 18_000_000
ELF_MACHINES = {"x86_64": 62, "aarch64": 183}
MACHO_CPUS = {"x86_64": 0x01000007, "arm64": 0x0100000C}

EXIT_FAILED = 1
EXIT_ENVIRONMENT = 3


class BuildError(Exception):
    """A foreseeable problem: one sentence, a fix, an exit code. Rendered without a traceback."""

    def __init__(self, message: str, hint: str = "", exit_code: int = EXIT_ENVIRONMENT) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code


def report_error(exc: BuildError, prog: str) -> int:
    print(f"{prog}: error: {exc.message}", file=sys.stderr)
    if exc.hint:
        print(f"{prog}: fix: {exc.hint}", file=sys.stderr)
    return exc.exit_code


# --------------------------------------------------------------------------------------------- targets


_PLATFORM_RE = re.compile(
    r"^(?P<family>manylinux|musllinux|macosx)_(?P<major>\d+)_(?P<minor>\d+)_(?P<machine>x86_64|aarch64|arm64)$"
)
_ASSET_RE = re.compile(
    r"^codex-orchestrator-(?P<version>[^-]+)-cp(?P<major>3)(?P<minor>\d+)-"
    r"(?P<platform>(?:manylinux|musllinux|macosx)_\d+_\d+_\w+)\.pyz$"
)
_MACHINES = {
    "manylinux": ("x86_64", "aarch64"),
    "musllinux": ("x86_64", "aarch64"),
    "macosx": ("x86_64", "arm64"),
}


def host_libc() -> str | None:
    """This machine's C library as a target names it: glibc, musl (Linux without glibc, the launcher's
    test), or None (macOS)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        glibc = (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc ")
    except (ValueError, OSError):
        glibc = False
    return "glibc" if glibc else "musl"


@dataclass(frozen=True)
class Target:
    """One asset target: a CPython minor plus a platform tag (manylinux, musllinux or macosx)."""

    python: str  # "3.11"
    platform: str  # "manylinux_2_17_x86_64", "musllinux_1_2_aarch64", "macosx_11_0_arm64"

    @classmethod
    def parse(cls, python: str, platform: str) -> Target:
        if python not in SUPPORTED_PYTHONS:
            raise BuildError(
                f"unsupported --python {python!r}",
                hint=f"use one of {', '.join(SUPPORTED_PYTHONS)}",
                exit_code=2,
            )
        m = _PLATFORM_RE.match(platform)
        if not m or m.group("machine") not in _MACHINES[m.group("family")]:
            raise BuildError(
                f"unsupported --platform {platform!r}",
                hint="use manylinux_2_<N>_{x86_64,aarch64}, musllinux_1_<N>_{x86_64,aarch64} or "
                "macosx_<X>_<Y>_{arm64,x86_64}, e.g. manylinux_2_17_x86_64 or macosx_11_0_arm64",
                exit_code=2,
            )
        return cls(python, platform)

    @classmethod
    def host(cls, python: str | None = None) -> Target:
        machine = os.uname().machine.lower()
        py = python or f"{sys.version_info[0]}.{sys.version_info[1]}"
        if sys.platform == "darwin":
            machine = {"aarch64": "arm64", "amd64": "x86_64"}.get(machine, machine)
            return cls.parse(py, "macosx_11_0_arm64" if machine == "arm64" else "macosx_10_15_x86_64")
        machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
        if host_libc() == "musl":
            return cls.parse(py, f"musllinux_{DEFAULT_MUSL[0]}_{DEFAULT_MUSL[1]}_{machine}")
        return cls.parse(py, f"manylinux_{DEFAULT_GLIBC[0]}_{DEFAULT_GLIBC[1]}_{machine}")

    def _match(self) -> re.Match[str]:
        m = _PLATFORM_RE.match(self.platform)
        assert m is not None
        return m

    @property
    def family(self) -> str:
        """manylinux, musllinux or macosx."""
        return self._match().group("family")

    @property
    def libc(self) -> str | None:
        """The C library an interpreter must use to run the asset: glibc, musl, or None (macOS)."""
        return {"manylinux": "glibc", "musllinux": "musl"}.get(self.family)

    @property
    def os(self) -> str:
        """linux or macos (the launcher's vocabulary)."""
        return "macos" if self.family == "macosx" else "linux"

    @property
    def pytag(self) -> str:
        return "cp" + self.python.replace(".", "")

    @property
    def machine(self) -> str:
        return self._match().group("machine")

    @property
    def floor(self) -> tuple[int, int]:
        """The glibc, musl or macOS version floor of the platform tag."""
        m = self._match()
        return int(m.group("major")), int(m.group("minor"))

    @property
    def glibc(self) -> tuple[int, int]:
        return self.floor

    @property
    def python_tuple(self) -> tuple[int, int]:
        major, minor = self.python.split(".")
        return int(major), int(minor)

    def asset_name(self, version: str) -> str:
        return f"{DIST_NAME}-{version}-{self.pytag}-{self.platform}.pyz"

    def pip_platforms(self) -> list[str]:
        """Every platform tag a wheel may carry and still run at this floor, newest first."""
        major, minor = self.floor
        if self.family == "musllinux":
            return [f"musllinux_{major}_{m}_{self.machine}" for m in range(minor, -1, -1)]
        if self.family == "macosx":
            versions = [(v, 0) for v in range(major, 10, -1)] if major >= 11 else []
            versions += [(10, m) for m in range(minor if major == 10 else 16, 3, -1)]
            out: list[str] = []
            for vmaj, vmin in versions:
                archs = [self.machine] if vmaj >= 11 or self.machine == "x86_64" else []
                archs += ["universal2"] + (["intel"] if self.machine == "x86_64" else [])
                out += [f"macosx_{vmaj}_{vmin}_{arch}" for arch in archs]
            return out
        tags = [f"manylinux_{major}_{m}_{self.machine}" for m in range(minor, 4, -1)]
        legacy = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}
        out = []
        for m in range(minor, 4, -1):
            out.append(f"manylinux_{major}_{m}_{self.machine}")
            alias = legacy.get((major, m))
            if alias and (alias == "manylinux2014" or self.machine == "x86_64"):
                out.append(f"{alias}_{self.machine}")
        assert set(tags) <= set(out)
        return out

    def pip_target_args(self) -> list[str]:
        args = ["--only-binary=:all:", "--python-version", self.python, "--implementation", "cp"]
        for abi in (self.pytag, "abi3", "none"):
            args += ["--abi", abi]
        for plat in self.pip_platforms():
            args += ["--platform", plat]
        return args

    def marker_environment(self) -> dict[str, str]:
        full = f"{self.python}.0"
        macos = self.family == "macosx"
        return {
            "implementation_name": "cpython",
            "implementation_version": full,
            "os_name": "posix",
            "platform_machine": self.machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Darwin" if macos else "Linux",
            "platform_version": "",
            "python_full_version": full,
            "python_version": self.python,
            "sys_platform": "darwin" if macos else "linux",
        }

    def extension_suffixes(self) -> tuple[str, ...]:
        """The file name endings this target's interpreter loads as extension modules."""
        if self.family == "macosx":
            return (f".cpython-{self.pytag[2:]}-darwin.so", ".abi3.so", ".so")
        libc = "musl" if self.family == "musllinux" else "gnu"
        return (f".cpython-{self.pytag[2:]}-{self.machine}-linux-{libc}.so", ".abi3.so", ".so")

    def extension_ok(self, name: str) -> bool:
        """Whether a CPython extension file name is loadable by this target's interpreter."""
        base = name.rsplit("/", 1)[-1]
        m = re.search(r"\.cpython-\d+-[^.]+\.so$", base)
        if m:
            return base.endswith(self.extension_suffixes()[0])
        return True  # .abi3.so and plain .so: judged by their  / Mach-O header

    def launcher_fields(self) -> dict[str, str]:
        """The launcher's facts about this target, and the release's CPython minors and platforms (so that a
        refused interpreter is told which asset fits it)."""
        fields = {"python": self.python, "platform": self.platform, "os": self.os, "machine": self.machine}
        fields["pythons"] = ",".join(SUPPORTED_PYTHONS)
        fields["platforms"] = ",".join(DEFAULT_PLATFORMS)
        floor = f"{self.floor[0]}.{self.floor[1]}"
        fields[{"manylinux": "glibc", "musllinux": "musl", "macosx": "macos"}[self.family]] = floor
        return fields


def parse_asset_name(name: str) -> tuple[str, Target] | None:
    """(version, target) from `codex-orchestrator-<version>-<pytag>-<platform>.pyz`, or None."""
    m = _ASSET_RE.match(name)
    if not m:
        return None
    python = f"{m.group('major')}.{m.group('minor')}"
    try:
        return m.group("version"), Target.parse(python, m.group("platform"))
    except BuildError:
        return None


# ----------------------------------------------------------------------------------------------- locks


def canonical_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class LockEntry:
    name: str  # canonical
    version: str
    marker: str
    hashes: tuple[str, ...] = field(default_factory=tuple)

    def requirement_line(self) -> str:
        hashes = " ".join(f"--hash={h}" for h in self.hashes)
        return f"{self.name}=={self.version} {hashes}"


def _logical_lines(text: str) -> Iterator[str]:
    buf = ""
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        if buf.strip():
            yield buf.strip()
        buf = ""
    if buf.strip():
        yield buf.strip()


def parse_lock(path: Path) -> list[LockEntry]:
    """Read a hash-pinned requirements lock (`name==version ; marker --hash=...`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BuildError(f"the lock file {path} is missing", hint="run build/lock to create it") from None
    entries: list[LockEntry] = []
    for line in _logical_lines(text):
        if line.startswith("-"):
            continue
        spec, _, rest = line.partition("--hash=")
        hashes = tuple(h.strip() for h in ("--hash=" + rest).split("--hash=") if h.strip()) if rest else ()
        req, _, marker = spec.partition(";")
        name, sep, version = req.strip().partition("==")
        if not sep or not hashes:
            raise BuildError(
                f"{path.name}: {line[:60]!r} is not pinned with '==' and hashes",
                hint="regenerate the lock with build/lock",
            )
        entries.append(LockEntry(canonical_name(name), version.strip(), marker.strip(), hashes))
    return entries


def _evaluate_marker(marker: str, env: dict[str, str]) -> bool:
    try:
        from packaging.markers import Marker
    except ImportError:  # pip vendors the same library
        try:
            from pip._vendor.packaging.markers import Marker  # type: ignore[assignment,unused-ignore]
        except ImportError:
            raise BuildError(
                "neither 'packaging' nor pip is importable, so lock markers cannot be evaluated",
                hint="run the build with a Python that has pip (python3 -m ensurepip)",
            ) from None
    return bool(Marker(marker).evaluate(env))


def entries_for_target(entries: Iterable[LockEntry], target: Target) -> list[LockEntry]:
    env = target.marker_environment()
    return [e for e in entries if not e.marker or _evaluate_marker(e.marker, env)]


def tools_versions() -> dict[str, str]:
    return {e.name: e.version for e in parse_lock(TOOLS_LOCK)}


# ------------------------------------------------------------------------------------------- project


SOURCE_ITEMS = ("pyproject.toml", "README.md", "LICENSE", "src", "schemas", "templates")


def copy_source_tree(origin: Path, dest: Path, items: Iterable[str] = SOURCE_ITEMS) -> Path:
    """Copy what the wheel is built from into `dest` (links kept, bytecode dropped)."""
    for item in items:
        src = origin / item
        if src.is_dir():
            shutil.copytree(
                src, dest / item, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        elif src.is_file():
            shutil.copy2(src, dest / item)
    return dest


def project_version(source: Path) -> str:
    try:
        data = tomllib.loads((source / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BuildError(f"cannot read {source / 'pyproject.toml'}: {exc}") from None
    version = data.get("project", {}).get("version")
    if not isinstance(version, str):
        raise BuildError("pyproject.toml has no static [project] version", hint="set project.version")
    return version


def source_date_epoch(source: Path) -> int:
    """SOURCE_DATE_EPOCH if set, else the commit time of HEAD."""
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env:
        if not env.isdigit():
            raise BuildError(f"SOURCE_DATE_EPOCH={env!r} is not a Unix time", hint="unset it or use digits")
        return int(env)
    try:
        out = subprocess.run(
            ["git", "-C", str(source), "log", "-1", "--format=%ct"],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        out = None
    if out is not None and out.returncode == 0 and out.stdout.strip().isdigit():
        return int(out.stdout.strip())
    raise BuildError(
        f"cannot tell the commit time of {source} (not a git checkout, or no commit yet)",
        hint="commit first, or set SOURCE_DATE_EPOCH explicitly (e.g. SOURCE_DATE_EPOCH=$(date +%s))",
    )
