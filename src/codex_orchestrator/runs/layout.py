"""Where things live: the repo/runs/out roots and every path of a task and run folder."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from codex_orchestrator.errors import InvalidIdError, RepoError, RunNotFoundError
from codex_orchestrator.ids import ID_RE, validate_id, validate_run_id


@dataclass(frozen=True)
class Roots:
    repo: Path
    runs: Path
    out: Path

    @classmethod
    def resolve(cls, repo: str | os.PathLike[str] | None = None) -> Roots:
        """repo = argument > CODEX_ORCHESTRATOR_ROOT > cwd; runs and out from env or under the repo."""
        raw = repo if repo is not None else (os.environ.get("CODEX_ORCHESTRATOR_ROOT") or os.getcwd())
        path = Path(raw).expanduser()
        if not path.exists():
            raise RepoError(
                f"repository {str(path)!r} does not exist", hint="pass --repo with an existing folder"
            )
        if not path.is_dir():
            raise RepoError(f"repository {str(path)!r} is not a folder", hint="pass --repo with a folder")
        path = path.resolve()
        runs = os.environ.get("CODEX_ORCHESTRATOR_RUNS_DIR")
        out = os.environ.get("CODEX_ORCHESTRATOR_OUT_DIR")
        return cls(
            repo=path,
            runs=(path / Path(runs).expanduser()).resolve() if runs else path / ".runs",
            out=(path / Path(out).expanduser()).resolve() if out else path / "out",
        )

    def task_dir(self, task_id: str) -> Path:
        return self.runs / validate_id("task", task_id)

    def run_dir(self, task_id: str, run_id: str) -> Path:
        return self.task_dir(task_id) / "cli" / validate_run_id(run_id)

    def state_file(self, task_id: str) -> Path:
        return self.out / validate_id("task", task_id) / "state.json"

    def metrics_file(self, task_id: str) -> Path:
        return self.task_dir(task_id) / "metrics.jsonl"

    def contain(self, path: Path) -> Path:
        """Resolve `path` (symlinks too) and require it to stay inside the runs root."""
        resolved = path.resolve()
        root = self.runs.resolve()
        if resolved != root and root not in resolved.parents:
            raise InvalidIdError(f"{path} resolves outside the runs folder", hint="remove the symlink")
        return resolved

    def find_run(self, run_id: str) -> Path:
        """The directory of run `run_id`, in any task, without scanning every run."""
        validate_run_id(run_id)
        if self.runs.is_dir():
            for task in sorted(self.runs.iterdir()):
                candidate = task / "cli" / run_id
                if (candidate / "manifest.json").is_file():
                    self.contain(candidate / "manifest.json")  # a symlinked manifest must not lead out
                    return self.contain(candidate)
        raise RunNotFoundError(
            f"no run {run_id!r} under {self.runs}", hint="`codex-orchestrator runs list` shows the runs"
        )

    def iter_run_dirs(self, task_id: str | None = None) -> list[tuple[str, Path]]:
        """(run_id, dir) for every run, newest first (run ids sort by time)."""
        if not self.runs.is_dir():
            return []
        tasks = [self.task_dir(task_id)] if task_id else [p for p in self.runs.iterdir() if p.is_dir()]
        found: list[tuple[str, Path]] = []
        for task in tasks:
            cli = task / "cli"
            if not cli.is_dir():
                continue
            for entry in os.scandir(cli):
                if ID_RE.match(entry.name) and entry.is_dir(follow_symlinks=False):
                    found.append((entry.name, Path(entry.path)))
        found.sort(key=lambda item: item[0], reverse=True)
        return found
