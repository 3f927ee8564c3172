"""`_lean.import_pathlib`: pathlib without urllib.parse on 3.11 and 3.12, and nothing else changed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def _fresh(code: str) -> str:
    """Run `code` in a fresh interpreter (this test process imported pathlib long ago)."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_pathlib_comes_without_urllib_parse_and_ipaddress() -> None:
    out = _fresh(
        """
        import sys
        from codex_orchestrator import _lean
        before = set(sys.modules)
        _lean.import_pathlib()
        import pathlib
        loaded = set(sys.modules) - before
        print("pathlib" in loaded, "urllib.parse" in sys.modules, "ipaddress" in sys.modules)
        # no module loaded meanwhile kept the stand-in or the bare `urllib` package
        held = [
            name for name in loaded for value in vars(sys.modules[name]).values()
            if getattr(value, "__name__", "").startswith("urllib")
            or getattr(value, "__module__", "") in ("urllib.parse", "codex_orchestrator._lean")
        ]
        print(held)
        """
    )
    if sys.version_info >= (3, 13):
        assert out.splitlines()[0].split()[1:] == ["False", "False"]  # 3.13 imports it lazily itself
    else:
        assert out.splitlines() == ["True False False", "['pathlib']"]  # only as_uri's quote_from_bytes


@pytest.mark.parametrize("first", ["as_uri", "import"])
def test_as_uri_and_a_later_import_get_the_real_urllib_parse(first: str) -> None:
    out = _fresh(
        f"""
        import sys
        from codex_orchestrator import _lean
        _lean.import_pathlib()
        from pathlib import Path
        uri = Path("/a b/\\u00fc#").as_uri() if {first == "as_uri"!r} else None
        import urllib.parse
        import urllib
        assert urllib.parse is sys.modules["urllib.parse"]
        print(Path("/a b/\\u00fc#").as_uri(), uri is None or uri == Path("/a b/\\u00fc#").as_uri())
        print(urllib.parse.urlsplit("https://h/p?q=1").query, "ipaddress" in sys.modules)
        """
    )
    assert out.splitlines() == ["file:///a%20b/%C3%BC%23 True", "q=1 True"]


def test_it_does_nothing_once_either_module_is_there() -> None:
    out = _fresh(
        """
        import sys, urllib.parse
        real = urllib.parse
        from codex_orchestrator import _lean
        _lean.import_pathlib()
        import pathlib
        print(sys.modules["urllib.parse"] is real, pathlib.urlquote_from_bytes is real.quote_from_bytes
              if hasattr(pathlib, "urlquote_from_bytes") else True)
        """
    )
    assert out == "True True"


FILE_NAMES = "{'__file__', '__cached__', '__builtins__'}"


def test_datetime_is_the_c_implementation_with_the_real_modules_names() -> None:
    """On 3.11 `datetime` is made from `_datetime`; its names are the real module's, and what uses it
    (pickle, the C API that pydantic-core imports, `UTC`) works the same."""
    # the names a module loaded from a file has for that file alone are left out
    real = _fresh(
        "import datetime; print(sorted(set(vars(datetime)) - {FILE_NAMES}))".replace(
            "{FILE_NAMES}", FILE_NAMES
        )
    )
    out = _fresh(
        """
        import sys
        from codex_orchestrator import _lean
        _lean.import_datetime()
        import datetime, pickle
        print(sorted(set(vars(datetime)) - {FILE_NAMES}))
        print("datetime.py" in str(getattr(datetime, "__file__", "")), sys.version_info >= (3, 12))
        when = datetime.datetime(2026, 12, 2, 1, 2, 3, 4000, tzinfo=datetime.UTC)
        print(pickle.loads(pickle.dumps(when)) == when, when.isoformat())
        import pydantic  # its core reaches datetime through the C API capsule, datetime.datetime_CAPI
        parsed = pydantic.TypeAdapter(datetime.datetime).validate_python("2026-12-02T01:02:03Z")
        print(parsed == when.replace(microsecond=0))
        print(datetime.__spec__.name, datetime.__all__ == _lean.DATETIME_ALL)
        """.replace("{FILE_NAMES}", FILE_NAMES)
    )
    names, source, roundtrip, validated, spec = out.splitlines()
    assert names == real  # every name (the dunders included), nothing more, nothing less
    if sys.version_info < (3, 12):
        assert source == "False False"  # not the .py module: made from _datetime
    assert roundtrip == "True 2026-12-02T01:02:03.004000+00:00"
    assert validated == "True"
    assert spec == "datetime True"
