"""Provenance: every manifest says which tree it tested (commit, branch, dirty, hash of the changes) and
which tool tested it; `status` shows it and warns when the tree has changed since."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clikit import git, invoke
from testkit import assert_valid_manifest, py, write_config, write_files

from codex_orchestrator import __version__
from codex_orchestrator.runs import provenance
from codex_orchestrator.runs.layout import Roots


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    write_config(
        root,
        {
            "default_pipeline": "ci",
            "pipelines": [{"id": "ci", "stages": [{"id": "test", "command": py("pass")}]}],
        },
    )
    (root / "app.py").write_text("X = 1\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    return root


def _head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def _start(repo: Path) -> dict:  # type: ignore[type-arg]
    result = invoke("start", "--format", "json", "--repo", str(repo))
    assert result.exit_code == 0, result.stdout + result.stderr
    view = json.loads(result.stdout)
    manifest = json.loads(Path(view["manifest"]).read_text())
    assert_valid_manifest(manifest)
    return manifest  # type: ignore[no-any-return]


def test_a_clean_tree(repo: Path) -> None:
    state = provenance.tree_state(repo)
    assert state == {
        "vcs": "git",
        "reason": None,
        "commit": _head(repo),
        "branch": "main",
        "dirty": False,
        "changes_sha256": None,
        "untracked_files": 0,
    }


def test_the_changes_hash_covers_tracked_and_untracked_files_but_not_the_runs_roots(repo: Path) -> None:
    roots = Roots.resolve(repo)
    exclude = (roots.runs, roots.out)
    (repo / "app.py").write_text("X = 2\n")
    first = provenance.tree_state(repo, exclude)
    assert first["dirty"] is True and len(first["changes_sha256"]) == 64
    assert provenance.tree_state(repo, exclude) == first  # deterministic, and it wrote nothing
    (repo / "app.py").write_text("X = 3\n")
    second = provenance.tree_state(repo, exclude)
    assert second["changes_sha256"] != first["changes_sha256"]
    (repo / "notes.txt").write_text("a\n")
    third = provenance.tree_state(repo, exclude)
    assert third["untracked_files"] == 1 and third["changes_sha256"] != second["changes_sha256"]
    (repo / "notes.txt").write_text("b\n")  # same name, other content: another hash
    assert provenance.tree_state(repo, exclude)["changes_sha256"] != third["changes_sha256"]
    (repo / "notes.txt").write_text("a\n")
    # run records (even without their .gitignore) never change the hash
    (repo / ".runs" / "t").mkdir(parents=True)
    (repo / ".runs" / "t" / "x.json").write_text("{}")
    assert provenance.tree_state(repo, exclude) == third


def test_changes_inside_a_submodule_are_hashed(repo: Path, tmp_path: Path) -> None:
    """git's diff shows a dirty submodule as one `-dirty` line whatever its changes are, and untracked
    files in it not at all: each checked-out submodule's own changes are hashed in."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "f.txt").write_text("v1\n")
    git(lib, "init", "-q", "-b", "main")
    git(lib, "add", ".")
    git(lib, "commit", "-q", "-m", "lib")
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "vendor/lib")
    git(repo, "commit", "-q", "-m", "with lib")
    assert provenance.tree_state(repo)["dirty"] is False
    seen = set()
    for name, text in (("f.txt", "v2\n"), ("f.txt", "v3\n"), ("new.txt", "a"), ("new.txt", "b")):
        (repo / "vendor" / "lib" / name).write_text(text)
        state = provenance.tree_state(repo)
        assert state["dirty"] is True and state["changes_sha256"] not in seen, (name, text)
        seen.add(state["changes_sha256"])
        assert provenance.tree_state(repo) == state
        if name == "f.txt" and text == "v3\n":
            (repo / "vendor" / "lib" / "f.txt").write_text("v1\n")
    (repo / "vendor" / "lib" / "new.txt").unlink()
    assert provenance.tree_state(repo)["dirty"] is False
    # a declared path through a symlink may lead out of the repository: not read
    outside = tmp_path / "outside"
    (outside / "lib").mkdir(parents=True)
    git(outside / "lib", "init", "-q")
    (repo / "via").symlink_to(outside)
    with (repo / ".gitmodules").open("a") as gitmodules:
        gitmodules.write('[submodule "x"]\n\tpath = via/lib\n\turl = ../x\n')
    before = provenance.tree_state(repo)
    (outside / "lib" / "secret.txt").write_text("s")
    assert provenance.tree_state(repo) == before


def test_outside_git_the_fields_say_so(tmp_path: Path) -> None:
    state = provenance.tree_state(tmp_path)
    assert state["vcs"] is None and state["reason"] == "not a git repository"
    assert state["commit"] is None and state["dirty"] is None
    assert provenance.describe({**state, "tool_version": "x", "pyz_sha256": None}) == (
        "no commit recorded (not a git repository)"
    )


def test_a_repository_without_commits(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("a")
    state = provenance.tree_state(tmp_path)
    assert state["vcs"] == "git" and state["commit"] is None and state["reason"] == "no commit yet"
    assert state["dirty"] is True and state["changes_sha256"]


def test_every_manifest_records_provenance(repo: Path) -> None:
    clean = _start(repo)
    prov = clean["provenance"]
    assert prov["commit"] == _head(repo) and prov["branch"] == "main" and prov["dirty"] is False
    assert prov["tool_version"] == __version__ and prov["pyz_sha256"] is None  # not from a .pyz
    (repo / "app.py").write_text("X = 9\n")
    dirty = _start(repo)["provenance"]
    assert dirty["dirty"] is True and dirty["changes_sha256"] and dirty["commit"] == _head(repo)


def test_the_pyz_hash_is_recorded(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    from codex_orchestrator import runtime

    archive = tmp_path / "tool.pyz"
    archive.write_bytes(b"PK fake archive")
    monkeypatch.setattr(runtime, "pyz_path", lambda: archive)
    monkeypatch.setattr(provenance, "_hashed", {})  # this process's digest, computed afresh
    manifest = _start(repo)
    expected = hashlib.sha256(b"PK fake archive").hexdigest()
    assert manifest["provenance"]["pyz_sha256"] == expected and manifest["tool"]["pyz_sha256"] == expected
    # the archive was written just now: it is hashed again next time, not remembered (its times may not move)
    assert not (repo / ".runs" / provenance.PYZ_DIGESTS).exists()


@pytest.fixture
def hashed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """A stand-in .pyz this process runs from (`tmp_path / "tool.pyz"`); the list of files hashed."""
    from codex_orchestrator import hashing, runtime

    path = tmp_path / "tool.pyz"
    path.write_bytes(b"PK one")
    monkeypatch.setattr(runtime, "pyz_path", lambda: path)
    seen: list[Path] = []
    real = hashing.sha256_file

    def counted(file: Path) -> str:
        seen.append(file)
        return real(file)

    monkeypatch.setattr(hashing, "sha256_file", counted)
    return seen


def _fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provenance, "_hashed", {})


def test_the_pyz_hash_is_remembered_per_file_in_the_runs_root(
    hashed: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib
    import time

    archive = tmp_path / "tool.pyz"
    runs = tmp_path / "runs"
    runs.mkdir()
    later = lambda: time.time() + 10  # noqa: E731 - the archive is no longer racy
    one = hashlib.sha256(b"PK one").hexdigest()
    _fresh_process(monkeypatch)
    assert provenance.pyz_sha256(runs, now=later) == one and len(hashed) == 1
    assert (runs / provenance.PYZ_DIGESTS).read_text().endswith(f" {one}\n")
    for _ in range(2):  # new processes: the runs root remembers, nothing is hashed
        _fresh_process(monkeypatch)
        assert provenance.pyz_sha256(runs, now=later) == one
    assert len(hashed) == 1

    # another file in its place (a new download): hashed again, and both are remembered
    replacement = tmp_path / "new.pyz"
    replacement.write_bytes(b"PK two")
    replacement.replace(archive)
    _fresh_process(monkeypatch)
    two = hashlib.sha256(b"PK two").hexdigest()
    assert provenance.pyz_sha256(runs, now=later) == two and len(hashed) == 2
    assert len((runs / provenance.PYZ_DIGESTS).read_text().splitlines()) == 2

    # the same file rewritten in place: its change time moves, so the remembered digest no longer applies
    time.sleep(0.02)  # past the file system's timestamp granularity
    archive.write_bytes(b"PK 3!!")
    _fresh_process(monkeypatch)
    three = hashlib.sha256(b"PK 3!!").hexdigest()
    assert provenance.pyz_sha256(runs, now=later) == three and len(hashed) == 3


def test_a_remembered_digest_that_is_not_a_sha256_is_ignored(
    hashed: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    from codex_orchestrator import runtime

    runs = tmp_path / "runs"
    runs.mkdir()
    known = runtime.pyz_identity()
    assert known is not None
    (runs / provenance.PYZ_DIGESTS).write_text(f"{known[0]} not-a-digest\n")
    _fresh_process(monkeypatch)
    assert provenance.pyz_sha256(runs) == hashlib.sha256(b"PK one").hexdigest()
    assert len(hashed) == 1


def test_caches_python_tools_write_are_not_changes(repo: Path) -> None:
    """Byte code and tool caches are derived: a run whose own stages leave them (compileall, pytest) does
    not read as changed at once in a tree without a .gitignore for them."""
    stage = {
        "id": "test",
        "command": py("import compileall, sys; sys.exit(not compileall.compile_dir('.', quiet=1))"),
    }
    write_config(repo, {"default_pipeline": "ci", "pipelines": [{"id": "ci", "stages": [stage]}]})
    git(repo, "commit", "-qam", "compile")
    run = _start(repo)
    assert run["provenance"]["dirty"] is False
    assert (repo / "__pycache__").is_dir()  # the stage left byte code in the tree ...
    for cache in (".pytest_cache/v/cache/lastfailed", "pkg/.mypy_cache/3.11/x.json", ".ruff_cache/0.6/1"):
        (repo / cache).parent.mkdir(parents=True)
        (repo / cache).write_text("{}")
    status = invoke("status", "--run", run["run_id"], "--repo", str(repo))
    assert status.exit_code == 0 and "warning" not in status.stderr  # ... which is not a change
    assert provenance.tree_state(repo)["dirty"] is False
    (repo / "legacy.pyc").write_bytes(b"\0")  # importable without its source: it counts
    assert provenance.tree_state(repo)["untracked_files"] == 1
    status = invoke("status", "--run", run["run_id"], "--repo", str(repo))
    assert status.stderr.startswith("warning: the tree has changed since this run")


def test_untracked_installed_dependencies_are_not_hashed_but_vendored_ones_count(repo: Path) -> None:
    """A node_modules or a virtualenv nobody ignored is not the project's code, and hashing it read every
    file of it on each start and status; a tracked (vendored) dependency that changes is a change."""
    rels = ("node_modules/left-pad/index.js", "web/node_modules/x/y.js", ".venv/lib/site.py", "env/bin/a")
    write_files(repo, dict.fromkeys(rels, "x\n"))
    (repo / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (repo / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    state = provenance.tree_state(repo)
    assert state["dirty"] is False and state["untracked_files"] == 0
    (repo / "venv").mkdir()  # a folder called venv without pyvenv.cfg is the project's own
    (repo / "venv" / "notes.txt").write_text("mine\n")
    assert provenance.tree_state(repo)["untracked_files"] == 1
    (repo / "venv" / "notes.txt").unlink()
    git(repo, "add", "-f", "node_modules/left-pad/index.js")
    git(repo, "commit", "-qm", "vendor left-pad")
    assert provenance.tree_state(repo)["dirty"] is False
    (repo / "node_modules" / "left-pad" / "index.js").write_text("changed\n")
    assert provenance.tree_state(repo)["dirty"] is True


def test_status_shows_what_was_tested_and_warns_when_the_tree_changed(repo: Path) -> None:
    (repo / "app.py").write_text("X = 5\n")
    run_id = _start(repo)["run_id"]
    status = invoke("status", "--run", run_id, "--repo", str(repo))
    assert f"tested    {_head(repo)[:7]} on main (+ uncommitted changes)\n" in status.stdout
    assert "warning" not in status.stderr
    (repo / "app.py").write_text("X = 6\n")
    status = invoke("status", "--run", run_id, "--repo", str(repo))
    assert status.exit_code == 0
    assert status.stderr.startswith(
        "warning: the tree has changed since this run (the uncommitted changes differ)"
    )
    as_json = json.loads(invoke("status", "--run", run_id, "--repo", str(repo), "--json").stdout)
    assert as_json["tree_changed"] == "the uncommitted changes differ"
    assert as_json["provenance"]["commit"] == _head(repo)
    assert as_json["tested"] == f"tested {_head(repo)[:7]} on main (+ uncommitted changes)"
    git(repo, "commit", "-qam", "second")
    moved = json.loads(invoke("status", "--run", run_id, "--repo", str(repo), "--json").stdout)
    assert moved["tree_changed"].startswith("HEAD moved from ")


def test_an_old_manifest_without_provenance_stays_readable(repo: Path) -> None:
    manifest = _start(repo)
    path = Path(manifest["run_dir"]) / "manifest.json"
    del manifest["provenance"]
    del manifest["tool"]["pyz_sha256"]
    assert_valid_manifest(manifest)  # optional in the schema
    path.write_text(json.dumps(manifest))
    status = invoke("status", "--run", manifest["run_id"], "--repo", str(repo))
    assert status.exit_code == 0 and "tested    no provenance recorded" in status.stdout
    assert status.stderr == ""


def test_outside_git_a_run_says_so_and_succeeds(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        {
            "default_pipeline": "ci",
            "pipelines": [{"id": "ci", "stages": [{"id": "a", "command": py("pass")}]}],
        },
    )
    manifest = _start(tmp_path)
    assert manifest["status"] == "succeeded"
    assert (
        manifest["provenance"]["vcs"] is None and manifest["provenance"]["reason"] == "not a git repository"
    )
    status = invoke("status", "--run", manifest["run_id"], "--repo", str(tmp_path))
    assert "tested    no commit recorded (not a git repository)" in status.stdout


def test_a_resume_records_the_tree_it_tests(repo: Path) -> None:
    marker = repo / "fixed"
    write_config(
        repo,
        {
            "default_pipeline": "ci",
            "pipelines": [
                {
                    "id": "ci",
                    "stages": [
                        {
                            "id": "test",
                            "command": py(
                                f"import os, sys; sys.exit(0 if os.path.exists({str(marker)!r}) else 1)"
                            ),
                        }
                    ],
                }
            ],
        },
    )
    git(repo, "commit", "-qam", "config")
    result = invoke("start", "--format", "json", "--repo", str(repo))
    run_id = json.loads(result.stdout)["run_id"]
    marker.write_text("")
    (repo / "app.py").write_text("X = 7\n")
    resumed = invoke("resume", "--run", run_id, "--format", "json", "--repo", str(repo))
    assert resumed.exit_code == 0, resumed.stdout
    manifest = json.loads(Path(json.loads(resumed.stdout)["manifest"]).read_text())
    assert manifest["provenance"]["dirty"] is True
    assert "resumed_tree_changed" not in manifest["provenance"]  # it kept no stage: all tested this tree


def test_a_resume_that_kept_stages_tested_on_another_tree_says_so(repo: Path) -> None:
    marker = repo / "fixed"
    fails_until_fixed = py(f"import os, sys; sys.exit(0 if os.path.exists({str(marker)!r}) else 1)")
    stages = [{"id": "build", "command": py("pass")}, {"id": "test", "command": fails_until_fixed}]
    write_config(repo, {"default_pipeline": "ci", "pipelines": [{"id": "ci", "stages": stages}]})
    git(repo, "commit", "-qam", "config")
    run_id = json.loads(invoke("start", "--format", "json", "--repo", str(repo)).stdout)["run_id"]
    marker.write_text("")
    (repo / "app.py").write_text("X = 7\n")  # the fix also changed the code `build` was kept for
    resumed = invoke("resume", "--run", run_id, "--format", "json", "--repo", str(repo))
    assert resumed.exit_code == 0, resumed.stdout
    manifest = json.loads(Path(json.loads(resumed.stdout)["manifest"]).read_text())
    assert manifest["resume_events"][-1]["skipped"] == ["build"]
    assert manifest["provenance"]["resumed_tree_changed"] == "files changed; the run tested a clean tree"
    status = invoke("status", "--run", run_id, "--repo", str(repo))
    assert (
        f"tested    {_head(repo)[:7]} on main (+ uncommitted changes); the stages the resume kept tested an "
        "earlier tree (files changed; the run tested a clean tree)\n"
    ) in status.stdout


def test_without_git_installed_nothing_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-such-folder"))
    state = provenance.tree_state(tmp_path)
    assert state["vcs"] is None and state["reason"] == "git is not installed"


def _count_git_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []
    real_probe, real_stream = provenance.run_probe, provenance.run_probe_stream

    def probe(argv: list[str], **kw: object) -> object:
        calls.append(list(argv))
        return real_probe(argv, **kw)  # type: ignore[arg-type]

    def stream(argv: list[str], sink: object, **kw: object) -> object:
        calls.append(list(argv))
        return real_stream(argv, sink, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(provenance, "run_probe", probe)
    monkeypatch.setattr(provenance, "run_probe_stream", stream)
    return calls


def test_a_clean_tree_costs_one_git_call(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_git_calls(monkeypatch)
    assert provenance.tree_state(repo)["dirty"] is False
    assert len(calls) == 1 and "status" in calls[0] and "--no-optional-locks" in calls[0]
    (repo / "app.py").write_text("X = 2\n")
    state = provenance.tree_state(repo)
    assert state["dirty"] is True and len(calls) == 4  # status, then diff and the untracked listing


def test_staged_then_reverted_hashes_as_clean(repo: Path) -> None:
    """git status lists a change staged and then undone in the files; what is tested equals HEAD."""
    (repo / "app.py").write_text("X = 2\n")
    git(repo, "add", "app.py")
    (repo / "app.py").write_text("X = 1\n")
    assert git(repo, "status", "--porcelain").strip()  # git sees an entry ...
    state = provenance.tree_state(repo)
    assert state["dirty"] is False and state["changes_sha256"] is None  # ... the tested files are HEAD's


def test_a_detached_head_has_a_commit_and_no_branch(repo: Path) -> None:
    git(repo, "checkout", "-q", "--detach")
    state = provenance.tree_state(repo)
    assert state["commit"] == _head(repo) and state["branch"] is None and state["dirty"] is False


def test_a_long_untracked_listing_is_counted_whole(repo: Path) -> None:
    """More untracked names than the status headers' read bound (64 KiB of names)."""
    names = [f"untracked-file-with-a-long-name-{i:05d}.txt" for i in range(2000)]
    for name in names:
        (repo / name).write_text(name)
    state = provenance.tree_state(repo)
    assert state["dirty"] is True and state["untracked_files"] == len(names) and state["changes_sha256"]


def test_a_long_lived_process_never_pairs_a_new_file_with_an_old_digest(
    hashed: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An MCP server hashed its .pyz once; the file is then replaced on disk. The next run records (and
    the runs root remembers) the digest of the file that is there now, never the one hashed before."""
    import hashlib
    import time

    runs = tmp_path / "runs"
    runs.mkdir()
    later = lambda: time.time() + 10  # noqa: E731 - no file here is racy
    _fresh_process(monkeypatch)
    assert provenance.pyz_sha256(runs, now=later) == hashlib.sha256(b"PK one").hexdigest()
    replacement = tmp_path / "new.pyz"
    replacement.write_bytes(b"PK two")
    replacement.replace(tmp_path / "tool.pyz")  # same process: its memory of the old digest stays
    two = hashlib.sha256(b"PK two").hexdigest()
    assert provenance.pyz_sha256(runs, now=later) == two
    (runs / provenance.PYZ_DIGESTS).unlink()
    assert provenance.pyz_sha256(runs, now=later) == two  # from this process's memory, for this file
    assert (runs / provenance.PYZ_DIGESTS).read_text().startswith("-:")  # (no launcher: build "-")
    assert (runs / provenance.PYZ_DIGESTS).read_text().endswith(f" {two}\n")
    assert len(hashed) == 2
