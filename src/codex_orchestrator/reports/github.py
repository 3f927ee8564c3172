"""GitHub Actions: the job summary (Markdown appended to `$GITHUB_STEP_SUMMARY`), one `::error`
annotation per failed stage, and `::group::` folds for streamed stage output.

Nothing here prints: the functions return text, and `ci_outputs` says what to write where. Outside GitHub
Actions (`GITHUB_ACTIONS` is not `true`) there is nothing to write.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from codex_orchestrator._typing import NamedTuple
from codex_orchestrator.reports.collect import (
    RunReport,
    StageReport,
    duration_text,
    guardrail_line,
    one_line,
    provenance_line,
    review_line,
    status_label,
)
from codex_orchestrator.runs.locations import Location

MAX_ANNOTATION_CHARS = 4000  # GitHub shows the first part of a long annotation only
MAX_LOCATED_ANNOTATIONS = 8  # GitHub shows 10 error annotations of a step: the stages' own come first


def in_github_actions(env: Mapping[str, str]) -> bool:
    return env.get("GITHUB_ACTIONS") == "true"


# -- workflow commands -------------------------------------------------------------------------------
def escape_data(text: str) -> str:
    """A workflow command's message (after `::`): `%`, CR and LF escaped."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value: as `escape_data`, plus `:` and `,`."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str, **properties: str) -> str:
    """`::name k=v,k=v::message`, every part escaped so a log cannot end the command or add another."""
    props = ",".join(f"{k}={escape_property(v)}" for k, v in properties.items())
    return f"::{name}{' ' + props if props else ''}::{escape_data(message)}"


def _workspace_path(location: Location, workspace: str | None) -> str | None:
    """The file relative to the workspace (the checkout), when it lies there."""
    if workspace:
        base = os.path.realpath(workspace)
        if location.absolute.startswith(base + os.sep):
            return os.path.relpath(location.absolute, base).replace(os.sep, "/")
    return None


def _annotated_file(location: Location, workspace: str | None) -> str:
    """The file as GitHub names it: relative to the workspace when it lies there, else relative to the
    stage root."""
    return _workspace_path(location, workspace) or location.path


def error_annotations(report: RunReport) -> list[str]:
    """One `::error` line per failed stage: title names the run and stage, the message why and the end
    of its output. A run that failed without a failed stage gets one line for the run."""
    lines = []
    for stage in report.failed_stages:
        message = f"{stage.message()} (run {report.run_id})"
        if stage.tail:
            tail = stage.tail.strip()[-1500:]
            message += "\n" + tail
        if len(message) > MAX_ANNOTATION_CHARS:
            message = message[: MAX_ANNOTATION_CHARS - 1] + "…"
        lines.append(command("error", message, title=_stage_title(report, stage)))
    if not lines and report.status in ("failed", "cancelled"):
        # red without a failed stage (missing guardrails, cancelled between stages): say why, once
        why = report.status_detail or report.summary or report.status
        lines.append(
            command("error", f"{why} (run {report.run_id})", title=f"{report.pipeline_id}: {report.status}")
        )
    return lines


def location_annotations(report: RunReport, workspace: str | None = None) -> list[str]:
    """One `::error` line per place in the project a failed stage's output points at (`file`, `line`:
    shown beside that line of a pull request's diff). `workspace`: $GITHUB_WORKSPACE, what `file` is
    relative to."""
    lines = []
    for stage in report.failed_stages:
        for where in stage.locations:
            props = {"file": _annotated_file(where, workspace), "line": str(where.line)}
            if where.column is not None:
                props["col"] = str(where.column)
            lines.append(command("error", where.message, **props, title=_stage_title(report, stage)))
    return lines


def _stage_title(report: RunReport, stage: StageReport) -> str:
    return f"{report.pipeline_id}: stage {stage.id} {stage.status}"


# Outside of a fold's own commands, a log line that *looks* like a workflow command would be acted on
# by the runner; while streaming stage output we stop command processing instead of rewriting logs.
_STOP_TOKEN_RE = re.compile(r"[^A-Za-z0-9_-]")


def group(title: str, lines: Iterable[str], *, token: str | None = None) -> Iterator[str]:
    """Fold `lines` under `title` in the job log. With `token`, workflow commands inside the stage's output
    are switched off for the fold (`::stop-commands::token` ... `::token::`), so a stage cannot forge
    annotations or end the fold early."""
    yield command("group", title)
    if token:
        safe = _STOP_TOKEN_RE.sub("", token) or "stage-output"
        yield f"::stop-commands::{safe}"
    yield from lines
    if token:
        yield f"::{safe}::"
    yield "::endgroup::"


@dataclass
class StageFolder:
    """For a follow/stream mode that prints stage output as it comes: call `line(stage_id, text)` for each
    line of output and `close()` at the end; it yields the fold commands between stages. Inactive
    (lines pass through unchanged) outside GitHub Actions."""

    active: bool
    # unguessable, so a stage cannot print `::token::` to switch commands back on
    token: str = field(default_factory=lambda: secrets.token_hex(12))
    current: str | None = None

    def line(self, stage: str, text: str) -> list[str]:
        if not self.active:
            return [text]
        out = []
        if stage != self.current:
            out.extend(self.close())
            out.append(command("group", f"stage {stage}"))
            out.append(f"::stop-commands::{self.token}")
            self.current = stage
        out.append(text)
        return out

    def close(self) -> list[str]:
        if not self.active or self.current is None:
            return []
        self.current = None
        return [f"::{self.token}::", "::endgroup::"]


# -- the job summary ---------------------------------------------------------------------------------
def _cell(text: str) -> str:
    """A Markdown table cell: one line, pipes and HTML-significant characters escaped."""
    text = one_line(text, 300)
    for ch, rep in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "\\|")):
        text = text.replace(ch, rep)
    return text


_MARKDOWN_SIGNS = re.compile(r"([\\`*_\[\]~])")  # (parentheses make a link only after `]`)


def _inert(text: str) -> str:
    """One line of Markdown text (not a table cell) in which a stage's words make no link, emphasis,
    code or HTML: Markdown's signs escaped, then HTML's."""
    text = _MARKDOWN_SIGNS.sub(r"\\\1", one_line(text, 300))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks in `text`, so it cannot be closed from inside."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


class Sources(NamedTuple):
    """Where the project's files are: the checkout (`$GITHUB_WORKSPACE`, what paths are relative to) and
    the repository's web address (`$GITHUB_SERVER_URL/$GITHUB_REPOSITORY`), for links to a line."""

    workspace: str | None = None
    repository_url: str | None = None

    @classmethod
    def of(cls, env: Mapping[str, str]) -> Sources:
        server, repository = env.get("GITHUB_SERVER_URL"), env.get("GITHUB_REPOSITORY")
        url = f"{server.rstrip('/')}/{repository}" if server and repository else None
        return cls(env.get("GITHUB_WORKSPACE"), url)


def _where_lines(report: RunReport, stage: StageReport, sources: Sources) -> list[str]:
    """A failed stage's locations as a Markdown list, each linked to its line at the tested commit when
    the file lies in the checkout."""
    commit = (report.provenance or {}).get("commit")
    out = []
    for where in stage.locations:
        in_checkout = _workspace_path(where, sources.workspace)
        path = in_checkout or where.path
        plain = path.replace("`", "'")
        shown = f"`{plain}:{where.line}`"
        if in_checkout and sources.repository_url and isinstance(commit, str):
            shown = f"[{shown}]({sources.repository_url}/blob/{quote(commit)}/{quote(path)}#L{where.line})"
        out.append(f"- {shown} {_inert(where.message)}")
    return out


def step_summary(report: RunReport, sources: Sources | None = None) -> str:
    """The Markdown job summary of one run (and `report --format markdown`); with `sources`, a failed
    stage's locations are relative to the checkout and link to their lines."""
    icon = status_label(report.status)
    out = [
        f"### {_cell(icon)} · {_cell(report.pipeline_title)} (`{_cell(report.pipeline_id)}`)",
        "",
        f"- **Status:** {_cell(report.status)}"
        + (f" — {_cell(report.status_detail)}" if report.status_detail else ""),
        f"- **Run:** `{_cell(report.run_id)}` (task `{_cell(report.task_id)}`), "
        f"{duration_text(report.duration_seconds)}",
        f"- **Provenance:** {_cell(provenance_line(report))}",
        f"- **Guardrails:** {_cell(guardrail_line(report))}",
        f"- **Review:** {_cell(review_line(report))}",
        "",
        "| # | Stage | Status | Exit | Time | Note |",
        "|---:|---|---|---:|---:|---|",
    ]
    for s in report.stages:
        out.append(
            f"| {s.index} | `{_cell(s.id)}` | {_cell(status_label(s.status, allowed=s.failure_allowed))} | "
            f"{'' if s.exit_code is None else s.exit_code} | {duration_text(s.duration_seconds)} | "
            f"{_cell(s.summary or '')} |"
        )
    for s in report.failed_stages:
        if s.locations:
            out += [
                "",
                f"**Where `{_cell(s.id)}` failed:**",
                "",
                *_where_lines(report, s, sources or Sources()),
            ]
    for s in report.stages:
        if not (s.status in ("failed", "cancelled") and s.tail):
            continue
        tail = s.tail.rstrip("\n")
        fence = _fence(tail)
        cut = " (last part)" if s.tail_truncated else ""
        out += [
            "",
            f"<details><summary>Output of <code>{_cell(s.id)}</code>{cut}: {_cell(s.message())}</summary>",
            "",
            f"{fence}text",
            tail,
            fence,
            "",
            "</details>",
        ]
    return "\n".join(out) + "\n"


def summary_of_runs(
    reports: list[RunReport], *, title: str | None = None, sources: Sources | None = None
) -> str:
    """The job summary of several runs (`goals run`): a heading, then each run's summary."""
    head = [f"## {_cell(title)}", ""] if title else []
    return "\n".join(head) + "\n".join(step_summary(r, sources) for r in reports)


@dataclass(frozen=True)
class CIOutputs:
    summary_file: Path | None  # where the summary is appended, if anywhere
    summary: str
    annotations: list[str]


def all_annotations(reports: list[RunReport], workspace: str | None) -> list[str]:
    """Every run's stage annotations, then the located ones (MAX_LOCATED_ANNOTATIONS at most): GitHub
    shows the first 10 errors of a step, and each failed stage's own comes first."""
    located = [a for r in reports for a in location_annotations(r, workspace)]
    return [a for r in reports for a in error_annotations(r)] + located[:MAX_LOCATED_ANNOTATIONS]


def ci_outputs(reports: list[RunReport], env: Mapping[str, str], *, title: str | None = None) -> CIOutputs:
    """What a finished `start`/`resume`/`goals run` writes in GitHub Actions (nothing elsewhere)."""
    if not in_github_actions(env) or not reports:
        return CIOutputs(None, "", [])
    target = env.get("GITHUB_STEP_SUMMARY")
    sources = Sources.of(env)
    if len(reports) > 1 or title:
        summary = summary_of_runs(reports, title=title, sources=sources)
    else:
        summary = step_summary(reports[0], sources)
    return CIOutputs(Path(target) if target else None, summary, all_annotations(reports, sources.workspace))


def append_summary(path: Path, text: str) -> None:
    """Append to the job summary file (GitHub creates it per step; other steps may have written to it)."""
    from codex_orchestrator.errors import StorageError

    try:
        with open(path, "a", encoding="utf-8", errors="replace") as fh:
            fh.write(text if text.endswith("\n") else text + "\n")
    except OSError as exc:
        raise StorageError(
            f"cannot append the job summary to {path}: {exc.strerror}",
            hint="check GITHUB_STEP_SUMMARY points at a writable file",
        ) from None
