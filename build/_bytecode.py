"""Byte code for the .pyz: compiled at build time by the target CPython, checked by the audit.

Layout: zipimport reads `mod.pyc` beside `mod.py` (it ignores `__pycache__/`), so every packed
`site-packages/**/X.py` gets an `X.pyc` next to it, plus `__main__.pyc` for the launcher. Each one is an
unchecked hash-based pyc (PEP 552): no timestamps, so two builds are byte-identical, and no run reads the
source to validate it (the archive is immutable; its build id pins the contents).

Run as a script by the target interpreter (standard library only, works under `-S -I`):
    python3.X -S -I build/_bytecode.py tree SITE_DIR DISPLAY_PREFIX     # prints the compiled .py paths
    python3.X -S -I build/_bytecode.py file SOURCE TARGET DISPLAY_NAME
"""

from __future__ import annotations

import importlib.util
import os
import py_compile
import sys

# The magic number of each CPython minor's .pyc (stable across its patch releases).
MAGIC = {"3.11": 3495, "3.12": 3531, "3.13": 3571, "3.14": 3627}
FLAG_HASH_BASED = 0b01
FLAG_CHECK_SOURCE = 0b10


def magic_bytes(python: str) -> bytes | None:
    number = MAGIC.get(python)
    return None if number is None else number.to_bytes(2, "little") + b"\r\n"


def compile_file(source: str, target: str, display: str) -> None:
    py_compile.compile(
        source,
        cfile=target,
        dfile=display,
        doraise=True,
        optimize=0,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    os.chmod(target, 0o644)


def compile_tree(site: str, prefix: str) -> tuple[list[str], list[str]]:
    """Compile every .py under `site` to X.pyc beside it; (compiled, skipped) relative posix paths.

    A file this Python cannot compile (a module for another version) is skipped and gets no pyc.
    """
    compiled: list[str] = []
    skipped: list[str] = []
    for dirpath, dirnames, filenames in os.walk(site):
        dirnames.sort()
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, site).replace(os.sep, "/")
            try:
                compile_file(path, path + "c", f"{prefix}/{rel}")
            except (py_compile.PyCompileError, SyntaxError, ValueError, UnicodeDecodeError):
                skipped.append(rel)
                continue
            compiled.append(rel)
    return compiled, skipped


def pyc_problem(pyc: bytes, source: bytes, magic: bytes | None) -> str | None:
    """Why `pyc` is not the build-time byte code of `source` for the expected magic (None when it is)."""
    if len(pyc) < 16:
        return "truncated (shorter than a pyc header)"
    if magic is not None and pyc[:4] != magic:
        return f"magic {pyc[:4].hex()} is not the target Python's {magic.hex()}"
    if pyc[2:4] != b"\r\n":
        return "not a CPython 3 pyc header"
    flags = int.from_bytes(pyc[4:8], "little")
    if not flags & FLAG_HASH_BASED:
        return "timestamp-based (the build compiles hash-based, unchecked pyc)"
    if flags & FLAG_CHECK_SOURCE:
        return "a checked hash-based pyc (every import would re-read and hash the source)"
    import _imp

    want = _imp.source_hash(int.from_bytes(pyc[:4], "little"), source)
    if pyc[8:16] != want:
        return "its source hash does not match the packed .py (compiled from other source)"
    return None


def host_magic() -> bytes:
    return importlib.util.MAGIC_NUMBER


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "tree":
        compiled, skipped = compile_tree(argv[1], argv[2])
        sys.stdout.write("".join(f"compiled {p}\n" for p in compiled))
        sys.stdout.write("".join(f"skipped {p}\n" for p in skipped))
        return 0
    if len(argv) == 4 and argv[0] == "file":
        compile_file(argv[1], argv[2], argv[3])
        return 0
    sys.stderr.write(__doc__ or "")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
