"""Where things live: the repo/runs/out roots and every path of a task and a run folder, defined once.

    <runs>/<task>/cli/<run-id>/   a run (RunPaths): manifest.json, runner.ndjson, commands/, errors/, ...
    <runs>/<task>/metrics.jsonl    one line per finished run
    <runs>/<task>/state.json       the task's latest state (the state folder defaults to the runs root;
                                   `$CODEX_ORCHESTRATOR_OUT_DIR` moves it; older versions wrote
                                   `<repo>/out/<task>/state.json`, still read by `records.read_state`)
    <runs>/.gitignore              `*`: the runs root (and a state folder we create) ignores itself

The repository root is discovered like git and ruff do (`discover_repo`): from the current folder
upwards, the nearest folder holding `codex.orchestrator.json`, else the git top level, else the current
folder; `--repo` or `$CODEX_ORCHESTRATOR_ROOT` override it.

Every path handed out here is contained: a task folder, a task's `cli` folder, its metrics file or its
state folder that is a symlink leading out of its root is refused (UnsafePathError), so nothing reads,
writes, moves or deletes outside the runs roots through a link.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from codex_orchestrator._typing import NamedTuple
from codex_orchestrator.errors import RepoError, RunNotFoundError, UnsafePathError
from codex_orchestrator.ids import is_id, validate_id, validate_run_id
from codex_orchestrator.runs.store import atomic_write_bytes

RUNS_SUBDIR = "cli"
MANIFEST = "manifest.json"
METRICS = "metrics.jsonl"
STATE = "state.json"
MIGRATIONS = "migrations"
CONFIG_FILE = "codex.orchestrator.json"
LEGACY_STATE_DIR = "out"  # <repo>/out/<task>/state.json, where older versions kept the state
IGNORE_ALL = "*\n"


class RunPaths(NamedTuple):
    """Every file of one run folder."""

    dir: Path

    @property
    def run_id(self) -> str:
        return self.dir.name

    @property
    def task_id(self) -> str:
        return self.dir.parent.parent.name

    @property
    def manifest(self) -> Path:
        return self.dir / MANIFEST

    @property
    def lock(self) -> Path:
        """Held (flock) by whichever process drives the run, for the run's whole life."""
        return self.dir / ".lock"

    @property
    def token(self) -> Path:
        return self.dir / ".resume-token"

    @property
    def cancel_request(self) -> Path:
        """Written by `cancel`; the driver honours it before its first stage and between stages."""
        return self.dir / "cancel-request.json"

    @property
    def events(self) -> Path:
        return self.dir / "runner.ndjson"

    @property
    def runner_log(self) -> Path:
        """stdout/stderr of a detached driver."""
        return self.dir / "runner.log"

    @property
    def commands(self) -> Path:
        return self.dir / "commands"

    @property
    def errors(self) -> Path:
        return self.dir / "errors"

    @property
    def review(self) -> Path:
        return self.dir / "review"

    @staticmethod
    def stage_stem(index: int, stage_id: str) -> str:
        return f"{index:02d}-{stage_id}"

    def stage_log(self, index: int, stage_id: str) -> Path:
        return self.commands / f"{self.stage_stem(index, stage_id)}.log"

    def error_file(self, index: int, stage_id: str) -> Path:
        return self.errors / f"{self.stage_stem(index, stage_id)}.json"

    def nothing_to_check_file(self, index: int, stage_id: str) -> Path:
        """Written by a stage that found nothing to check (its path is in NOTHING_TO_CHECK_ENV)."""
        return self.commands / f"{self.stage_stem(index, stage_id)}.nothing-to-check"


#: The "nothing to check" convention: a stage that ran fine but found nothing to check writes one line
#: (the reason) to the file named by this variable and exits 0; the run records the stage `skipped` with
#: that reason, never as guardrail evidence. (pytest's and unittest's exit code 5, "no tests ran", means
#: the same and is read the same way.)
NOTHING_TO_CHECK_ENV = "CODEX_ORCHESTRATOR_NOTHING_TO_CHECK_FILE"
#: How spec-guard's reason begins when it found only the placeholders `init codex` wrote: the run's next
#: step then says to fill them in, not to run `init codex` again (runs/guardrails)
PLACEHOLDERS_ONLY = "only placeholders written by `init codex`"


def report_nothing_to_check(reason: str) -> bool:
    """Inside a stage, tell the run that this check found nothing to check (see NOTHING_TO_CHECK_ENV);
    False (and nothing written) outside a stage."""
    target = os.environ.get(NOTHING_TO_CHECK_ENV)
    if not target:
        return False
    path = Path(target)
    if path.is_symlink() or not path.parent.is_dir():
        return False
    atomic_write_bytes(path, (" ".join(reason.split()) + "\n").encode("utf-8"))
    return True


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _no_link_below(path: Path, root: Path) -> bool:
    """`path` lies under `root` by name, with no `..` and no symlink below `root`. A part that does not
    exist ends the walk: nothing under it can be a link. (`root` itself may be a link, as a runs
    folder kept on another disk is: what is under it stays under it.)"""
    parts, under = path.parts, len(root.parts)
    if not path.is_absolute() or parts[:under] != root.parts or ".." in parts[under:]:
        return False
    current = str(root)
    for part in parts[under:]:
        current = os.path.join(current, part)
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return True
        except OSError:
            return False
        if stat.S_ISLNK(mode):
            return False
    return True


#: The files that make a folder a project the built-in adapters detect (pipelines/adapters.py, each
#: adapter's markers; the tests keep the two in step).
PROJECT_MARKERS = (
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "package.json",
    "go.mod",
    "Cargo.toml",
    "pom.xml",
    "build.gradle",
    "build.gradle.kts",
    "settings.gradle",
    "settings.gradle.kts",
    "requirements.txt",  # (a fallback marker: Python where nothing else is)
    "Pipfile",
)


def project_marker(folder: Path) -> str | None:
    """The first of PROJECT_MARKERS that `folder` holds, if any."""
    return next((m for m in PROJECT_MARKERS if (folder / m).is_file()), None)


def discover_repo(start: Path) -> tuple[Path, str | None]:
    """The repository root for a command started in `start` (absolute): the nearest folder upwards
    holding `codex.orchestrator.json`, else the git top level (a folder holding `.git`), else `start`.
    The search never climbs above the git top level. Returns the root and why it was chosen.

    One exception, where the git top level could run nothing (no configuration, no project marker, no
    `tasks/` folder: a monorepo's top): the nearest folder from `start` up that holds a project is the
    root, as if it were its own repository."""
    climbed: list[Path] = []
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder, f"found {CONFIG_FILE}"
        if is_git_top(folder):
            if climbed and not project_marker(folder) and not (folder / "tasks").is_dir():
                for inner in climbed:
                    marker = project_marker(inner)
                    if marker:
                        return (
                            inner,
                            f"the nearest project folder ({marker}); the git top level {folder} holds none",
                        )
            return folder, "the git top level"
        climbed.append(folder)
    return start, None


def is_git_top(folder: Path) -> bool:
    """`folder/.git` is a git directory (holds HEAD) or a worktree/submodule `gitdir:` file."""
    dotgit = folder / ".git"
    try:
        if dotgit.is_dir():
            return (dotgit / "HEAD").is_file()
        if dotgit.is_file():
            with open(dotgit, encoding="utf-8", errors="replace") as fh:
                return fh.read(8) == "gitdir: "
    except OSError:
        return False
    return False


class Roots(NamedTuple):
    repo: Path
    runs: Path
    out: Path
    #: Set when the root was discovered above the current folder: says which and why (renderers
    #: show it once on stderr).
    note: str | None = None

    @classmethod
    def resolve(cls, repo: str | os.PathLike[str] | None = None) -> Roots:
        """repo = argument > CODEX_ORCHESTRATOR_ROOT > discovered from the current folder
        (`discover_repo`); runs from env or `<repo>/.runs`; the state folder from env or the runs root."""
        note = None
        if repo is not None:
            raw: str | os.PathLike[str] = repo
        elif os.environ.get("CODEX_ORCHESTRATOR_ROOT"):
            raw = os.environ["CODEX_ORCHESTRATOR_ROOT"]
        else:
            try:
                cwd = Path(os.getcwd())
            except OSError:
                raise RepoError(
                    "the current folder no longer exists", hint="cd into the repository, or pass --repo"
                ) from None
            found, why = discover_repo(cwd)
            raw = found
            if found != cwd:
                note = f"using repository {found} ({why})"
        path = Path(raw).expanduser()
        if not path.exists():
            raise RepoError(
                f"repository {str(path)!r} does not exist", hint="pass --repo with an existing folder"
            )
        if not path.is_dir():
            raise RepoError(f"repository {str(path)!r} is not a folder", hint="pass --repo with a folder")
        path = path.resolve()
        for what, value in (
            ("repository", str(path)),
            ("runs folder", os.environ.get("CODEX_ORCHESTRATOR_RUNS_DIR") or ""),
            ("state folder", os.environ.get("CODEX_ORCHESTRATOR_OUT_DIR") or ""),
        ):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                shown = value.encode("utf-8", "backslashreplace").decode()
                raise RepoError(
                    f"the {what} path {shown!r} is not valid UTF-8",
                    hint="rename the folder (or use another one) so its path is UTF-8 text",
                ) from None
        runs = os.environ.get("CODEX_ORCHESTRATOR_RUNS_DIR")
        out = os.environ.get("CODEX_ORCHESTRATOR_OUT_DIR")
        runs_path = (path / Path(runs).expanduser()).resolve() if runs else path / ".runs"
        return cls(
            repo=path,
            runs=runs_path,
            out=(path / Path(out).expanduser()).resolve() if out else runs_path,
            note=note,
        )

    @property
    def legacy_state_root(self) -> Path:
        """Where older versions kept `<task>/state.json` (read as a fallback, never written)."""
        return self.repo / LEGACY_STATE_DIR

    def ensure_ignored(self, folder: Path) -> None:
        """Give a runs root or state folder a `.gitignore` holding `*` (when it has none), so a plain
        `git add -A` never stages run records or resume tokens. Never follows a symlink."""
        marker = folder / ".gitignore"
        if folder.is_symlink() or marker.is_symlink() or marker.exists():
            return
        atomic_write_bytes(marker, IGNORE_ALL.encode())

    # -- containment --------------------------------------------------------------------------
    def contain(self, path: Path, *, root: Path | None = None) -> Path:
        """`path` when it stays inside the runs root (or `root`) with every symlink followed: as it is
        when it lies under the root by name with no symlink below the root (the common case: a few
        `lstat` calls), else resolved. UnsafePathError when it leads out."""
        if _no_link_below(path, root or self.runs):
            return path
        base = (root or self.runs).resolve()
        resolved = path.resolve()
        if not _inside(resolved, base):
            what = "the runs folder" if root is None or root == self.runs else "the state folder"
            raise UnsafePathError(
                f"{path} leads outside {what} ({base}) through a symlink; refusing to use it",
                hint=f"remove the symlink {path} (nothing outside {base} was touched)",
            )
        return resolved

    def _contained(self, path: Path, root: Path) -> Path:
        """`path` itself when it is inside `root` after resolving links (it need not exist yet)."""
        self.contain(path, root=root)
        return path

    # -- task folders ---------------------------------------------------------------------------
    def task_dir(self, task_id: str) -> Path:
        return self._contained(self.runs / validate_id("task", task_id), self.runs)

    def runs_dir(self, task_id: str) -> Path:
        """`<runs>/<task>/cli`: the task's run folders."""
        return self._contained(self.task_dir(task_id) / RUNS_SUBDIR, self.runs)

    def metrics_file(self, task_id: str) -> Path:
        return self._contained(self.task_dir(task_id) / METRICS, self.runs)

    def migrations_dir(self, task_id: str) -> Path:
        return self._contained(self.task_dir(task_id) / MIGRATIONS, self.runs)

    def state_file(self, task_id: str) -> Path:
        folder = self._contained(self.out / validate_id("task", task_id), self.out)
        return self._contained(folder / STATE, self.out)

    def check_task(self, task_id: str) -> None:
        """Refuse (UnsafePathError) a task whose folders or files lead outside their roots, before a run
        of it writes anything."""
        self.runs_dir(task_id)
        self.metrics_file(task_id)
        self.state_file(task_id)

    # -- run folders ----------------------------------------------------------------------------
    def run(self, task_id: str, run_id: str) -> RunPaths:
        path = self.runs_dir(task_id) / validate_run_id(run_id)
        return RunPaths(self._contained(path, self.runs))

    def find_run(self, run_id: str) -> RunPaths:
        """Run `run_id`, in any task, without scanning every run."""
        validate_run_id(run_id)
        for task in self.task_ids():
            candidate = self.runs / task / RUNS_SUBDIR / run_id
            if (candidate / MANIFEST).is_file():
                paths = self.run(task, run_id)
                self.contain(paths.manifest)  # a symlinked manifest must not lead out
                return paths
        raise RunNotFoundError(
            f"no run {run_id!r} under {self.runs}", hint="`codex-orchestrator runs list` shows the runs"
        )

    def task_ids(self) -> list[str]:
        """Task folders under the runs root (sorted); names that are not safe ids are ignored."""
        if not self.runs.is_dir():
            return []
        return sorted(e.name for e in os.scandir(self.runs) if is_id(e.name) and e.is_dir())

    def iter_runs(self, task_id: str | None = None, *, links: bool = False) -> list[RunPaths]:
        """Every run folder, newest first (run ids sort by time). A run folder that is itself a symlink
        is left out, unless `links` (callers that report such folders as unsafe); so is, when listing
        every task, a task folder that leads outside the runs root (naming that task raises)."""
        return [RunPaths(Path(folder)) for _, folder in self.run_folders(task_id, links=links)]

    def run_folders(self, task_id: str | None = None, *, links: bool = False) -> list[tuple[str, str]]:
        """(run id, folder) of what `iter_runs` lists, in its order, without making a path of each: a
        selector such as `latest` needs one run of thousands."""
        tasks = [task_id] if task_id else self.task_ids()
        found: list[tuple[str, str]] = []
        for task in tasks:
            try:
                cli = self.runs_dir(task)
            except UnsafePathError:
                if task_id:
                    raise
                continue  # listing every task: one that leads outside is left out, never followed
            if not cli.is_dir():
                continue
            for entry in os.scandir(cli):
                linked = links and entry.is_symlink()
                if is_id(entry.name) and (entry.is_dir(follow_symlinks=False) or linked):
                    found.append((entry.name, entry.path))
        found.sort(reverse=True)
        return found
