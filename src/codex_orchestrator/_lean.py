"""Standard modules imported without what no command uses, where that is the bulk of their cost.

On CPython 3.11 and 3.12, `pathlib` imports `urllib.parse` at its top for one function, `quote_from_bytes`
(used by `Path.as_uri`), and `urllib.parse` imports `ipaddress`: together about 2.8 ms of a `start` or a
`status`, measured with the imports timed one by one (medians of 15 processes). Every command imports
`pathlib`; none calls `as_uri` on its way. CPython 3.13 moved that import into `as_uri` itself.

`import_pathlib` imports `pathlib` while `sys.modules` holds a stand-in `urllib.parse` whose
`quote_from_bytes` imports the real module when called, and removes the stand-in at once: any later
`import urllib.parse` (the MCP SDK's, or `as_uri`'s own call) loads the real one. Only `pathlib`'s import
ever sees the stand-in (it imports nothing else that uses `urllib`), and `tests/test_lean.py` holds that.
"""

from __future__ import annotations

import sys


def import_pathlib() -> None:
    """Import `pathlib` (once, first thing) without `urllib.parse`; any later import gets the real one."""
    if sys.version_info >= (3, 13) or "pathlib" in sys.modules or "urllib.parse" in sys.modules:
        return
    stand_in = type(sys)("urllib.parse")

    def quote_from_bytes(bs: bytes, safe: str = "/") -> str:
        from urllib.parse import quote_from_bytes as real  # the stand-in is gone by now

        return real(bs, safe)

    stand_in.quote_from_bytes = quote_from_bytes  # type: ignore[attr-defined]
    sys.modules["urllib.parse"] = stand_in
    try:
        import pathlib  # noqa: F401
    finally:
        if sys.modules.get("urllib.parse") is stand_in:
            del sys.modules["urllib.parse"]
