"""review: hand a finished run to the Codex CLI, non-interactively, and keep everything it said.

`codex exec` runs read-only (`--sandbox read-only`), with approvals off (`-c approval_policy="never"`),
stdin closed, in its own process group, under a hard timeout that kills the whole group. The prompt
(manifest summary + failing-stage tails + `git diff`), Codex's output and a result record land in
`<run_dir>/review/`. A missing binary, a timeout, a non-zero exit, or Codex waiting for an answer all
end the review at once with a clear message; nothing ever waits on a human.

Longer than 400 lines because one hand-off is one flow: the prompt, the guarded Codex process, the
verdict and its record; its parts share the review folder's files and nothing else uses them.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from codex_orchestrator import hashing
from codex_orchestrator.clock import iso
from codex_orchestrator.codex import binary as codexcli
from codex_orchestrator.codex.verdict import (
    UNREACHABLE_GRACE_SECONDS,
    UNREACHABLE_LINES,
    parse_verdict,
    unreachable_lines,
)
from codex_orchestrator.errors import OrchestratorError, RunStateError
from codex_orchestrator.process import (
    RUN_MARKER,
    PosixProcessRunner,
    StageProcess,
    reap_run,
    run_probe,
    signal_name,
    stop_group,
)
from codex_orchestrator.runs import manifest as mf
from codex_orchestrator.runs.layout import Roots, RunPaths
from codex_orchestrator.runs.store import FileLock, atomic_write_bytes, atomic_write_json, read_tail

REVIEW_DIR = "review"
PROMPT_FILE = "prompt.md"
OUTPUT_FILE = "output.log"
RESULT_FILE = "result.json"
DIFF_FILE = "diff.patch"
DEFAULT_TIMEOUT_SECONDS = 600.0
KILL_GRACE_SECONDS = 2.0
POLL_SECONDS = 0.05
GIT_TIMEOUT_SECONDS = 30.0
MAX_DIFF_IN_PROMPT = 60_000  # bytes; the prompt travels as one argv string (Linux caps those at 128 KiB)
MAX_PROMPT_BYTES = 100_000
STAGE_TAIL_BYTES = 3_000
OUTPUT_TAIL_BYTES = 4_000
INPUT_QUIET_SECONDS = 2.0
VERSION_TIMEOUT_SECONDS = 10.0
# The last line of output looks like a question waiting for an answer.
INPUT_PROMPT_RE = re.compile(
    r"(\[y/n\]|\(y/n\)|\[yes/no\]|press enter|approval required|approve this (?:command|action)|"
    r"allow (?:this )?command\?|waiting for (?:your )?(?:input|approval)|"
    r"enter (?:your )?(?:choice|selection))",
    re.IGNORECASE,
)


class CodexMissingError(OrchestratorError):
    """The Codex CLI binary is not installed (an environment problem: exit 3)."""

    code = "codex_missing"


def codex_argv(binary: Path, repo: Path, prompt: str) -> list[str]:
    """`codex exec`, read-only, approvals never, no colour, prompt as the last argument."""
    return [
        str(binary),
        "exec",
        "--sandbox",
        "read-only",
        "-c",
        'approval_policy="never"',
        "--skip-git-repo-check",
        "--color",
        "never",
        "--cd",
        str(repo),
        "--",
        prompt,
    ]


@dataclass
class Diff:
    status: str  # ok | not_a_git_repository | git_missing | git_failed
    text: str  # what goes into the prompt (possibly truncated)
    size: int  # full size in bytes
    truncated: bool
    untracked: list[str]
    path: Path | None  # the full diff on disk


def _exclusions(roots: Roots, repo: Path) -> list[str]:
    specs = []
    for root in (roots.runs, roots.out):
        try:
            rel = root.resolve().relative_to(repo.resolve())
        except ValueError:
            continue
        specs.append(f":(exclude){rel.as_posix()}")
    return specs


def collect_diff(roots: Roots, repo: Path, review_dir: Path) -> Diff:
    """`git diff HEAD` of the working tree (staged + unstaged), minus the runs and out folders."""
    git = shutil.which("git")
    if git is None:
        return Diff("git_missing", "", 0, False, [], None)
    inside = run_probe([git, "rev-parse", "--is-inside-work-tree"], cwd=repo, timeout=GIT_TIMEOUT_SECONDS)
    if not inside.ok or inside.output.strip() != "true":
        return Diff("not_a_git_repository", "", 0, False, [], None)
    pathspec = ["--", ".", *_exclusions(roots, repo)]
    base = [git, "--no-pager", "-c", "core.quotepath=off"]
    has_head = run_probe([*base, "rev-parse", "--verify", "-q", "HEAD"], cwd=repo).ok
    diff_cmd = [*base, "diff", "--no-color", "--no-ext-diff", *(["HEAD"] if has_head else ["--cached"])]
    diff = run_probe([*diff_cmd, *pathspec], cwd=repo, timeout=GIT_TIMEOUT_SECONDS)
    if not diff.ok:
        return Diff("git_failed", diff.output[-500:], 0, False, [], None)
    untracked_probe = run_probe(
        [*base, "ls-files", "--others", "--exclude-standard", *pathspec],
        cwd=repo,
        timeout=GIT_TIMEOUT_SECONDS,
    )
    untracked = untracked_probe.output.splitlines() if untracked_probe.ok else []
    data = diff.output.encode("utf-8")
    path = review_dir / DIFF_FILE
    atomic_write_bytes(path, data)
    truncated = len(data) > MAX_DIFF_IN_PROMPT
    text = data[:MAX_DIFF_IN_PROMPT].decode("utf-8", "ignore") if truncated else diff.output
    return Diff("ok", text, len(data), truncated, untracked, path)


def _blank(value: Any) -> str:
    return "" if value is None else str(value)


def _stage_rows(manifest: dict[str, Any]) -> list[str]:
    rows = ["| # | stage | status | exit | seconds | command |", "|---|---|---|---|---|---|"]
    for i, c in enumerate(manifest.get("commands", []), 1):
        command = " ".join(str(a) for a in c.get("command") or [])
        dur = c.get("duration_seconds")
        rows.append(
            f"| {i} | {c.get('id')} | {c.get('status')} | {_blank(c.get('exit_code'))} "
            f"| {'' if dur is None else f'{dur:.1f}'} | `{command[:120]}` |"
        )
    return rows


def _failed_tails(manifest: dict[str, Any], run_dir: Path) -> list[str]:
    out: list[str] = []
    for c in manifest.get("commands", []):
        if c.get("status") not in ("failed", "cancelled") or not c.get("log_path"):
            continue
        log = Path(c["log_path"])
        if run_dir.resolve() not in log.resolve().parents:
            continue
        tail, truncated = read_tail(log, STAGE_TAIL_BYTES)
        out += [
            f"### {c.get('id')} ({c.get('status')}, exit {c.get('exit_code')})",
            "```text",
            ("[... earlier output cut ...]\n" if truncated else "") + tail.rstrip(),
            "```",
            "",
        ]
    return out


def build_prompt(
    manifest: dict[str, Any], manifest_path: Path, repo: Path, diff: Diff, *, focus: str = "changes"
) -> str:
    guard = manifest.get("guardrail_status") or {}
    guarded = ", ".join(guard.get("guardrail_stages", [])) or "none"
    lines = [
        f"# Review request: run {manifest.get('run_id')}",
        "",
        f"Review the result of a codex-orchestrator pipeline run in the repository at {repo}.",
        "Work read-only: do not modify files and do not run commands that change anything.",
        "",
        *(_DOCS_FOCUS if focus == "docs" else []),
        "## Run",
        f"- task: {manifest.get('task_id')}",
        f"- pipeline: {manifest.get('pipeline_id')} ({manifest.get('pipeline_title')})",
        f"- status: {manifest.get('status')}"
        + (f" ({manifest['status_detail']})" if manifest.get("status_detail") else ""),
        f"- guardrails: {guard.get('status')} (stages: {guarded})",
        f"- started {manifest.get('started_at')}, completed {manifest.get('completed_at')}",
        f"- manifest: {manifest_path}",
        "",
        "## Stages",
        *_stage_rows(manifest),
        "",
    ]
    tails = _failed_tails(manifest, manifest_path.parent)
    if tails:
        lines += ["## Output of failed stages (tails)", "", *tails]
    lines += ["## Changes under review", ""]
    if diff.status == "ok":
        note = f"`git diff` of the working tree against HEAD, excluding .runs/ and out/: {diff.size} bytes"
        if diff.truncated:
            note += f", cut to the first {MAX_DIFF_IN_PROMPT}; the full diff is in {diff.path}"
        lines += [note + ".", "", "```diff", diff.text.rstrip() or "(no changes)", "```", ""]
        if diff.untracked:
            shown = diff.untracked[:50]
            more = f" (and {len(diff.untracked) - 50} more)" if len(diff.untracked) > 50 else ""
            lines += ["Untracked files: " + ", ".join(shown) + more, ""]
    else:
        reason = {
            "not_a_git_repository": "the repository is not a git work tree",
            "git_missing": "git is not installed",
            "git_failed": "git diff failed",
        }[diff.status]
        lines += [f"No diff is available ({reason}); review the files the stages touched.", ""]
    lines += [
        "## What to report",
        "1. Findings, most severe first, each with file:line and a concrete fix.",
        "2. Whether the run's evidence (stages, guardrails) is enough to merge; which checks are missing.",
        "3. Then end your answer with exactly one verdict, on a line of its own: "
        "`VERDICT: APPROVE` when nothing blocks a merge, otherwise `VERDICT: REQUEST CHANGES`.",
    ]
    text = "\n".join(lines) + "\n"
    if len(text.encode()) > MAX_PROMPT_BYTES:
        text = text.encode()[:MAX_PROMPT_BYTES].decode("utf-8", "ignore") + "\n[... prompt cut to fit ...]\n"
    return text


_DOCS_FOCUS = [
    "## Focus: documentation and task files",
    "Review the docs and task files (README, docs/, AGENTS.md, tasks/index.json, tasks/specs/, the task",
    "checklists): are they accurate against the code as it is now, complete for what changed, and is each",
    "spec's last_review honest? Name every statement that the code contradicts.",
    "",
]


def codex_version(binary: Path) -> str | None:
    probe = run_probe([str(binary), "--version"], timeout=VERSION_TIMEOUT_SECONDS)
    text = probe.output.strip()
    return text.splitlines()[-1][:200] if probe.ok and text else None


def _unreachable(log: Path, prompt_lines: set[str]) -> list[str]:
    """Lines of Codex's output (its log's tail) saying it cannot reach its model."""
    tail, _ = read_tail(log, 16_000)
    return unreachable_lines(tail, prompt_lines)


def _waiting_for_input(log: Path, prompt_lines: set[str]) -> str | None:
    tail, _ = read_tail(log, 2_000)
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    if not lines or lines[-1] in prompt_lines:
        return None
    return lines[-1] if INPUT_PROMPT_RE.search(lines[-1]) else None


def _watch(
    proc: StageProcess, log: Path, timeout: float, prompt_lines: set[str], clock: Callable[[], float]
) -> tuple[int | None, str]:
    """Wait for Codex; returns (returncode or None, outcome: exited | timed_out | needs_input)."""
    started = clock()
    last_size, last_change = -1, started
    first_unreachable: float | None = None
    seen_errors = 0
    while True:
        rc = proc.wait(POLL_SECONDS)
        if rc is not None:
            return rc, "exited"
        now = clock()
        if now - started >= timeout:
            return None, "timed_out"
        size = log.stat().st_size if log.exists() else 0
        if size != last_size:
            last_size, last_change = size, now
            errors = len(_unreachable(log, prompt_lines))
            if errors >= UNREACHABLE_LINES:
                return None, "unreachable"
            # a first error line starts the grace period; any other output since ends it
            first_unreachable = now if errors > seen_errors else None
            seen_errors = errors
        elif first_unreachable is not None and now - first_unreachable >= UNREACHABLE_GRACE_SECONDS:
            return None, "unreachable"
        elif now - last_change >= INPUT_QUIET_SECONDS and _waiting_for_input(log, prompt_lines):
            return None, "needs_input"


def own_run() -> tuple[str, RunPaths] | None:
    """Inside a stage of a run (a review stage): that run's id and folder, from the stage environment."""
    run_id, run_dir = os.environ.get(RUN_MARKER), os.environ.get("CODEX_ORCHESTRATOR_RUN_DIR")
    if not run_id or not run_dir:
        return None
    paths = RunPaths(Path(run_dir))
    return (run_id, paths) if paths.run_id == run_id and paths.manifest.is_file() else None


def run_review(
    roots: Roots,
    run_id: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    on_start: Callable[[Path, Path], None] | None = None,
    focus: str = "changes",
) -> dict[str, Any]:
    """Review run `run_id` with the Codex CLI; the result record (also in review/result.json), with
    Codex's verdict (approve | request_changes | none) and `passed` (approved). The verdict is recorded
    in the run's manifest; a review stage of the run itself reviews the changes so far, and the engine
    records its verdict when the stage ends.

    `on_start(codex, output_log)` is called just before Codex starts (the CLI reports progress with it).
    """
    own = own_run()
    in_stage = own is not None and own[0] == run_id
    paths = own[1] if own is not None and in_stage else roots.find_run(run_id)
    manifest_path = paths.manifest
    manifest = mf.read(manifest_path)
    status = manifest.get("status")
    if status not in mf.TERMINAL and not in_stage:
        raise RunStateError(
            f"run {run_id} is {status}; only a finished run can be reviewed",
            hint=f"wait for it (`codex-orchestrator status --run {run_id} --watch`) or cancel it",
        )
    binary = codexcli.find_codex()
    if binary.path is None:
        raise CodexMissingError(f"cannot review: {binary.describe_missing()}", hint=codexcli.INSTALL_HINT)
    repo_root = Path(str(manifest.get("stage_root") or manifest.get("repo_root") or roots.repo))
    repo = repo_root if repo_root.is_dir() else roots.repo
    review_dir = roots.contain(paths.review, root=paths.dir)
    review_dir.mkdir(exist_ok=True)
    diff = collect_diff(roots, repo, review_dir)
    prompt = build_prompt(manifest, manifest_path, repo, diff, focus=focus)
    atomic_write_bytes(review_dir / PROMPT_FILE, prompt.encode("utf-8"))
    version = codex_version(binary.path)
    argv = codex_argv(binary.path, repo, prompt)
    # The run id in Codex's environment marks its processes as this run's (process.reap_run).
    env = {**os.environ, "NO_COLOR": "1", "TERM": "dumb", RUN_MARKER: run_id}
    log = review_dir / OUTPUT_FILE
    started_at, t0 = datetime.now(UTC), clock()
    if on_start is not None:
        on_start(binary.path, log)
    proc = PosixProcessRunner().start(argv, cwd=repo, env=env, log_path=log)
    prompt_lines = {line.strip() for line in prompt.splitlines() if line.strip()}
    try:
        rc, outcome = _watch(proc, log, timeout, prompt_lines, clock)
    except BaseException:  # Ctrl-C or a crash: Codex lives in its own session, so stop it ourselves
        stop_group(proc, KILL_GRACE_SECONDS)
        reap_run(run_id)
        raise
    if outcome != "exited":
        rc = stop_group(proc, KILL_GRACE_SECONDS)
    reap_run(run_id)  # helpers that outlived Codex
    duration = round(clock() - t0, 3)
    tail, _ = read_tail(log, OUTPUT_TAIL_BYTES)
    answer, _ = read_tail(log, 256_000)
    verdict = parse_verdict(answer, prompt_lines) if outcome == "exited" and rc == 0 else "none"
    result_status, message, hint = _verdict(outcome, rc, timeout, log, prompt_lines)
    if result_status == "succeeded" and verdict != "approve":
        message, hint = _gate_message(verdict, log)
    result = {
        "run_id": run_id,
        "task_id": manifest.get("task_id"),
        "status": result_status,
        "verdict": verdict,
        "passed": result_status == "succeeded" and verdict == "approve",
        "focus": focus,
        "stage": os.environ.get("CODEX_ORCHESTRATOR_STAGE_ID") if in_stage else None,
        "message": message,
        "hint": hint,
        "exit_code": rc if outcome == "exited" else None,
        "signal": signal_name(rc),
        "codex": str(binary.path),
        "codex_version": version,
        "command": [*argv[:-1], f"<prompt: {review_dir / PROMPT_FILE}>"],
        "prompt_sha256": hashing.sha256_hex(prompt.encode("utf-8")),
        "timeout_seconds": timeout,
        "duration_seconds": duration,
        "started_at": iso(started_at),
        "completed_at": iso(datetime.now(UTC)),
        "review_dir": str(review_dir),
        "prompt": str(review_dir / PROMPT_FILE),
        "output": str(log),
        "result": str(review_dir / RESULT_FILE),
        "diff": str(diff.path) if diff.path else None,
        "diff_status": diff.status,
        "diff_bytes": diff.size,
        "diff_truncated": diff.truncated,
        "output_tail": tail,
    }
    atomic_write_json(review_dir / RESULT_FILE, result)
    result["recorded"] = False if in_stage else _record(roots, paths, result)
    return result


def manifest_record(result: dict[str, Any]) -> dict[str, Any]:
    """The manifest's `review` object for a review result."""
    return {
        "verdict": result["verdict"],
        "status": result["status"],
        "codex_version": result.get("codex_version"),
        "prompt_sha256": result.get("prompt_sha256"),
        "at": result["completed_at"],
        "result": result.get("result"),
        "stage": result.get("stage"),
    }


def _record(roots: Roots, paths: RunPaths, result: dict[str, Any]) -> bool:
    """Record the verdict in a finished run's manifest (under the run lock) and refresh the task's
    evidence mirror; False when the run is being driven or resumed right now (it is left alone)."""
    lock = FileLock(paths.lock)
    if not lock.try_acquire():
        return False
    try:
        manifest = mf.read(paths.manifest)
        manifest["review"] = manifest_record(result)
        mf.write(paths.manifest, manifest)
    finally:
        lock.release()
    from codex_orchestrator.runs import evidence

    evidence.update_quietly(roots, manifest, paths.manifest)
    return True


def _gate_message(verdict: str, log: Path) -> tuple[str, str]:
    if verdict == "request_changes":
        return "Codex requested changes", f"read its findings in {log}, fix them, then review again"
    return (
        "Codex gave no verdict (no `VERDICT: APPROVE` or `VERDICT: REQUEST CHANGES` line)",
        f"read {log}; a review without a verdict does not pass the gate",
    )


def _verdict(
    outcome: str, rc: int | None, timeout: float, log: Path, prompt_lines: set[str]
) -> tuple[str, str, str | None]:
    if outcome == "unreachable":
        lines = _unreachable(log, prompt_lines)
        return (
            "unreachable",
            "Codex cannot reach its model" + (f": {lines[-1][:300]}" if lines else ""),
            "check the network and Codex's provider settings (`codex login`, ~/.codex/config.toml); "
            "then retry",
        )
    if outcome == "timed_out":
        return (
            "timed_out",
            f"Codex did not finish within {timeout:g} s; its process group was killed",
            f"read {log}; raise --timeout if the review needs longer",
        )
    if outcome == "needs_input":
        return (
            "needs_input",
            "Codex stopped to ask for input, which a non-interactive review cannot give; it was killed",
            f"read the question at the end of {log}; run `codex login` or fix Codex's config, then retry",
        )
    if rc != 0:
        how = f"was killed by {signal_name(rc)}" if rc is not None and rc < 0 else f"exited with status {rc}"
        return "failed", f"Codex {how}", f"read {log} for its error (not logged in? `codex login`)"
    return "succeeded", "review completed", None
