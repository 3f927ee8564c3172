# ruff: noqa: UP031, UP024
"""`__main__.py` of the codex-orchestrator .pyz: the whole start-up path of the archive.

`build/pyz` writes this file into the archive in place of shiv's two-line `__main__.py` (plus its
hash-based `__main__.pyc`), with the `BUILD` and `NATIVE` tables filled in. Rules:

- Parseable by every Python a user may start it with (2.7, 3.6, ...): no f-strings, no annotations (types
  are comments, checked by mypy), `%` formatting. A wrong interpreter must get the one-line message and
  exit 3, never a SyntaxError.
- Standard library only, cheap (`os` and `sys`, already loaded by the interpreter), and never a byte on
  stdout except the answer to `--version`/`--help`: stdout is the MCP protocol channel.

What it does:
1. Refuse what the archive cannot run on (Windows, another CPython minor, OS, CPU or libc): one sentence
   naming the Python to use, exit 3.
2. Choose the extraction root for compiled modules: `SHIV_ROOT` when set (it must be absolute), else
   `~/.shiv` when HOME is usable, else a private directory (0700, owned by us) under TMPDIR or /tmp, then
   exported as `SHIV_ROOT` so that our child processes reuse it.
3. Answer `--version` and `--help` from the text `build/pyz` rendered with the real CLI (nothing imported).
4. Import pure-Python code straight from the archive (zipimport, with the hash-based `.pyc` compiled at
   build time beside each `.py`). Our package and click sit in the archive itself; the libraries only
   some commands import sit in the stored member `libs.zip`, copied out whole on the first such import.
   A compiled extension module (plus the shared libraries its wheel vendors) is extracted the first time
   it is imported. Nothing is compiled at run time; the first run extracts nothing that is not needed.
5. Call the entry point.

Longer than 400 lines because it ships as one file inside every .pyz and must run with nothing else
imported: version gate, extraction of native code, zip imports and the fast paths live together.
"""

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # for mypy only: nothing more is imported at run time
    from importlib.machinery import ModuleSpec  # noqa: F401 (named in type comments)
    from importlib.metadata import PathDistribution  # noqa: F401

# Filled in by build/pyz: version, python, platform, os, machine, glibc|musl|macos, build_id, asset,
# entry_point, bytecode, dists (the dist-info folders, comma-separated), libs, libs_dists and libs_size
# (the top-level names, dist-info folders and size of libs.zip), mcp_handshake (the MCP SDK's handshake
# protocol versions, for `mcp serve`'s first answers), and the rendered outputs of `--version` and
# `--help` (out_version, out_help).
BUILD = {}  # type: dict[str, str]  # @BUILD@
# Filled in by build/pyz: extension module name -> archive members to extract (the module first).
NATIVE = {}  # type: dict[str, list[str]]  # @NATIVE@

# What the launcher saw and chose (with `extracted`, the folder it copies libs.zip and compiled modules
# into); read by codex_orchestrator.runtime through sys.modules["__main__"].
CODEX_ORCHESTRATOR_LAUNCHER = {}  # type: dict[str, str]

EXIT_ENVIRONMENT = 3
FASTPATH_ENV = "CODEX_ORCHESTRATOR_PYZ_FASTPATH"  # "0": let the CLI answer --version/--help itself
EXTRACT_ENV = "CODEX_ORCHESTRATOR_PYZ_EXTRACT"  # "all": extract every compiled module now (shared installs)
_LINUX_MACHINES = {"amd64": "x86_64", "arm64": "aarch64"}
_OS_NAMES = {"linux": "Linux", "macos": "macOS"}


def _fail(message):  # type: (str) -> None
    sys.stderr.write("codex-orchestrator: " + message + "\n")
    sys.stderr.flush()
    raise SystemExit(EXIT_ENVIRONMENT)


def _glibc_version():  # type: () -> tuple[int, int] | None
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError, AttributeError):
        return None
    name, _, version = text.partition(" ")
    if name != "glibc":
        return None
    parts = version.split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return None


def _macos_version():  # type: () -> tuple[int, int] | None
    """The macOS version from the Darwin kernel release (20.x = 11, 24.x = 15, 19.x = 10.15)."""
    try:
        darwin = int(os.uname()[2].split(".")[0])
    except (AttributeError, IndexError, ValueError, OSError):
        return None
    if darwin >= 20:
        return (darwin - 9, 0) if darwin < 25 else (darwin + 1, 0)
    return 10, darwin - 4


def _floor(text):  # type: (str) -> tuple[int, ...]
    parts = (text or "0.0").split(".")
    return tuple(int(p) for p in parts) if len(parts) > 1 else (int(parts[0]), 0)


def _musl_loader():  # type: () -> str | None
    """The path of musl's loader: /lib/ld-musl-ARCH.so.1 (Alpine's), else the one mapped into this process
    (an interpreter built against a musl elsewhere: its loader is named in /proc/self/maps)."""
    path = "/lib/ld-musl-%s.so.1" % os.uname()[4]
    if os.path.exists(path):
        return path
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                fields = line.split(None, 5)  # address perms offset device inode path
                name = fields[5].strip() if len(fields) == 6 else ""
                base = name.rsplit("/", 1)[-1]
                if base == "libc.so" or base.startswith(("ld-musl-", "libc.musl-")):
                    return name
    except (IOError, OSError):  # Python 2.7 runs this too: its IOError is not an OSError
        pass
    return None


def _musl_version():  # type: () -> tuple[int, ...] | None
    """musl's version, read from its loader (it holds "1.2.5" once, as `ldd` prints it, in its read-only
    data near the end: read backwards in 128 KiB steps, ~0.3 ms); None when it cannot be told."""
    step = 1 << 17
    loader = _musl_loader()
    if loader is None:
        return None
    try:
        with open(loader, "rb") as f:
            f.seek(0, 2)
            end = f.tell()
            tail = b""
            while end > 0:
                start = max(0, end - step)
                f.seek(start)
                data = f.read(end - start) + tail[:16]  # with the step after's first bytes: whole at the edge
                at = data.rfind(b"\x001.")
                while at >= 0:
                    stop = data.find(b"\x00", at + 1)
                    parts = data[at + 1 : stop].split(b".") if stop > 0 else []
                    if len(parts) == 3 and all(p.isdigit() and len(p) < 4 for p in parts):
                        return tuple(int(p) for p in parts)
                    at = data.rfind(b"\x001.", 0, at)
                tail, end = data, start
    except (IOError, OSError):  # Python 2.7 runs this too: its IOError is not an OSError
        return None
    return None


def _wanted(build):  # type: (dict[str, str]) -> str
    os_name = build.get("os", "linux")
    where = "%s %s" % (_OS_NAMES.get(os_name, os_name), build.get("machine"))
    if build.get("glibc"):
        where += " (glibc >= %s)" % build["glibc"]
    elif build.get("musl"):
        where += " (musl >= %s)" % build["musl"]
    elif build.get("macos"):
        where += " (macOS >= %s)" % build["macos"]
    return where


def check_interpreter(build, seen=None):  # type: (dict[str, str], dict[str, str] | None) -> str | None
    """Why this interpreter cannot run the archive, or None when it can. What it learnt on the way (musl's
    version, read only for a musl build) goes into `seen`, for self-check."""
    asset = build.get("asset", "this file")
    if sys.platform.startswith(("win", "cygwin", "msys")):
        return (
            "codex-orchestrator does not run on Windows yet; use it under WSL, Linux or macOS "
            "(%s is the build for %s)." % (asset, _wanted(build))
        )
    need = build.get("python", "")
    have = "%d.%d" % (sys.version_info[0], sys.version_info[1])
    problems = []  # type: list[str]
    implementation = getattr(getattr(sys, "implementation", None), "name", "cpython")
    if implementation != "cpython":
        problems.append("it is %s, not CPython" % implementation)
    elif have != need:
        problems.append("it is Python %s" % sys.version.split()[0])
    os_name = build.get("os", "linux")
    machine = os.uname()[4].lower()
    if os_name == "macos":
        if sys.platform != "darwin":
            problems.append("it runs on %s, not macOS" % sys.platform)
        else:
            if machine != build.get("machine"):
                problems.append("the CPU is %s" % machine)
            mac = _macos_version()
            if mac is not None and mac < _floor(build.get("macos", "")):
                problems.append("macOS is %d.%d" % mac)
    elif not sys.platform.startswith("linux"):
        problems.append("it runs on %s, not Linux" % sys.platform)
    else:
        machine = _LINUX_MACHINES.get(machine, machine)
        if machine != build.get("machine"):
            problems.append("the CPU is %s" % machine)
        libc = _glibc_version()
        if build.get("musl"):
            musl = None if libc is not None else _musl_version()
            if musl is not None and seen is not None:
                seen["libc"] = "musl " + ".".join(map(str, musl))
            if libc is not None:
                problems.append("the C library is glibc, not musl")
            elif musl is not None and musl < _floor(build["musl"]):
                problems.append("musl is %s" % ".".join(map(str, musl)))
        elif libc is None:
            problems.append("the C library is %s" % ("musl, not glibc" if _musl_version() else "not glibc"))
        elif libc < _floor(build.get("glibc", "2.17")):
            problems.append("glibc is %d.%d" % libc)
    if not problems:
        return None
    where = sys.argv[0] if sys.argv and sys.argv[0] else asset
    here = _asset_for_here(build)
    if have != need or implementation != "cpython":
        fix = "Run it as `python%s %s`, or download %s" % (
            need,
            where,
            "%s, the asset for this Python and platform" % here
            if here
            else "the asset built for your Python and platform",
        )
    elif here and here != asset:
        fix = "Download %s instead, the asset for this platform" % here
    elif here:
        fix = "Run it on a system that meets that floor"
    else:
        fix = "No release asset fits this platform"
    return "%s needs CPython %s on %s, but %s (%s). %s." % (
        asset,
        need,
        _wanted(build),
        " and ".join(problems),
        sys.executable or "unknown interpreter",
        fix,
    )


def _asset_for_here(build):  # type: (dict[str, str]) -> str | None
    """The name of the release asset this interpreter and machine can run, from the release's list of
    CPython minors and platforms in the build table; None when the release has none for them."""
    minor = "%d.%d" % (sys.version_info[0], sys.version_info[1])
    if getattr(getattr(sys, "implementation", None), "name", "cpython") != "cpython" or minor not in (
        build.get("pythons", "").split(",")
    ):
        return None
    machine = os.uname()[4].lower()
    libc = None  # type: tuple[int, ...] | None
    if sys.platform == "darwin":
        family, machine = "macosx", {"aarch64": "arm64", "amd64": "x86_64"}.get(machine, machine)
        have = _macos_version()
    elif sys.platform.startswith("linux"):
        libc = _glibc_version()
        family, machine = "manylinux" if libc else "musllinux", _LINUX_MACHINES.get(machine, machine)
        have = libc
    else:
        return None
    for platform in build.get("platforms", "").split(","):
        parts = platform.split("_")  # family, major, minor, machine (x86_64 has an underscore)
        if len(parts) < 4 or parts[0] != family or "_".join(parts[3:]) != machine:
            continue
        if family != "musllinux" and have is not None and have < _floor("%s.%s" % (parts[1], parts[2])):
            return None
        return "codex-orchestrator-%s-cp%s-%s.pyz" % (
            build.get("version", ""),
            minor.replace(".", ""),
            platform,
        )
    return None


# ------------------------------------------------------------------------------------ extraction root


def _usable_dir(path):  # type: (str) -> bool
    """True when `path` is (or can be made) a directory we can write into."""
    try:
        os.makedirs(path)
    except OSError:
        pass
    return os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)


def _private_root(uid):  # type: (int) -> str
    """A 0700 directory owned by us under TMPDIR or /tmp; refuses one an attacker could control."""
    base = os.environ.get("TMPDIR", "")
    if not (base and os.path.isabs(base) and os.path.isdir(base) and os.access(base, os.W_OK | os.X_OK)):
        base = "/tmp"
    path = os.path.join(base, "codex-orchestrator-%d" % uid, "shiv")
    top = os.path.dirname(path)
    try:
        os.mkdir(top, 0o700)
    except OSError as exc:
        if not os.path.lexists(top):
            _fail(
                "cannot create a private extraction directory %s (%s). "
                "Set SHIV_ROOT to an absolute, writable directory and run again." % (top, exc.strerror)
            )
    st = os.lstat(top)
    if not os.path.isdir(top) or os.path.islink(top) or st.st_uid != uid:
        _fail(
            "%s exists but is not a directory owned by you; refusing to extract there. "
            "Set SHIV_ROOT to an absolute, writable directory and run again." % top
        )
    if st.st_mode & 0o077:
        os.chmod(top, 0o700)
    if not _usable_dir(path):
        _fail("cannot write to %s. Set SHIV_ROOT to an absolute, writable directory and run again." % path)
    return path


def extraction_dir(root, build):  # type: (str, dict[str, str]) -> str
    """Where this build's compiled modules are extracted: one folder per build id, whatever the file name."""
    return os.path.join(root, "codex-orchestrator_%s" % build.get("build_id", "unknown"))


def default_root():  # type: () -> str
    return os.path.join(os.environ.get("HOME", ""), ".shiv")


def choose_root(build, archive):  # type: (dict[str, str], str) -> str | None
    """The extraction root to export as SHIV_ROOT, or None to keep the default (~/.shiv)."""
    explicit = os.environ.get("SHIV_ROOT")
    if explicit:
        expanded = os.path.expandvars(os.path.expanduser(explicit))
        if "$" in expanded or not os.path.isabs(expanded):
            _fail(
                "SHIV_ROOT must be an absolute path, got %r (a relative path or an unset variable would "
                "make extraction follow the current directory). Set it to an absolute directory, "
                "e.g. SHIV_ROOT=/home/me/.shiv." % explicit
            )
        return expanded if expanded != explicit else None
    home = os.environ.get("HOME", "")
    if home and os.path.isabs(home) and os.path.isdir(home):  # never create a missing HOME
        root = default_root()
        if os.path.isdir(extraction_dir(root, build)) or _usable_dir(root):
            return None
    return _private_root(os.getuid())


# --------------------------------------------------------------------------------- compiled modules


class ArchiveFinder:
    """The archive's own finder, first on `sys.meta_path`, for what zipimport cannot do by itself.

    - The libraries only some commands need (`mcp serve` and its SDK, jsonschema; BUILD["libs"] names
      them) travel in one stored member, `libs.zip`, so that every start reads a zip directory of a few
      hundred entries, not of two thousand. The first import of one of them copies `libs.zip` to the
      extraction folder (once per build) and puts it on `sys.path`; zipimport imports from it from then on.
    - Compiled extension modules (the names in `NATIVE`): extracted on first import, then loaded; a host's
      copy of the same module can never be picked instead. Every other import goes to zipimport.
    - Distribution metadata (`importlib.metadata`), which the standard finder reads from a zip's root
      only, not from `archive.pyz/site-packages`.
    """

    def __init__(self, archive, target, native, build):
        # type: (str, str, dict[str, list[str]], dict[str, str]) -> None
        self.archive = archive  # the path zipimport knows the archive by
        self.target = target
        self.native = native
        self.libs = frozenset(_names(build, "libs"))  # top-level import names inside libs.zip
        self.libs_size = int(build.get("libs_size") or 0)
        self.libs_archive = ""  # libs.zip on disk, once mounted
        # "name-version.dist-info" folders under site-packages/, and whether libs.zip holds them
        self.dists = [(d, False) for d in _names(build, "dists")]
        self.dists += [(d, True) for d in _names(build, "libs_dists")]
        import _thread  # (built in; imported here, past the version check: Python 2 names it `thread`)

        self._lock = _thread.allocate_lock()  # one thread copies out at a time (`mcp serve` has several)

    def find_distributions(self, context=None):  # type: (object) -> list[PathDistribution]
        from importlib.metadata import PathDistribution

        wanted = getattr(context, "name", None)
        key = _dist_key(wanted) if wanted else None
        found = []  # type: list[PathDistribution]
        for folder, in_libs in self.dists:
            if key is None or _dist_key(folder[: -len(".dist-info")].rsplit("-", 1)[0]) == key:
                if in_libs:
                    with self._lock:
                        archive = self.mount()
                else:
                    archive = self.archive
                found.append(PathDistribution(ArchivePath(archive, "site-packages/" + folder)))
        return found

    def find_spec(self, fullname, path=None, target=None):  # type: (str, object, object) -> ModuleSpec | None
        members = self.native.get(fullname)
        if not members:
            if not self.libs_archive and fullname.partition(".")[0] in self.libs:
                with self._lock:
                    self.mount()  # then the path finder finds it in libs.zip
            return None
        import importlib.machinery
        import importlib.util

        with self._lock:
            location = self.extract(members)[0]
        loader = importlib.machinery.ExtensionFileLoader(fullname, location)
        return importlib.util.spec_from_file_location(fullname, location, loader=loader)

    def mount(self):  # type: () -> str
        """libs.zip on disk (copied out of the archive unless already there), on `sys.path`. The caller
        holds the lock."""
        if self.libs_archive or not self.libs:
            return self.libs_archive or self.archive
        dest = os.path.join(self.target, "libs.zip")
        try:
            there = os.stat(dest).st_size == self.libs_size
        except OSError:
            there = False
        if not there:
            self._copy_out("libs.zip", dest, self.archive)
        self.libs_archive = dest
        entry = self.archive + "/site-packages"
        index = sys.path.index(entry) + 1 if entry in sys.path else len(sys.path)
        sys.path.insert(index, dest + "/site-packages")
        return dest

    def extract(self, members):  # type: (list[str]) -> list[str]
        """Each member's path on disk, extracted from the archive unless already there (atomic rename).
        The caller holds the lock."""
        paths = []  # type: list[str]
        source = self.mount()
        for member in members:
            dest = os.path.join(self.target, *member.split("/"))
            paths.append(dest)
            if not os.path.isfile(dest):
                self._copy_out(member, dest, source)
        return paths

    def _copy_out(self, member, dest, source):  # type: (str, str, str) -> None
        import zipimport

        tmp = "%s.%d.tmp" % (dest, os.getpid())
        try:
            data = zipimport.zipimporter(source).get_data(member)
            parent = os.path.dirname(dest)
            if not os.path.isdir(parent):
                os.makedirs(parent, 0o755)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)
            os.rename(tmp, dest)
        except OSError as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise ImportError(  # noqa: B904 (no `from`: this file must parse on Python 2)
                "cannot extract %s from %s to %s (%s); set SHIV_ROOT to an absolute, writable "
                "directory on a filesystem that allows executable mappings"
                % (member, source, dest, exc.strerror or exc)
            )


def _names(build, field):  # type: (dict[str, str], str) -> list[str]
    return [name for name in build.get(field, "").split(",") if name]


def _dist_key(name):  # type: (str) -> str
    return name.lower().replace("-", "_").replace(".", "_")


class ArchivePath:
    """The little of a path that `importlib.metadata.PathDistribution` uses, over archive members."""

    def __init__(self, archive, member):  # type: (str, str) -> None
        self.archive = archive
        self.member = member.rstrip("/")

    def __str__(self):  # type: () -> str
        return self.archive + "/" + self.member

    def __truediv__(self, name):  # type: (str) -> ArchivePath
        return self.joinpath(name)

    @property
    def parent(self):  # type: () -> ArchivePath
        return ArchivePath(self.archive, self.member.rsplit("/", 1)[0] if "/" in self.member else "")

    @property
    def name(self):  # type: () -> str
        return self.member.rsplit("/", 1)[-1]

    def joinpath(self, *names):  # type: (*str) -> ArchivePath
        parts = ([self.member] if self.member else []) + list(names)  # no [*x]: Python 2 must parse this
        return ArchivePath(self.archive, "/".join(parts))

    def read_bytes(self):  # type: () -> bytes
        import zipimport

        try:
            data = zipimport.zipimporter(self.archive).get_data(self.member)
        except OSError:
            raise FileNotFoundError(str(self))  # noqa: B904 (no `from`: this file must parse on Python 2)
        return bytes(data)

    def read_text(self, encoding="utf-8"):  # type: (str) -> str
        return self.read_bytes().decode(encoding)


def _write_all(fd, data):  # type: (int, bytes) -> None
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


# ------------------------------------------------------------------------------------------- answers


def _columns():  # type: () -> int
    """The width click would format help for (shutil.get_terminal_size without importing shutil)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def prepared_answer(build, argv):  # type: (dict[str, str], list[str]) -> str | None
    """The text `build/pyz` rendered for exactly these arguments, or None to let the CLI answer."""
    if os.environ.get(FASTPATH_ENV) == "0":
        return None
    if argv == ["--version"]:
        return build.get("out_version") or None
    if argv in (["--help"], ["-h"]) and _columns() >= 80:  # rendered at click's widest layout
        return build.get("out_help") or None
    return None


def _answer(text):  # type: (str) -> None
    """Print `text` and exit 0, with standard output treated as the commands treat it: closed (`>&-`),
    the text is dropped; its reader gone (`| head -c1`), exit 141 quietly; any other failure
    (`> /dev/full`), one sentence and a fix on stderr, exit 3."""
    if sys.stdout is None:
        raise SystemExit(0)
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError as exc:
        if exc.errno == 32:  # EPIPE
            os._exit(141)
        why = "the disk is full" if exc.errno == 28 else (exc.strerror or str(exc))  # 28: ENOSPC
        try:
            sys.stderr.write(
                "Error: cannot write to standard output: %s\n"
                "Fix: free space where standard output goes, or send it elsewhere\n" % why
            )
            sys.stderr.flush()
        except (AttributeError, OSError):  # no stderr either
            pass
        os._exit(3)
    raise SystemExit(0)


# ---------------------------------------------------------------------------------------------- main


def _archive_key():  # type: () -> str
    """The archive path as zipimport knows it (its directory cache is keyed by this exact string)."""
    loader = globals().get("__loader__")
    archive = getattr(loader, "archive", None)
    if isinstance(archive, str) and archive:
        return archive
    return sys.path[0] if sys.path and sys.path[0] else os.path.abspath(sys.argv[0])


def _site_index():  # type: () -> int
    """Before the host's first site-packages (like shiv), else at the end: the stdlib stays first."""
    for index, entry in enumerate(sys.path):
        if os.path.basename(entry.rstrip("/")) in ("site-packages", "dist-packages"):
            return index
    return len(sys.path)


def main():  # type: () -> None
    seen = {}  # type: dict[str, str]
    problem = check_interpreter(BUILD, seen)
    if problem:
        _fail(problem)
    archive = os.path.realpath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    root = choose_root(BUILD, archive)
    if root is not None:
        os.environ["SHIV_ROOT"] = root
    chosen = root or os.environ.get("SHIV_ROOT") or default_root()
    key = _archive_key()
    finder = ArchiveFinder(key, extraction_dir(chosen, BUILD), NATIVE, BUILD)
    if os.environ.get(EXTRACT_ENV) == "all":
        try:
            with finder._lock:
                finder.mount()
                for members in NATIVE.values():
                    finder.extract(members)
        except ImportError as exc:
            _fail(str(exc))
    answer = prepared_answer(BUILD, sys.argv[1:])
    if answer is not None:
        _answer(answer)
    CODEX_ORCHESTRATOR_LAUNCHER.update(BUILD)
    CODEX_ORCHESTRATOR_LAUNCHER.update(seen)
    CODEX_ORCHESTRATOR_LAUNCHER.update(
        archive=archive, root=root or os.environ.get("SHIV_ROOT", ""), extracted=finder.target
    )
    for name in ("out_help", "out_version", "dists", "libs", "libs_dists", "libs_size"):
        CODEX_ORCHESTRATOR_LAUNCHER.pop(name, None)
    sys.path.insert(_site_index(), key + "/site-packages")
    sys.meta_path.insert(0, finder)
    module_name, _, attribute = BUILD.get("entry_point", "codex_orchestrator.cli:main").partition(":")
    module = __import__(module_name, fromlist=[attribute])
    sys.exit(getattr(module, attribute)())


if __name__ == "__main__":
    main()
