"""SHA-256, the one digest this tool records: of short texts (resume tokens, pipelines, pinned files) and
of files and streams (the .pyz, extracted files).

Short texts use CPython's own SHA-256 when it has one: loading OpenSSL's (through `hashlib`) costs about
3 ms, far more than hashing a token. Files use `hashlib`, whose OpenSSL code is many times faster per byte.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

from codex_orchestrator._typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import IO, Any


@cache
def _builtin_sha256() -> Callable[[bytes], Any]:
    for module in ("_sha2", "_sha256"):  # CPython 3.12+, 3.11
        try:
            constructor: Callable[[bytes], Any] = __import__(module).sha256
        except (ImportError, AttributeError):
            continue
        return constructor
    import hashlib  # an interpreter built without its own hashes

    return hashlib.sha256


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of a short text, in hex."""
    digest: str = _builtin_sha256()(data).hexdigest()
    return digest


def same_digest(a: str, b: str) -> bool:
    """Compare two digests in constant time (a secret's digest must not leak through timing)."""
    import hmac  # loads OpenSSL: only where a token is checked

    return hmac.compare_digest(a, b)


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks (hashing them releases the GIL)."""
    with open(path, "rb") as fh:
        return sha256_stream(fh)


def sha256_stream(fh: IO[bytes]) -> str:
    """The SHA-256 of what is left to read in `fh`, read in 1 MiB blocks."""
    import hashlib

    digest = hashlib.sha256()
    for block in iter(lambda: fh.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()
