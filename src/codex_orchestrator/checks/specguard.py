"""spec-guard: every mini-spec (`tasks/specs/*.md` front-matter) and every entry of `tasks/index.json`
carries a `last_review` date no older than N days, and index entries point at files that exist.

A repository without `tasks/` (or with nothing in it to check) gets an explicit "nothing to check"
result, never a silent success. `today` is injectable so tests never depend on the calendar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Any

from codex_orchestrator import safejson
from codex_orchestrator.runs.layout import PLACEHOLDERS_ONLY

TASKS_DIR = "tasks"
SPECS_DIR = "tasks/specs"
INDEX_FILE = "tasks/index.json"
DEFAULT_MAX_AGE_DAYS = 30
PATH_FIELDS = ("path", "spec", "file", "checklist", "prd", "tech_spec", "action_plan")
FUTURE_TOLERANCE_DAYS = 1  # a date written in another time zone may be "tomorrow" here
_DATE_RE = re.compile(r"(\d{4}-\d{2}-\d{2})(?:[T ][0-9:.+\-Z]*)?")
_KEY_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)\s*:\s*(.*?)\s*$")
# A mini-spec or index entry with `status: template` is the placeholder `init codex` wrote and nobody has
# filled in yet: it is listed but not checked (a starter pipeline must not turn red 31 days later with
# nothing changed). Setting any other status makes it a spec, checked like every other.
PLACEHOLDER_STATUS = "template"
PLACEHOLDER_NOTE = (
    "placeholder written by `init codex`, not checked: fill it in and set `status: draft` "
    "(its last_review counts from then on)"
)
FIX = (
    "re-read each listed spec against the code, then set `last_review: YYYY-MM-DD` in its "
    "front-matter (and the matching entry of tasks/index.json); add missing files or remove dangling entries"
)


@dataclass
class Entry:
    source: str  # e.g. "tasks/specs/0001-x.md" or "tasks/index.json[0]"
    kind: str  # spec | index_entry | index
    status: str = (
        "ok"  # ok | stale | missing_last_review | invalid_last_review | future | missing_file | invalid
    )
    messages: list[str] = field(default_factory=list)
    id: str | None = None
    last_review: str | None = None
    age_days: int | None = None

    def fail(self, status: str, message: str) -> None:
        if self.status == "ok":
            self.status = status
        self.messages.append(message)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kind": self.kind,
            "id": self.id,
            "status": self.status,
            "last_review": self.last_review,
            "age_days": self.age_days,
            "messages": self.messages,
        }


def front_matter(text: str) -> dict[str, str] | None:
    """Top-level `key: value` pairs of a `---` front-matter block; None when there is no block.

    Raises ValueError when the block is opened but never closed.
    """
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    values: dict[str, str] = {}
    for line in lines[1:]:
        if line.strip() in ("---", "..."):
            return values
        match = _KEY_RE.match(line)
        if match:
            values[match.group(1)] = _scalar(match.group(2))
    raise ValueError("the front-matter block is not closed by a '---' line")


def _scalar(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    return re.sub(r"\s+#.*$", "", raw).strip()


def _check_date(entry: Entry, value: Any, today: date, max_age_days: int) -> None:
    if value is None or (isinstance(value, str) and not value.strip()):
        entry.fail("missing_last_review", "has no last_review date")
        return
    text = str(value).strip()
    entry.last_review = text
    match = _DATE_RE.fullmatch(text)
    try:
        reviewed = date.fromisoformat(match.group(1)) if match else None
    except ValueError:
        reviewed = None
    if reviewed is None:
        entry.fail("invalid_last_review", f"last_review {text!r} is not a date (expected YYYY-MM-DD)")
        return
    age = (today - reviewed).days
    entry.age_days = age
    if age < -FUTURE_TOLERANCE_DAYS:
        entry.fail("future", f"last_review {reviewed} is in the future (today is {today})")
    elif age > max_age_days:
        entry.fail("stale", f"last_review {reviewed} is {age} days old (limit {max_age_days})")


def _check_spec(repo: Path, path: Path, today: date, max_age_days: int) -> Entry:
    entry = Entry(source=path.relative_to(repo).as_posix(), kind="spec")
    try:
        fm = front_matter(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        entry.fail("invalid", "is not UTF-8 text")
        return entry
    except OSError as exc:
        entry.fail("invalid", f"cannot be read ({exc.strerror})")
        return entry
    except ValueError as exc:
        entry.fail("invalid", str(exc))
        return entry
    if fm is None:
        entry.fail("missing_last_review", "has no front-matter with last_review (start the file with ---)")
        return entry
    entry.id = fm.get("id") or None
    if fm.get("status") == PLACEHOLDER_STATUS:
        entry.status = "placeholder"
        entry.messages.append(PLACEHOLDER_NOTE)
        return entry
    _check_date(entry, fm.get("last_review"), today, max_age_days)
    return entry


def _check_reference(repo: Path, entry: Entry, key: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        return
    pure = PurePosixPath(value.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts:
        entry.fail("missing_file", f"{key} {value!r} must be a path relative to the repository")
        return
    target = repo / pure
    try:
        resolved = target.resolve()
    except (OSError, RuntimeError):
        resolved = target
    if resolved != repo and repo not in resolved.parents:
        entry.fail("missing_file", f"{key} {value!r} resolves outside the repository")
    elif not target.is_file():
        entry.fail("missing_file", f"{key} points at {value}, which does not exist")


def _check_index(repo: Path, path: Path, today: date, max_age_days: int) -> list[Entry]:
    try:
        data = safejson.loads(path.read_bytes(), max_depth=32, max_bytes=4 * 1024 * 1024)
    except (OSError, ValueError) as exc:
        bad = Entry(source=INDEX_FILE, kind="index")
        bad.fail("invalid", f"cannot be parsed: {exc}")
        return [bad]
    items = data.get("tasks") if isinstance(data, dict) else data
    if not isinstance(items, list):
        bad = Entry(source=INDEX_FILE, kind="index")
        bad.fail("invalid", "expected a JSON list, or an object with a 'tasks' list")
        return [bad]
    entries = []
    for i, item in enumerate(items):
        entry = Entry(source=f"{INDEX_FILE}[{i}]", kind="index_entry")
        entries.append(entry)
        if not isinstance(item, dict):
            entry.fail("invalid", "is not an object")
            continue
        entry.id = str(item["id"]) if item.get("id") is not None else None
        if entry.id:
            entry.source = f"{INDEX_FILE}[{entry.id}]"
        if item.get("status") == PLACEHOLDER_STATUS:
            entry.status = "placeholder"
            entry.messages.append(PLACEHOLDER_NOTE)
            continue
        _check_date(entry, item.get("last_review"), today, max_age_days)
        for key in PATH_FIELDS:
            _check_reference(repo, entry, key, item.get(key))
    return entries


def check(
    repo: Path,
    *,
    max_age_days: int = DEFAULT_MAX_AGE_DAYS,
    today: date | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Check spec freshness under `repo`; the report says exactly what was (and was not) checked."""
    today = today or date.today()
    repo = repo.resolve()
    report: dict[str, Any] = {
        "repo": str(repo),
        "today": today.isoformat(),
        "max_age_days": max_age_days,
        "dry_run": dry_run,
    }
    specs_dir = repo / SPECS_DIR
    index = repo / INDEX_FILE
    spec_files = sorted(p for p in specs_dir.glob("*.md") if p.is_file()) if specs_dir.is_dir() else []
    if not spec_files and not index.is_file():
        where = f"no {TASKS_DIR}/ folder" if not (repo / TASKS_DIR).is_dir() else f"no {SPECS_DIR}/*.md"
        reason = f"{where} and no {INDEX_FILE} in {repo}"
        return {
            **report,
            "status": "nothing_to_check",
            "reason": reason,
            "checked": 0,
            "failed": 0,
            "counts": {},
            "entries": [],
            "exit_code": 0,
            "hint": "`codex-orchestrator init codex` writes a mini-spec and tasks/index.json to start from",
        }
    entries = [_check_spec(repo, p, today, max_age_days) for p in spec_files]
    if index.is_file():
        entries.extend(_check_index(repo, index, today, max_age_days))
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.status] = counts.get(e.status, 0) + 1
    failed = sum(1 for e in entries if e.status not in ("ok", "placeholder"))
    if all(e.status == "placeholder" for e in entries):
        return {
            **report,
            "status": "nothing_to_check",
            "reason": f"{PLACEHOLDERS_ONLY} ({len(entries)}), none filled in yet",
            "checked": 0,
            "failed": 0,
            "counts": counts,
            "entries": [e.to_dict() for e in entries],
            "exit_code": 0,
            "hint": "fill in tasks/specs/*.md and set `status: draft`; spec-guard checks it from then on",
        }
    return {
        **report,
        "status": "failed" if failed else "ok",
        "reason": None,
        "checked": sum(1 for e in entries if e.status != "placeholder"),
        "failed": failed,
        "counts": counts,
        "entries": [e.to_dict() for e in entries],
        "exit_code": 1 if failed and not dry_run else 0,
        "hint": FIX if failed else None,
    }
