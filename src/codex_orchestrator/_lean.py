"""Standard modules imported without what no command uses, where that is the bulk of their cost.

On CPython 3.11 and 3.12, `pathlib` imports `urllib.parse` at its top for one function, `quote_from_bytes`
(used by `Path.as_uri`), and `urllib.parse` imports `ipaddress`: together about 2.8 ms of a `start` or a
`status`, measured with the imports timed one by one (medians of 15 processes). Every command imports
`pathlib`; none calls `as_uri` on its way. CPython 3.13 moved that import into `as_uri` itself.

`import_pathlib` imports `pathlib` while `sys.modules` holds a stand-in `urllib.parse` whose
`quote_from_bytes` imports the real module when called, and removes the stand-in at once: any later
`import urllib.parse` (the MCP SDK's, or `as_uri`'s own call) loads the real one. Only `pathlib`'s import
ever sees the stand-in (it imports nothing else that uses `urllib`), and `tests/test_lean.py` holds that.

On CPython 3.11, `import datetime` runs the module's whole pure-Python implementation (some 2,500 lines of
classes) and then replaces every public name with the C implementation's, from `_datetime`: 2.8 ms of a
`status` under `-S -I`, against 0.8 ms for `_datetime` alone. CPython 3.12 moved the pure-Python code into
`_pydatetime`, imported only without the C module. `import_datetime` does on 3.11 what 3.12 does: the
`datetime` module is made of `_datetime`'s names, which are exactly what the real module ends up holding
(the C classes, `UTC`, `datetime_CAPI` for C extensions such as pydantic-core).
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


#: `datetime.__all__`, as the real module declares it
DATETIME_ALL = ("date", "datetime", "time", "timedelta", "timezone", "tzinfo", "MINYEAR", "MAXYEAR", "UTC")


def import_datetime() -> None:
    """Make `datetime` from `_datetime` on CPython 3.11 (once, first thing), as CPython 3.12+ does itself."""
    if sys.version_info >= (3, 12) or "datetime" in sys.modules:
        return
    try:
        _datetime = __import__("_datetime")  # the C implementation (typeshed has no stub for it)
    except ImportError:  # an interpreter without it: the real module it is
        return
    module = type(sys)("datetime", _datetime.__doc__)
    module.__dict__.update((k, v) for k, v in vars(_datetime).items() if not k.startswith("__"))
    module.__all__ = DATETIME_ALL  # type: ignore[attr-defined]
    module.sys = sys  # type: ignore[attr-defined]  # the real module's namespace holds it too
    spec_type = type(sys.__spec__)  # importlib's ModuleSpec, without importing importlib
    module.__spec__ = spec_type("datetime", None, origin=getattr(_datetime.__spec__, "origin", None))
    sys.modules["datetime"] = module
