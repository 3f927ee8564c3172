"""Provenance: which tree a run tested — the git commit, branch, whether the tree was dirty and a hash of
its uncommitted changes — and which tool tested it (version, and from a `.pyz` the artifact's SHA-256).

Nothing here fails, and nothing is written but the remembered `.pyz` digest (below): outside a git
repository (or without git, or when git does not answer within a few seconds) the fields say so and the
run goes on.

`changes_sha256` is SHA-256 over, in this order: `diff\\0` and the output of
`git diff --binary --no-ext-diff --no-textconv HEAD` (against the empty tree before the first commit),
then for each untracked, not ignored file in path order `\\0untracked\\0<path>\\0<content>` (a symlink's
content is its target). The runs roots are left out of both, so recording a run never changes it, and
so are the caches Python tools write anywhere in the tree (CACHE_FOLDERS: byte code, pytest's, mypy's and
ruff's): derived files that a run's own stages leave behind, which say nothing about the code (without a
.gitignore for them, the built-in pipeline's first run would otherwise read as changed at once). Nor are
untracked installed dependencies hashed (DEPENDENCY_FOLDERS anywhere, and a virtualenv, a top-level folder
holding pyvenv.cfg): they are not the project's code (its lockfiles are), and hashing a `node_modules` or
a `.venv` nobody ignored read tens of thousands of files on every `start` and `status`. Tracked files
under them (vendored dependencies) are still changes. A submodule's changes show in that diff only as
`-dirty`, so for each checked-out submodule (`.gitmodules`) whose tree is not clean, in path order,
`\\0submodule\\0<path>\\0<its changes_sha256>` follows, computed the same way (to MAX_SUBMODULE_DEPTH).
It is None when the tree is clean.

`pyz_sha256` is remembered in the runs root (`.pyz-sha256`) against the file's identity
(`runtime.pyz_identity`), so that a run does not hash the 15 MB archive again while it is the same file.
A file changed within the last `RACY_SECONDS` is never remembered (as git treats its index): a later write
then always moves its change time.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from codex_orchestrator import __version__, hashing, runtime
from codex_orchestrator._typing import TYPE_CHECKING
from codex_orchestrator.errors import StorageError
from codex_orchestrator.process import run_probe, run_probe_stream
from codex_orchestrator.runs.store import atomic_write_bytes

if TYPE_CHECKING:
    from typing import Any

GIT_TIMEOUT_SECONDS = 10.0
SHORT = 7
STATUS_HEAD_BYTES = 64 * 1024
PYZ_DIGESTS = ".pyz-sha256"  # in the runs root: one `<identity> <sha256>` line per .pyz, newest first
PYZ_DIGESTS_KEPT = 8
RACY_SECONDS = 2.0
MAX_SUBMODULE_DEPTH = 8  # submodules of submodules ... hashed this deep
_hashed: dict[str, str] = {}  # this process's .pyz digests, by the file's identity


CACHE_FOLDERS = ("__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache")
DEPENDENCY_FOLDERS = ("node_modules",)


def _untracked_excludes(repo: Path) -> list[str]:
    """Pathspecs leaving installed dependencies out of the untracked files: node_modules anywhere, and
    each top-level virtualenv (a folder holding pyvenv.cfg)."""
    specs = [f":(exclude,glob)**/{name}/**" for name in DEPENDENCY_FOLDERS]
    with contextlib.suppress(OSError), os.scandir(repo) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False) and os.path.isfile(os.path.join(entry.path, "pyvenv.cfg")):
                specs.append(f":(exclude,literal){entry.name}")
    return specs


def _pathspec(repo: Path, exclude: Iterable[Path]) -> list[str]:
    specs = ["--", ".", *(f":(exclude,glob)**/{name}/**" for name in CACHE_FOLDERS)]
    for root in exclude:
        try:
            rel = root.resolve().relative_to(repo.resolve())
        except ValueError:
            continue
        if rel.parts:
            specs.append(f":(exclude){rel.as_posix()}")
    return list(dict.fromkeys(specs))


def _unavailable(reason: str) -> dict[str, Any]:
    return {
        "vcs": None,
        "reason": reason,
        "commit": None,
        "branch": None,
        "dirty": None,
        "changes_sha256": None,
        "untracked_files": None,
    }


def tree_state(repo: Path, exclude: Iterable[Path] = (), *, depth: int = 0) -> dict[str, Any]:
    """The git facts of `repo` (commit, branch, dirty, changes_sha256, untracked_files), or why there
    are none (`reason`). `depth`: how deep in submodules `repo` is."""
    base = ["git", "--no-pager", "--no-optional-locks", "-c", "core.quotepath=off"]
    pathspec = _pathspec(repo, exclude)
    # One call answers for a clean tree (the common case): the commit, the branch and no entries.
    head_bytes = bytearray()  # the headers come first; past them, one entry is all we need to see
    status = run_probe_stream(
        [*base, "status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all", *pathspec],
        lambda chunk: head_bytes.extend(chunk[: max(0, STATUS_HEAD_BYTES - len(head_bytes))]),
        cwd=repo,
        timeout=GIT_TIMEOUT_SECONDS,
    )
    if status.error is not None:  # it could not start: found nowhere on PATH (or not runnable)
        return _unavailable("git is not installed")
    if status.timed_out:
        return _unavailable(f"git did not answer within {GIT_TIMEOUT_SECONDS:g} s")
    fields = os.fsdecode(bytes(head_bytes)).split("\0")
    if not status.ok or not fields[0].startswith("# branch."):
        return _unavailable("not a git repository")
    headers: dict[str, str] = {}
    for field in fields:
        if field.startswith("# branch.") and " " in field:
            key, value = field[len("# branch.") :].split(" ", 1)
            headers[key] = value
    oid, head = headers.get("oid", ""), headers.get("head", "")
    commit = oid if oid and oid != "(initial)" else None
    branch = head if head and head != "(detached)" else None
    if commit is not None and not any(f and not f.startswith("#") for f in fields):
        return {
            "vcs": "git",
            "reason": None,
            "commit": commit,
            "branch": branch,
            "dirty": False,
            "changes_sha256": None,
            "untracked_files": 0,
        }
    # Changes (or no commit yet): hash them as a stream. A tree whose index differs from HEAD while
    # its files equal HEAD again lists entries here and hashes as clean below.
    against = commit
    if against is None:  # no commit yet: everything is a change against the empty tree
        empty = run_probe([*base, "hash-object", "-t", "tree", os.devnull], cwd=repo)
        against = empty.output.strip() if empty.ok else "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
    import hashlib  # only a tree with changes is hashed (`status` of a clean tree never loads it)

    digest = hashlib.sha256(b"diff\0")
    size = 0

    def sink(chunk: bytes) -> None:
        nonlocal size
        size += len(chunk)
        digest.update(chunk)

    diff_argv = [*base, "diff", "--binary", "--no-ext-diff", "--no-textconv", "--no-color", against]
    diff = run_probe_stream([*diff_argv, *pathspec], sink, cwd=repo, timeout=GIT_TIMEOUT_SECONDS)
    listing = run_probe_stream_text(
        [*base, "ls-files", "-z", "--others", "--exclude-standard", *pathspec, *_untracked_excludes(repo)],
        repo,
    )
    if not diff.ok or listing is None:
        why = "timed out" if diff.timed_out else "failed"
        return {**_unavailable(f"git diff {why}"), "vcs": "git", "commit": commit, "branch": branch}
    untracked = sorted(p for p in listing.split("\0") if p)
    for rel in untracked:
        digest.update(b"\0untracked\0" + os.fsencode(rel) + b"\0")
        _hash_file(repo / rel, digest)
    dirty = size > 0 or bool(untracked)
    if depth < MAX_SUBMODULE_DEPTH:
        for rel in _submodules(repo, base):
            inner = tree_state(repo / rel, exclude, depth=depth + 1)
            if inner["vcs"] == "git" and inner["reason"] is None and not inner["dirty"]:
                continue
            state = inner["changes_sha256"] or f"<{inner['reason'] or 'unknown'}>"
            digest.update(b"\0submodule\0" + os.fsencode(rel) + b"\0" + state.encode())
            dirty = True  # (untracked files in a submodule leave no trace in the diff)
    return {
        "vcs": "git",
        "reason": None if commit else "no commit yet",
        "commit": commit,
        "branch": branch,
        "dirty": dirty,
        "changes_sha256": digest.hexdigest() if dirty else None,
        "untracked_files": len(untracked),
    }


def _submodules(repo: Path, base: list[str]) -> list[str]:
    """The paths of the submodules `.gitmodules` declares that are checked out here (a folder holding
    `.git`, inside `repo`), in order; none without that file."""
    if not os.path.isfile(repo / ".gitmodules"):
        return []
    listed = run_probe(
        [*base, "config", "-z", "--file", ".gitmodules", "--get-regexp", r"^submodule\..*\.path$"],
        cwd=repo,
    )
    found = set()
    inside = os.path.realpath(repo)
    for entry in listed.output.split("\0") if listed.ok else []:
        rel = entry.partition("\n")[2]
        parts = rel.split("/")
        if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
            continue
        folder = os.path.join(inside, rel)
        if os.path.realpath(folder) != folder:  # through a symlink: perhaps out of the repository
            continue
        if os.path.isdir(folder) and os.path.lexists(os.path.join(folder, ".git")):
            found.add(rel)
    return sorted(found)


def run_probe_stream_text(argv: list[str], cwd: Path) -> str | None:
    """A probe's whole stdout as text (for listings that may exceed run_probe's bound); None on failure."""
    parts: list[bytes] = []
    result = run_probe_stream(argv, parts.append, cwd=cwd, timeout=GIT_TIMEOUT_SECONDS)
    return os.fsdecode(b"".join(parts)) if result.ok else None


def _hash_file(path: Path, digest: Any) -> None:
    try:
        if path.is_symlink():
            digest.update(os.fsencode(os.readlink(path)))
            return
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:  # vanished or unreadable: its absence is part of the hash
        digest.update(f"<unreadable: {exc.strerror}>".encode())


def _remembered_digests(file: Path) -> list[str]:
    try:
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as fh:
            return fh.read(4096).decode("ascii").splitlines()
    except (OSError, UnicodeDecodeError):
        return []


def _hash_pyz(archive: Path, known: tuple[str, float] | None) -> str | None:
    """The archive's SHA-256, hashed once per file identity in this process: kept only when the file was
    the same before and after hashing it (a long-lived `mcp serve` whose file is replaced hashes anew)."""
    if known is not None and known[0] in _hashed:
        return _hashed[known[0]]
    try:
        digest = hashing.sha256_file(archive)
    except OSError:
        return None
    if known is None or runtime.pyz_identity() != known:
        return digest
    _hashed[known[0]] = digest
    return digest


def pyz_sha256(runs: Path | None, *, now: Callable[[], float] = time.time) -> str | None:
    """The SHA-256 of the .pyz we run from (None elsewhere), as remembered in the runs root `runs` for
    this very file, else hashed (and then remembered, when the runs root exists and the file is not
    racy). Remembering is best effort: a runs root that takes no writes only costs the hashing."""
    archive = runtime.pyz_path()
    if archive is None:
        return None
    known = runtime.pyz_identity()
    if known is None or runs is None:
        return _hash_pyz(archive, known)
    identity, changed_at = known
    file = runs / PYZ_DIGESTS
    lines = _remembered_digests(file)
    for line in lines:
        key, _, remembered = line.partition(" ")
        if key == identity and len(remembered) == 64 and all(c in "0123456789abcdef" for c in remembered):
            return remembered
    digest = _hash_pyz(archive, known)  # (not kept when the file changed while it was hashed)
    if digest is None or identity not in _hashed or changed_at > now() - RACY_SECONDS:
        return digest
    if runs.is_dir() and not runs.is_symlink():
        kept = [line for line in lines if not line.startswith(identity + " ")][: PYZ_DIGESTS_KEPT - 1]
        text = "".join(f"{line}\n" for line in [f"{identity} {digest}", *kept])
        with contextlib.suppress(StorageError):
            atomic_write_bytes(file, text.encode("ascii"))
    return digest


def collect(repo: Path, exclude: Iterable[Path] = (), *, runs: Path | None = None) -> dict[str, Any]:
    """The manifest's `provenance` object for a run of `repo`; `runs`: the runs root that remembers
    the .pyz's SHA-256."""
    return {**tree_state(repo, exclude), "tool_version": __version__, "pyz_sha256": pyz_sha256(runs)}


def collect_soon(
    repo: Path, exclude: Iterable[Path] = (), *, runs: Path | None = None
) -> Callable[[], dict[str, Any]]:
    """`collect`, started now on a thread of its own so that git reads the tree (and a new .pyz is
    hashed) while the caller goes on (a run's creation resolves its pipeline meanwhile); call what it
    returns to wait for the result."""
    outcome: list[tuple[dict[str, Any] | None, BaseException | None]] = []

    def work() -> None:
        try:
            outcome.append((collect(repo, exclude, runs=runs), None))
        except BaseException as exc:  # handed to the caller, raised there
            outcome.append((None, exc))

    thread = threading.Thread(target=work, name="provenance", daemon=True)
    thread.start()

    def result() -> dict[str, Any]:
        thread.join()
        value, error = outcome[0]
        if error is not None:
            raise error
        assert value is not None
        return value

    return result


def describe(prov: dict[str, Any] | None) -> str:
    """One line: `tested abc1234 on main (+ uncommitted changes)`, or why no commit is recorded."""
    if not isinstance(prov, dict):
        return "no provenance recorded (a run from an older version)"
    commit = prov.get("commit")
    if prov.get("vcs") != "git" or not isinstance(commit, str):
        return f"no commit recorded ({prov.get('reason') or 'not a git repository'})"
    text = f"tested {commit[:SHORT]}"
    if prov.get("branch"):
        text += f" on {prov['branch']}"
    if prov.get("dirty"):
        text += " (+ uncommitted changes)"
    if isinstance(prov.get("resumed_tree_changed"), str):  # what a resume kept was tested before
        text += f"; the stages the resume kept tested an earlier tree ({prov['resumed_tree_changed']})"
    return text


def changed_since(recorded: dict[str, Any] | None, now: dict[str, Any]) -> str | None:
    """How the tree differs now from what a run recorded, or None when it is the same (or either side
    has no git facts to compare)."""
    if not isinstance(recorded, dict) or recorded.get("vcs") != "git" or now.get("vcs") != "git":
        return None
    if recorded.get("changes_sha256") is None and recorded.get("dirty") is None:
        return None  # git could not hash the changes then: nothing to compare
    if recorded.get("commit") != now.get("commit"):
        was, is_ = recorded.get("commit") or "no commit", now.get("commit") or "no commit"
        return f"HEAD moved from {str(was)[:SHORT]} to {str(is_)[:SHORT]}"
    if recorded.get("changes_sha256") != now.get("changes_sha256"):
        if not recorded.get("dirty"):
            return "files changed; the run tested a clean tree"
        return "the uncommitted changes differ" if now.get("dirty") else "the uncommitted changes are gone"
    return None
