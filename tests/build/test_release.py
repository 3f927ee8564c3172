"""release/release: tag rules, release notes, SHA256SUMS, the never-replace publication, and a dry run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import _release
import pytest
from _pyzlib import BuildError
from pyz_helpers import CACHE, REPO, SDE, require_wheelhouse

# ---------------------------------------------------------------------------------------------- tags


@pytest.mark.parametrize(
    ("tag", "version", "prerelease"),
    [
        ("v0.1.0", "0.1.0", False),
        ("v1.2.0rc1", "1.2.0rc1", True),
        ("v1.2.0a3", "1.2.0a3", True),
        ("v1.2.0b1", "1.2.0b1", True),
        ("v1.2.0.dev4", "1.2.0.dev4", True),
        ("v1.2.0.post1", "1.2.0.post1", False),
        ("v2.0", "2.0", False),
    ],
)
def test_valid_tags(tag: str, version: str, prerelease: bool) -> None:
    assert _release.check_tag(tag, version) == _release.Tag(tag, version, prerelease)


@pytest.mark.parametrize(
    ("tag", "package", "message", "hint"),
    [
        ("0.1.0", "0.1.0", "does not start with 'v'", "v0.1.0"),
        ("v1.2.0-rc.1", "1.2.0rc1", "not a canonical PEP 440", "use v1.2.0rc1"),
        ("v1.2.0RC1", "1.2.0rc1", "not a canonical PEP 440", "use v1.2.0rc1"),
        ("v01.2.0", "1.2.0", "not a canonical PEP 440", "use v1.2.0"),
        ("v1.2.0+local", "1.2.0", "not a canonical PEP 440", "vX.Y.Z"),
        ("vfoo", "1.2.0", "not a canonical PEP 440", "vX.Y.Z"),
        ("v0.2.0", "0.1.0", "does not match the package version 0.1.0", "bump"),
    ],
)
def test_invalid_tags(tag: str, package: str, message: str, hint: str) -> None:
    with pytest.raises(BuildError) as exc:
        _release.check_tag(tag, package)
    assert message in exc.value.message
    assert hint in exc.value.hint


def test_check_tag_writes_github_outputs(tmp_path: Path) -> None:
    out = tmp_path / "github_output"
    env = {**os.environ, "GITHUB_OUTPUT": str(out)}
    version = _release.lib.project_version(REPO)
    proc = subprocess.run(
        [sys.executable, str(REPO / "release" / "release"), "check-tag", f"v{version}"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == f"version={version}\nprerelease=false\n"
    bad = subprocess.run(
        [sys.executable, str(REPO / "release" / "release"), "check-tag", "v99.0.0-beta"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and "fix:" in bad.stderr


# ------------------------------------------------------------------------------------------- notes

CHANGELOG = """# Changelog

## [Unreleased]
- nothing yet

## [1.1.0] - 2026-12-01
### Fixed
- a bug

## [1.0.0] - 2026-11-01
### Added
- everything

## [0.9.0]

[1.1.0]: https://example.invalid/compare/v1.0.0...v1.1.0
"""


def test_release_notes_take_one_section(tmp_path: Path) -> None:
    log = tmp_path / "CHANGELOG.md"
    log.write_text(CHANGELOG)
    assert _release.release_notes("1.1.0", log) == "### Fixed\n- a bug"
    assert _release.release_notes("1.0.0", log) == "### Added\n- everything"
    with pytest.raises(BuildError, match=r"no section for 2\.0\.0"):
        _release.release_notes("2.0.0", log)
    with pytest.raises(BuildError, match="empty"):
        _release.release_notes("0.9.0", log)


def test_repo_changelog_has_the_current_version() -> None:
    assert _release.release_notes(_release.lib.project_version(REPO), REPO / "CHANGELOG.md")


# ------------------------------------------------------------------------------------------- sums


def test_sha256sums_round_trip(tmp_path: Path) -> None:
    a = tmp_path / "codex-orchestrator-1.0.0-cp311-manylinux_2_17_x86_64.pyz"
    b = tmp_path / "codex-orchestrator-1.0.0-cp312-manylinux_2_17_x86_64.pyz"
    a.write_bytes(b"a")
    b.write_bytes(b"b")
    sums = _release.write_sums(tmp_path, [b, a])
    lines = sums.read_text().splitlines()
    assert [line.split("  ")[1] for line in lines] == [a.name, b.name]
    assert _release.check_sums(tmp_path) == []
    if shutil.which("sha256sum"):
        ok = subprocess.run(
            ["sha256sum", "--check", "--ignore-missing", "SHA256SUMS"], cwd=tmp_path, check=False
        )
        assert ok.returncode == 0
    b.write_bytes(b"tampered")
    assert _release.check_sums(tmp_path) == [f"{b.name} does not match its SHA-256"]


# ----------------------------------------------------------------------------------------- publish


def _release_folder(tmp_path: Path, version: str = "1.0.0") -> Path:
    folder = tmp_path / "dist"
    folder.mkdir()
    asset = folder / f"codex-orchestrator-{version}-cp311-manylinux_2_17_x86_64.pyz"
    asset.write_bytes(b"pyz")
    _release.write_sums(folder, [asset])
    (folder / _release.NOTES).write_text("notes\n")
    return folder


def test_publish_plan_is_draft_first_and_never_clobbers(tmp_path: Path) -> None:
    folder = _release_folder(tmp_path)
    stable = _release.publish_plan(_release.Tag("v1.0.0", "1.0.0", False), folder)
    assert [step[:2] for step in stable] == [
        ["release", "create"],
        ["release", "upload"],
        ["release", "edit"],
    ]
    assert "--draft" in stable[0] and "--latest" in stable[0] and "--prerelease" not in stable[0]
    assert stable[1][-1].endswith("SHA256SUMS")
    assert all("--clobber" not in step for step in stable)
    pre = _release.publish_plan(_release.Tag("v1.0.0rc1", "1.0.0rc1", True), folder)
    assert "--prerelease" in pre[0] and "--latest" not in pre[0]


def _fake_gh(tmp_path: Path, view_exit: int) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "gh.log"
    script = bindir / "gh"
    script.write_text(
        f'#!/bin/sh\necho "$*" >> {log}\nif [ "$1 $2" = "release view" ]; then exit {view_exit}; fi\nexit 0\n'
    )
    script.chmod(0o755)
    return log


def test_publish_refuses_an_existing_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = _fake_gh(tmp_path, view_exit=0)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(BuildError, match="already exists"):
        _release.publish(_release.Tag("v1.0.0", "1.0.0", False), _release_folder(tmp_path), dry_run=False)
    assert log.read_text().splitlines() == ["release view v1.0.0"]


def test_publish_creates_draft_uploads_then_publishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _fake_gh(tmp_path, view_exit=1)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    _release.publish(_release.Tag("v1.0.0", "1.0.0", False), _release_folder(tmp_path), dry_run=False)
    calls = [line.split()[:2] for line in log.read_text().splitlines()]
    assert calls == [["release", "view"], ["release", "create"], ["release", "upload"], ["release", "edit"]]


def test_publish_refuses_a_folder_with_bad_sums(tmp_path: Path) -> None:
    folder = _release_folder(tmp_path)
    next(folder.glob("*.pyz")).write_bytes(b"changed")
    with pytest.raises(BuildError, match="not a finished release folder"):
        _release.publish(_release.Tag("v1.0.0", "1.0.0", False), folder, dry_run=True)


# ----------------------------------------------------------------------------------------- dry run


@pytest.mark.slow
def test_dry_run_produces_assets_sums_and_notes(tmp_path: Path) -> None:
    require_wheelhouse()
    version = _release.lib.project_version(REPO)
    host = _release.Target.host()
    dist = tmp_path / "dist"
    env = {**os.environ, "CODEX_ORCHESTRATOR_BUILD_CACHE": str(CACHE), "SOURCE_DATE_EPOCH": SDE}
    env.pop("GITHUB_REPOSITORY", None)
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "release" / "release"),
            "--dry-run",
            f"v{version}",
            "--target",
            f"{host.python}:{host.platform}",
            "--offline",
            "--worktree",
            "--dist",
            str(dist),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    asset = host.asset_name(version)
    assert sorted(p.name for p in dist.iterdir()) == sorted([asset, "SHA256SUMS", "RELEASE_NOTES.md"])
    assert _release.check_sums(dist) == []
    assert "identical SHA-256" in proc.stdout
    assert "would run: gh release create" in proc.stdout
    notes = (dist / "RELEASE_NOTES.md").read_text()
    assert asset in notes and "sha256sum --check --ignore-missing SHA256SUMS" in notes
