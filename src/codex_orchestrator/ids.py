"""Ids: task and run ids as single safe path segments, and new run ids."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime

from codex_orchestrator.errors import InvalidIdError

DEFAULT_TASK_ID = "default"
# The bundled schemas' patterns; compiled on first use (by `re`'s own cache): a command that never
# checks an id never compiles one.
ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$"
RUN_ID_PATTERN = r"^[0-9]{8}T[0-9]{6}([0-9]{3})?Z-[0-9a-f]{8}$"


def is_id(value: str) -> bool:
    """`value` is a task or run id: 1-128 of `A-Za-z0-9._-`, not starting with `.` or `-` (whole: a
    trailing newline, which `$` lets `match` through, fails `fullmatch`)."""
    return re.fullmatch(ID_PATTERN, value) is not None


def is_run_id(value: str) -> bool:
    """`value` has the shape of a run id this tool mints (`new_run_id`)."""
    return re.fullmatch(RUN_ID_PATTERN, value) is not None


def validate_id(kind: str, value: str) -> str:
    """Return `value` if it is a single safe path segment, else raise InvalidIdError."""
    if not isinstance(value, str) or not value:
        raise InvalidIdError(f"{kind} id must not be empty", hint=f"pass a {kind} id such as 'default'")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidIdError(
            f"{kind} id {value!r} contains control characters", hint="use letters, digits, . _ -"
        )
    if value in (".", "..") or ".." in value or "/" in value or "\\" in value:
        raise InvalidIdError(
            f"{kind} id {value!r} could escape the runs folder",
            hint="use one path segment: letters, digits, . _ -",
        )
    if value.startswith("."):
        raise InvalidIdError(
            f"{kind} id {value!r} must not start with a dot", hint="use letters, digits, . _ -"
        )
    if not is_id(value):
        raise InvalidIdError(
            f"{kind} id {value!r} is not allowed",
            hint="use 1-128 characters: letters, digits, '.', '_' or '-', not starting with '.' or '-'",
        )
    return value


def validate_run_id(value: str) -> str:
    """Run ids we mint pass `is_run_id`; migrated legacy ids only need to be safe path segments."""
    return validate_id("run", value)


def new_run_id(now: datetime | None = None) -> str:
    """`<UTC timestamp with ms>-<8 hex>`: sortable, unique under concurrency."""
    now = now or datetime.now(UTC)
    return (
        now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z-" + os.urandom(4).hex()
    )  # secrets' source, without its import
