"""Ids: task and run ids as single safe path segments, and new run ids."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime

from codex_orchestrator.errors import InvalidIdError

DEFAULT_TASK_ID = "default"
ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
RUN_ID_RE = re.compile(r"^\d{8}T\d{6}(?:\d{3})?Z-[0-9a-f]{8}$")


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
    if not ID_RE.match(value):
        raise InvalidIdError(
            f"{kind} id {value!r} is not allowed",
            hint="use 1-128 characters: letters, digits, '.', '_' or '-', not starting with '.' or '-'",
        )
    return value


def validate_run_id(value: str) -> str:
    """Run ids we mint match RUN_ID_RE; migrated legacy ids only need to be safe path segments."""
    return validate_id("run", value)


def new_run_id(now: datetime | None = None) -> str:
    """`<UTC timestamp with ms>-<8 hex>`: sortable, unique under concurrency."""
    now = now or datetime.now(UTC)
    return (
        now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z-" + os.urandom(4).hex()
    )  # secrets' source, without its import
