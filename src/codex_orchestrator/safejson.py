"""Reading JSON that came from outside (config, manifests, metrics lines, state and task files): bounded
in size and nesting, strict (no NaN or Infinity, which strict parsers reject), and valid Unicode (no lone
surrogates, which cannot be printed or written back). Each failure is one sentence for that item.

And the other direction: `printable` makes any text safe to print or write (undecodable bytes and lone
surrogates become visible backslash escapes), the same way everywhere.
"""

from __future__ import annotations

import json

from codex_orchestrator._typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

MAX_DEPTH = 64
MAX_BYTES = 16 * 1024 * 1024


class JSONInputError(ValueError):
    """The document is not JSON we accept; the message says why, in one sentence."""


def _refuse_constant(name: str) -> Any:
    raise JSONInputError(f"contains {name}, which is not valid JSON")


def _float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):  # 1e400: strict writers refuse to write it back
        raise JSONInputError(f"contains the number {text[:40]}, too large for a double")
    return value


def _check(value: Any, max_depth: int) -> None:
    """Nesting within `max_depth` and every string valid Unicode; fast when the document is fine, and
    on a problem walks again to name where it is."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        item, level = pop()
        if type(item) is str:
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    _locate(value, max_depth, "$")
        elif type(item) is dict:
            if level >= max_depth:
                _locate(value, max_depth, "$")
            for key, child in item.items():
                push((key, level))
                push((child, level + 1))
        elif type(item) is list:
            if level >= max_depth:
                _locate(value, max_depth, "$")
            for child in item:
                push((child, level + 1))


def _locate(item: Any, max_depth: int, where: str, level: int = 0) -> None:
    """The slow walk that names the first problem (only ever run on a bad document)."""
    if isinstance(item, str):
        _check_text(item, where)
    elif isinstance(item, dict | list):
        if level >= max_depth:
            raise JSONInputError(f"is nested deeper than {max_depth} levels (at {where})")
        pairs = item.items() if isinstance(item, dict) else enumerate(item)
        for key, child in pairs:
            at = f"{where}.{printable(key)}" if isinstance(key, str) else f"{where}[{key}]"
            if isinstance(key, str):
                _check_text(key, at)
            _locate(child, max_depth, at, level + 1)


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise JSONInputError(f"contains invalid Unicode (a lone surrogate) at {where}") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JSONInputError(
                    f"has the key {printable(key)!r} twice in one object (only the last would count)"
                )
            seen.add(key)
    return value


def loads(
    data: str | bytes, *, max_depth: int = MAX_DEPTH, max_bytes: int = MAX_BYTES, unique_keys: bool = False
) -> Any:
    """Parse `data`; JSONInputError (a ValueError) says in one sentence what was wrong. A leading UTF-8
    byte order mark is skipped (RFC 8259 allows it; some editors write one). `unique_keys`: an object
    that repeats a key is refused (for files people write, where the repeat is a mistake)."""
    if len(data) > max_bytes:
        raise JSONInputError(f"is larger than {max_bytes} bytes")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise JSONInputError("is not UTF-8 text") from None
    data = data.removeprefix("\ufeff")
    if not data.strip():
        raise JSONInputError("is empty")
    try:
        hook = _unique_keys if unique_keys else None
        value = json.loads(data, parse_constant=_refuse_constant, parse_float=_float, object_pairs_hook=hook)
    except JSONInputError:
        raise
    except json.JSONDecodeError as exc:
        raise JSONInputError(f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except ValueError:  # int() refuses more than sys.get_int_max_str_digits() digits (4300)
        raise JSONInputError("contains a number with too many digits to read") from None
    except RecursionError:
        raise JSONInputError(f"is nested deeper than {max_depth} levels") from None
    _check(value, max_depth)
    return value


def printable(text: str) -> str:
    """`text` unchanged when it is valid Unicode; else with each undecodable byte or lone surrogate
    written as a visible backslash escape (so it can be printed, and written as strict JSON)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def printable_data(value: Any) -> Any:
    """`printable` applied to every string (and key) inside a JSON-shaped value."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable(str(k)): printable_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [printable_data(v) for v in value]
    return value
