"""`Roots.contain`: a path under the runs root is used only when no symlink leads it out of the root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from codex_orchestrator.errors import UnsafePathError
from codex_orchestrator.runs.layout import Roots


@pytest.fixture
def roots(tmp_path: Path) -> Roots:
    repo = tmp_path / "repo"
    (repo / ".runs" / "t" / "cli").mkdir(parents=True)
    return Roots.resolve(repo)


def test_a_plain_path_is_kept_whether_it_exists_or_not(roots: Roots) -> None:
    run = roots.runs / "t" / "cli" / "r1"
    assert roots.contain(run) == run  # not there yet
    run.mkdir()
    (run / "manifest.json").write_text("{}")
    assert roots.contain(run / "manifest.json") == run / "manifest.json"
    assert roots.contain(roots.runs) == roots.runs


def test_a_link_that_stays_inside_is_followed(roots: Roots) -> None:
    real = roots.runs / "t" / "cli" / "r1"
    real.mkdir()
    link = roots.runs / "t" / "cli" / "legacy"
    link.symlink_to(real, target_is_directory=True)
    assert roots.contain(link / "manifest.json") == real / "manifest.json"


@pytest.mark.parametrize("dangling", [False, True])
def test_a_link_out_of_the_root_is_refused_at_any_depth(roots: Roots, tmp_path: Path, dangling: bool) -> None:
    outside = tmp_path / "outside"
    if not dangling:
        outside.mkdir()
    (roots.runs / "t" / "cli" / "r1").symlink_to(outside, target_is_directory=True)
    for path in (roots.runs / "t" / "cli" / "r1", roots.runs / "t" / "cli" / "r1" / "manifest.json"):
        with pytest.raises(UnsafePathError, match="leads outside the runs folder"):
            roots.contain(path)
    (roots.runs / "t2").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError):
        roots.contain(roots.runs / "t2" / "cli")


def test_a_runs_root_that_is_itself_a_link_holds_what_is_under_it(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    elsewhere = tmp_path / "disk" / "runs"
    (elsewhere / "t").mkdir(parents=True)
    (repo / ".runs").symlink_to(elsewhere, target_is_directory=True)
    roots = Roots.resolve(repo)
    path = roots.runs / "t" / "manifest.json"
    assert os.path.samefile(roots.contain(path).parent, elsewhere / "t")
    (elsewhere / "t" / "out").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(UnsafePathError):
        roots.contain(roots.runs / "t" / "out" / "x")


def test_dot_dot_and_foreign_paths_are_refused(roots: Roots, tmp_path: Path) -> None:
    for path in (roots.runs / "t" / ".." / ".." / "x", tmp_path / "elsewhere", roots.repo / "x"):
        with pytest.raises(UnsafePathError):
            roots.contain(path)
    assert roots.contain(roots.runs / "t" / ".." / "t" / "cli") == roots.runs / "t" / "cli"


def test_the_state_folder_is_a_root_of_its_own(roots: Roots, tmp_path: Path) -> None:
    state = roots.repo / "state"
    state.mkdir()
    assert roots.contain(state / "t" / "state.json", root=state) == state / "t" / "state.json"
    (state / "t").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(UnsafePathError, match="the state folder"):
        roots.contain(state / "t" / "state.json", root=state)


def test_a_plain_path_costs_no_resolve(roots: Roots, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run makes about 16 of these checks: each is a few `lstat` calls, not two `realpath` walks."""
    (roots.runs / "t" / "cli" / "r1").mkdir()

    def no_resolve(self: Path, strict: bool = False) -> Path:
        raise AssertionError(f"resolved {self}")

    monkeypatch.setattr(Path, "resolve", no_resolve)
    assert roots.contain(roots.runs / "t" / "cli" / "r1" / "manifest.json").name == "manifest.json"
    assert roots.runs_dir("t") == roots.runs / "t" / "cli"
