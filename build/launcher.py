"""`__main__.py` of the codex-orchestrator .pyz: runs before shiv's bootstrap.

`build/pyz` writes this file into the archive in place of shiv's two-line `__main__.py`, with the
`BUILD` table filled in. Rules: standard library only (`os`, `sys`), cheap (no zip reading, no `tempfile`,
no `platform`), and never a byte on stdout, which is the MCP protocol channel.

1. Refuse an interpreter the archive cannot run on (wrong CPython minor, OS, CPU or libc): a one-line
   message naming the Python it needs, exit 3, before any compiled dependency fails with a traceback.
2. Choose the extraction root: `SHIV_ROOT` when set (it must be absolute), else `~/.shiv` when HOME is
   usable, else a private directory (0700, owned by us, absolute) under TMPDIR or /tmp, which is then
   exported as `SHIV_ROOT` so that our own child processes reuse it.
3. Hand over to shiv's bootstrap.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn  # click imports typing anyway: no extra start-up cost

# Filled in by build/pyz (keys: version, python, platform, machine, glibc, build_id, asset).
BUILD: dict[str, str] = {}  # @BUILD@

# What the launcher saw and chose; read by codex_orchestrator.runtime through sys.modules["__main__"].
CODEX_ORCHESTRATOR_LAUNCHER: dict[str, str] = {}

EXIT_ENVIRONMENT = 3
_MACHINE_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}


def _fail(message: str) -> NoReturn:
    sys.stderr.write("codex-orchestrator: " + message + "\n")
    sys.stderr.flush()
    raise SystemExit(EXIT_ENVIRONMENT)


def _glibc_version() -> tuple[int, int] | None:
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


def check_interpreter(build: dict[str, str]) -> str | None:
    """Why this interpreter cannot run the archive, or None when it can."""
    need = build.get("python", "")
    have = f"{sys.version_info[0]}.{sys.version_info[1]}"
    problems: list[str] = []
    if sys.implementation.name != "cpython":
        problems.append(f"it is {sys.implementation.name}, not CPython")
    elif have != need:
        problems.append(f"it is Python {sys.version.split()[0]}")
    if not sys.platform.startswith("linux"):
        problems.append(f"it runs on {sys.platform}, not Linux")
    else:
        machine = os.uname().machine.lower()
        machine = _MACHINE_ALIASES.get(machine, machine)
        if machine != build.get("machine"):
            problems.append(f"the CPU is {machine}")
        floor = tuple(int(p) for p in build.get("glibc", "2.17").split("."))
        libc = _glibc_version()
        if libc is None:
            problems.append("the C library is not glibc")
        elif libc < floor:
            problems.append(f"glibc is {libc[0]}.{libc[1]}")
    if not problems:
        return None
    asset = build.get("asset", "this file")
    where = sys.argv[0] if sys.argv and sys.argv[0] else asset
    return (
        f"{asset} needs CPython {need} on Linux {build.get('machine')} (glibc >= {build.get('glibc')}), "
        f"but {' and '.join(problems)} ({sys.executable or 'unknown interpreter'}). "
        f"Run it as `python{need} {where}`, or download the asset built for your Python and platform."
    )


def _usable_dir(path: str) -> bool:
    """True when `path` is (or can be made) a directory we can write into."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK | os.X_OK)


def _private_root(uid: int) -> str:
    """A 0700 directory owned by us under TMPDIR or /tmp; refuses one an attacker could control."""
    base = os.environ.get("TMPDIR", "")
    if not (base and os.path.isabs(base) and os.path.isdir(base) and os.access(base, os.W_OK | os.X_OK)):
        base = "/tmp"
    path = os.path.join(base, f"codex-orchestrator-{uid}", "shiv")
    top = os.path.dirname(path)
    try:
        os.mkdir(top, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        _fail(
            f"cannot create a private extraction directory {top} ({exc.strerror}). "
            "Set SHIV_ROOT to an absolute, writable directory and run again."
        )
    st = os.lstat(top)
    if not os.path.isdir(top) or os.path.islink(top) or st.st_uid != uid:
        _fail(
            f"{top} exists but is not a directory owned by you; refusing to extract there. "
            "Set SHIV_ROOT to an absolute, writable directory and run again."
        )
    if st.st_mode & 0o077:
        os.chmod(top, 0o700)
    if not _usable_dir(path):
        _fail(f"cannot write to {path}. Set SHIV_ROOT to an absolute, writable directory and run again.")
    return path


def choose_root(build: dict[str, str], archive: str) -> str | None:
    """The extraction root to export as SHIV_ROOT, or None to keep shiv's default (~/.shiv)."""
    explicit = os.environ.get("SHIV_ROOT")
    if explicit:
        expanded = os.path.expandvars(os.path.expanduser(explicit))
        if "$" in expanded or not os.path.isabs(expanded):
            _fail(
                f"SHIV_ROOT must be an absolute path, got {explicit!r} (a relative path or an unset "
                "variable would make extraction follow the current directory). Set it to an absolute "
                "directory, e.g. SHIV_ROOT=/home/me/.shiv."
            )
        return expanded if expanded != explicit else None
    home = os.environ.get("HOME", "")
    if home and os.path.isabs(home) and os.path.isdir(home):  # never create a missing HOME
        root = os.path.join(home, ".shiv")
        extracted = os.path.join(root, f"{os.path.basename(archive)}_{build.get('build_id')}")
        if os.path.isdir(os.path.join(extracted, "site-packages")) or _usable_dir(root):
            return None
    return _private_root(os.getuid())


def main() -> None:
    problem = check_interpreter(BUILD)
    if problem:
        _fail(problem)
    archive = os.path.realpath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    root = choose_root(BUILD, archive)
    if root is not None:
        os.environ["SHIV_ROOT"] = root
    CODEX_ORCHESTRATOR_LAUNCHER.update(BUILD, archive=archive, root=root or os.environ.get("SHIV_ROOT", ""))
    import _bootstrap  # type: ignore[import-not-found]  # shiv's runtime, packed beside this file

    _bootstrap.bootstrap()


if __name__ == "__main__":
    main()
