"""Isolated working trees for parallel goals: one private checkout per goal, made from the current tree.

In a git repository, the current tree (committed files, uncommitted changes and untracked files that are
not ignored; deletions too) is recorded once as a snapshot commit, through a temporary index, so the
user's index, stash and branches are untouched. Each goal then gets `git worktree add --detach` of that
commit under a temporary folder outside the repository. A folder that is not a git repository is copied
instead (without its runs and state roots). `remove` takes a worktree away again (`git worktree remove
--force` and `git worktree prune`); `Workspaces.close` removes whatever is left, and is called on every
way out (success, failure, Ctrl-C).

Ignored files (virtual environments, node_modules, build output) are not part of a git snapshot: a
pipeline that needs them installs them, or the goals run `--in-place`.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from codex_orchestrator.errors import RepoError
from codex_orchestrator.process import ProbeResult, run_probe
from codex_orchestrator.runs.layout import Roots

GIT_TIMEOUT = 300.0
_SHA = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$")
_IDENTITY = {
    "GIT_AUTHOR_NAME": "codex-orchestrator",
    "GIT_AUTHOR_EMAIL": "codex-orchestrator@localhost",
    "GIT_COMMITTER_NAME": "codex-orchestrator",
    "GIT_COMMITTER_EMAIL": "codex-orchestrator@localhost",
}
PREFIX = "codex-orch-goal-"


@dataclass
class Workspace:
    """One goal's private tree: `repo` is where its run treats as the repository root."""

    kind: str  # "worktree" | "copy"
    base: Path  # the temporary folder holding the tree (removed with it)
    tree: Path  # the checkout / copy itself
    repo: Path  # `tree`, or the same subfolder of it that the repository root is of the git top level


@dataclass
class Workspaces:
    """Makes and removes the isolated trees of one `goals run`."""

    source: Roots
    git_top: Path | None = None
    snapshot: str | None = None
    live: list[Workspace] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.git_top = _git_toplevel(self.source.repo)

    @property
    def kind(self) -> str:
        return "worktree" if self.git_top is not None else "copy"

    def _git(self, *args: str, env: dict[str, str] | None = None) -> ProbeResult:
        assert self.git_top is not None
        full_env = {**os.environ, **(env or {})}
        return run_probe(["git", "-C", str(self.git_top), *args], timeout=GIT_TIMEOUT, env=full_env)

    def _snapshot(self) -> str:
        """A commit of the current tree (tracked changes and untracked, non-ignored files included)."""
        if self.snapshot is not None:
            return self.snapshot
        top = self.git_top
        assert top is not None
        with tempfile.TemporaryDirectory(prefix="codex-orch-index-") as tmp:
            index = Path(tmp) / "index"
            current = self._git("rev-parse", "--git-path", "index")
            if current.ok and current.output.strip():
                existing = top / current.output.strip().splitlines()[-1]  # absolute stays absolute
                if existing.is_file():
                    shutil.copyfile(existing, index)  # stat data: `add` re-hashes only what changed
            env = {"GIT_INDEX_FILE": str(index), **_IDENTITY}
            added = self._git("add", "--all", "--", ".", *self._excluded(top), env=env)
            if not added.ok:
                raise _git_failed("record the current tree", added)
            tree = _sha(self._git("write-tree", env=env), "record the current tree")
        head = self._git("rev-parse", "--verify", "--quiet", "HEAD^{commit}")
        parents = ["-p", head.output.strip().splitlines()[-1]] if head.ok and head.output.strip() else []
        commit = self._git(
            "commit-tree", tree, *parents, "-m", "codex-orchestrator: goals snapshot", env=_IDENTITY
        )
        self.snapshot = _sha(commit, "record the current tree")
        return self.snapshot

    def _excluded(self, top: Path) -> list[str]:
        """Pathspecs leaving out the runs and state roots when they live inside the repository."""
        specs = []
        for root in (self.source.runs, self.source.out):
            if top in root.parents:
                rel = root.relative_to(top).as_posix()
                # `git add` refuses a pathspec naming an ignored path (an excluding one too): an ignored
                # root is left out anyway
                if not self._git("check-ignore", "-q", "--", rel).ok:
                    specs.append(f":(exclude){rel}")
        return specs

    def create(self, label: str) -> Workspace:
        """A new private tree for one goal."""
        base = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{_safe(label)}-"))
        try:
            if self.git_top is not None:
                snapshot = self._snapshot()
                tree = base / "tree"
                added = self._git("worktree", "add", "--detach", str(tree), snapshot)
                if not added.ok:
                    raise _git_failed("create a worktree", added)
                rel = self.source.repo.relative_to(self.git_top)
                ws = Workspace("worktree", base, tree, tree / rel)
            else:
                tree = base / self.source.repo.name
                try:
                    shutil.copytree(self.source.repo, tree, symlinks=True, ignore=self._copy_ignore)
                except (OSError, shutil.Error) as exc:
                    raise RepoError(
                        f"could not copy {self.source.repo} for an isolated goal: {exc}",
                        hint="make every file readable, or run the goals in the folder with --in-place",
                    ) from None
                ws = Workspace("copy", base, tree, tree)
        except BaseException:
            shutil.rmtree(base, ignore_errors=True)
            if self.git_top is not None:
                self._git("worktree", "prune")
            raise
        with self._lock:
            self.live.append(ws)
        return ws

    def _copy_ignore(self, folder: str, names: list[str]) -> set[str]:
        """Leave out the runs and state roots (when they live inside the repository)."""
        here = Path(folder).resolve()
        return {n for n in names if (here / n) in (self.source.runs, self.source.out)}

    def remove(self, ws: Workspace) -> None:
        """Take one tree away (never raises: a tree that cannot be removed is left for `prune`)."""
        with self._lock:
            if ws not in self.live:
                return
            self.live.remove(ws)
        if ws.kind == "worktree":
            self._git("worktree", "remove", "--force", str(ws.tree))
        shutil.rmtree(ws.base, ignore_errors=True)
        if ws.kind == "worktree":
            self._git("worktree", "prune")

    def close(self) -> None:
        """Remove every tree still there."""
        for ws in list(self.live):
            self.remove(ws)

    def roots_for(self, ws: Workspace) -> Roots:
        """Run in the private tree, file the run under the main repository's runs and state roots."""
        return Roots(repo=ws.repo, runs=self.source.runs, out=self.source.out)


def _git_toplevel(repo: Path) -> Path | None:
    if shutil.which("git") is None:
        return None
    res = run_probe(["git", "-C", str(repo), "rev-parse", "--show-toplevel"], timeout=30.0)
    if not res.ok or not res.output.strip():
        return None
    top = Path(res.output.strip().splitlines()[-1]).resolve()
    if repo != top and top not in repo.parents:
        return None
    if repo != top:  # a folder git ignores would be missing from the worktree: copy it instead
        ignored = run_probe(["git", "-C", str(top), "check-ignore", "-q", "--", str(repo.relative_to(top))])
        if ignored.ok:
            return None
    return top


def _sha(res: ProbeResult, what: str) -> str:
    lines = res.output.strip().splitlines()
    if not res.ok or not lines or not _SHA.match(lines[-1].strip()):
        raise _git_failed(what, res)
    return lines[-1].strip()


def _git_failed(what: str, res: ProbeResult) -> RepoError:
    lines = res.output.strip().splitlines() or [res.error or "no output"]
    detail = next((line for line in lines if line.startswith(("fatal:", "error:"))), lines[-1])
    return RepoError(
        f"git could not {what} for an isolated goal: {detail}",
        hint="fix the repository (see `git status`), or run the goals in the working tree with --in-place",
    )


def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", label)[:40] or "goal"
