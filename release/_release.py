"""release/release: tag checks, the asset matrix, SHA256SUMS, release notes, and the GitHub publication.

release/release --dry-run vX.Y.Z        everything but the publication: assets, SHA256SUMS, notes in dist/
release/release check-tag vX.Y.Z        validate a tag; prints version= and prerelease= (GitHub outputs)
release/release notes X.Y.Z             the changelog section of a version
release/release build vX.Y.Z            build + verify the matrix, rebuild one asset and compare
release/release publish vX.Y.Z          draft release, upload, publish (needs gh); never replaces

Longer than 400 lines because a release is one ordered procedure (tag checks, builds, verification,
sums, notes, upload plan) whose steps share its state.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

RELEASE_DIR = Path(__file__).resolve().parent
REPO_ROOT = RELEASE_DIR.parent
sys.path.insert(0, str(REPO_ROOT / "build"))

import _archive as arc  # noqa: E402
import _audit  # noqa: E402
import _build  # noqa: E402
import _pyzlib as lib  # noqa: E402
import _smoke  # noqa: E402
from _pyzlib import BuildError, Target  # noqa: E402

CHANGELOG = REPO_ROOT / "CHANGELOG.md"
SUMS = "SHA256SUMS"
NOTES = "RELEASE_NOTES.md"
DEFAULT_TARGETS = tuple(
    Target(py, platform) for platform in lib.DEFAULT_PLATFORMS for py in lib.SUPPORTED_PYTHONS
)
_N = r"(?:0|[1-9]\d*)"
CANONICAL = re.compile(rf"^{_N}(?:\.{_N})*(?:(?:a|b|rc){_N})?(?:\.post{_N})?(?:\.dev{_N})?$")
PRERELEASE = re.compile(r"(a|b|rc)\d+|\.dev\d+")


# --------------------------------------------------------------------------------------------- tags


@dataclass(frozen=True)
class Tag:
    name: str
    version: str
    prerelease: bool


def _normalised(text: str) -> str | None:
    try:
        from packaging.version import InvalidVersion, Version
    except ImportError:
        try:
            from pip._vendor.packaging.version import InvalidVersion, Version  # type: ignore[assignment]
        except ImportError:
            return None
    try:
        return str(Version(text))
    except InvalidVersion:
        return None


def check_tag(tag: str, package_version: str) -> Tag:
    """A release tag is `v` + the canonical PEP 440 version, equal to the package version."""
    if not tag.startswith("v"):
        raise BuildError(f"tag {tag!r} does not start with 'v'", hint=f"tag releases as v{package_version}")
    version = tag[1:]
    if not CANONICAL.match(version):
        canonical = _normalised(version)
        hint = (
            f"use v{canonical}" if canonical and CANONICAL.match(canonical) else "use vX.Y.Z, vX.Y.ZrcN, ..."
        )
        raise BuildError(
            f"tag {tag!r} is not a canonical PEP 440 version", hint=hint, exit_code=lib.EXIT_FAILED
        )
    if version != package_version:
        raise BuildError(
            f"tag {tag} does not match the package version {package_version} in pyproject.toml",
            hint=f"bump [project] version to {version} (and CHANGELOG.md) before tagging, "
            f"or tag v{package_version}",
            exit_code=lib.EXIT_FAILED,
        )
    return Tag(tag, version, bool(PRERELEASE.search(version)))


# ---------------------------------------------------------------------------------------- changelog


def release_notes(version: str, changelog: Path = CHANGELOG) -> str:
    """The body of `## [version]` in the changelog (Keep a Changelog format)."""
    try:
        text = changelog.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BuildError(
            f"{changelog} is missing", hint="add a CHANGELOG.md with a section per version"
        ) from None
    heading = re.compile(rf"^## \[?v?{re.escape(version)}\]?(?:\s.*)?$", re.MULTILINE)
    m = heading.search(text)
    if not m:
        raise BuildError(
            f"{changelog.name} has no section for {version}",
            hint=f"add '## [{version}] - YYYY-MM-DD' with the changes",
            exit_code=lib.EXIT_FAILED,
        )
    rest = text[m.end() :]
    nxt = re.search(r"^## ", rest, re.MULTILINE)
    body = (rest[: nxt.start()] if nxt else rest).strip()
    body = re.sub(r"^\[[^\]]+\]: \S+\s*$", "", body, flags=re.MULTILINE).strip()
    if not body:
        raise BuildError(f"the {version} section of {changelog.name} is empty", exit_code=lib.EXIT_FAILED)
    return body


def notes_document(tag: Tag, body: str, assets: Sequence[str]) -> str:
    listing = "\n".join(f"- `{a}`" for a in assets)
    return (
        f"{body}\n\n## Assets\n\n{listing}\n\n"
        "Pick the asset for your CPython minor, OS and CPU (`manylinux_2_17_x86_64`/`_aarch64`: Linux with "
        "glibc 2.17+; `musllinux_1_2_x86_64`/`_aarch64`: Linux with musl 1.2.4+, e.g. Alpine 3.18+; "
        "`macosx_11_0_arm64`: Apple silicon; `macosx_10_15_x86_64`: Intel Mac); run it with "
        "that Python (`python3.12 codex-orchestrator-...-cp312-....pyz --version`). Windows: not yet "
        "(use WSL).\n\n"
        "## Verify\n\n```sh\n"
        "sha256sum --check --ignore-missing SHA256SUMS\n"
        "gh attestation verify FILE.pyz --repo OWNER/REPO\n"
        "```\n"
    ).replace("OWNER/REPO", os.environ.get("GITHUB_REPOSITORY", "OWNER/REPO"))


def write_sums(folder: Path, assets: Sequence[Path]) -> Path:
    lines = [f"{arc.sha256_file(p)}  {p.name}\n" for p in sorted(assets, key=lambda p: p.name)]
    path = folder / SUMS
    path.write_text("".join(lines), encoding="utf-8")
    return path


def check_sums(folder: Path) -> list[str]:
    """Problems with folder/SHA256SUMS against the files beside it (empty when all match)."""
    problems: list[str] = []
    sums = folder / SUMS
    if not sums.is_file():
        return [f"{sums} is missing"]
    for line in sums.read_text(encoding="utf-8").splitlines():
        digest, _, name = line.partition("  ")
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} is listed but missing")
        elif arc.sha256_file(path) != digest:
            problems.append(f"{name} does not match its SHA-256")
    return problems


# ------------------------------------------------------------------------------------------- build


def parse_target(text: str) -> Target:
    python, _, platform = text.partition(":")
    return Target.parse(python, platform or Target.host().platform)


SNAPSHOT_ITEMS = (*lib.SOURCE_ITEMS, "CHANGELOG.md")  # the release notes come from the changelog


def export_source(repo: Path, dest: Path, worktree: bool = False) -> Path:
    """The committed tree of HEAD (what the tag points at), or a copy of the working tree.

    Releasing from an export keeps uncommitted edits out and gives every build of the run the same input.
    """
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", "-q", "HEAD"], capture_output=True
    )
    dest.mkdir(parents=True)
    if head.returncode == 0 and not worktree:
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", "--format=tar", "HEAD"], capture_output=True
        )
        if archive.returncode != 0:
            raise BuildError(f"git archive failed: {archive.stderr.decode(errors='replace').strip()}")
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain"], capture_output=True, text=True
        )
        if dirty.stdout.strip():
            print("note: building the committed HEAD; uncommitted changes are not part of the release")
        return dest
    print("note: building a snapshot of the working tree" + ("" if worktree else " (no commit yet)"))
    return lib.copy_source_tree(repo, dest, SNAPSHOT_ITEMS)


def build_release(
    tag: Tag,
    targets: Sequence[Target],
    out: Path,
    *,
    wheelhouse: Path | None,
    offline: bool,
    repo: Path = REPO_ROOT,
    worktree: bool = False,
    bytecode: str = "require",
) -> list[Path]:
    """Build and verify every asset, rebuild the first elsewhere and compare, write SHA256SUMS and notes."""
    if not os.environ.get("SOURCE_DATE_EPOCH"):
        os.environ["SOURCE_DATE_EPOCH"] = str(lib.source_date_epoch(repo))
    with tempfile.TemporaryDirectory(prefix="codex-orchestrator-source-") as tmp:
        source = export_source(repo, Path(tmp) / "source", worktree)
        return _build_release(
            tag, targets, out, wheelhouse=wheelhouse, offline=offline, source=source, bytecode=bytecode
        )


def _build_release(
    tag: Tag,
    targets: Sequence[Target],
    out: Path,
    *,
    wheelhouse: Path | None,
    offline: bool,
    source: Path,
    bytecode: str = "require",
) -> list[Path]:
    if lib.project_version(source) != tag.version:
        raise BuildError(
            f"the committed pyproject.toml says {lib.project_version(source)}, the tag {tag.name}",
            hint="commit the version bump before tagging",
            exit_code=lib.EXIT_FAILED,
        )
    body = release_notes(tag.version, source / "CHANGELOG.md")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    assets: list[Path] = []
    for target in targets:
        result = _build.build(
            target,
            source=source,
            out_dir=out,
            wheelhouse=wheelhouse,
            offline=offline,
            quiet=True,
            bytecode=bytecode,
        )
        result.path.with_name(result.path.name + ".sha256").unlink()
        print(f"built    {result.path.name}  {result.sha256}  {result.size / 1e6:.2f} MB")
        assets.append(result.path)
    for asset in assets:
        verify_asset(asset, tag.version, source)
    reproduce(targets[0], assets[0], source, wheelhouse, offline, bytecode)
    write_sums(out, assets)
    (out / NOTES).write_text(notes_document(tag, body, [a.name for a in assets]), encoding="utf-8")
    print(f"wrote    {out / SUMS} and {out / NOTES}")
    return assets


def verify_asset(asset: Path, version: str, source: Path) -> None:
    report = _audit.audit(asset, version=version, source=source)
    if not report.ok:
        raise BuildError(
            f"audit failed for {asset.name}:\n" + "\n".join(f"  {f}" for f in report.findings),
            exit_code=lib.EXIT_FAILED,
        )
    target = report.target
    assert target is not None
    python = _smoke.find_python(target.python, target.libc) if _smoke.host_can_run(target) else None
    if python is None:
        print(f"audited  {asset.name}  (smoke skipped: cannot run {target.pytag}-{target.platform} here)")
        return
    with tempfile.TemporaryDirectory(prefix="codex-orchestrator-release-") as tmp:
        smoke = _smoke.smoke(asset, version, target, python=python, work=Path(tmp), log=lambda c: None)
    failed = [str(c) for c in smoke.checks if not c.ok]
    if failed:
        raise BuildError(
            f"smoke test failed for {asset.name}:\n  " + "\n  ".join(failed), exit_code=lib.EXIT_FAILED
        )
    print(f"verified {asset.name}  (audit + {len(smoke.checks)} smoke checks with {python})")


def reproduce(
    target: Target,
    asset: Path,
    source: Path,
    wheelhouse: Path | None,
    offline: bool,
    bytecode: str = "require",
) -> None:
    """The reproducibility gate: the same commit built again in another folder gives the same bytes."""
    with tempfile.TemporaryDirectory(prefix="codex-orchestrator-rebuild-") as tmp:
        again = _build.build(
            target,
            source=source,
            out_dir=Path(tmp),
            wheelhouse=wheelhouse,
            offline=offline,
            quiet=True,
            bytecode=bytecode,
        )
        want = arc.sha256_file(asset)
        if again.sha256 != want:
            raise BuildError(
                f"rebuilding {asset.name} gave {again.sha256}, not {want}: the build is not reproducible",
                exit_code=lib.EXIT_FAILED,
            )
    print(f"rebuilt  {asset.name}  identical SHA-256")


# ----------------------------------------------------------------------------------------- publish


def _gh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(["gh", *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise BuildError(
            "the GitHub CLI (gh) is not installed", hint="install gh, or publish by hand"
        ) from None
    if check and proc.returncode != 0:
        raise BuildError(f"gh {' '.join(args[:2])} failed: {proc.stderr.strip()}", exit_code=lib.EXIT_FAILED)
    return proc


def publish_plan(tag: Tag, folder: Path) -> list[list[str]]:
    assets = [*sorted(str(p) for p in folder.glob("*.pyz")), str(folder / SUMS)]
    create = [
        "release",
        "create",
        tag.name,
        "--draft",
        "--verify-tag",
        "--title",
        f"codex-orchestrator {tag.version}",
    ]
    create += ["--notes-file", str(folder / NOTES)] + (["--prerelease"] if tag.prerelease else ["--latest"])
    return [create, ["release", "upload", tag.name, *assets], ["release", "edit", tag.name, "--draft=false"]]


def publish(tag: Tag, folder: Path, dry_run: bool) -> None:
    problems = check_sums(folder)
    if problems or not list(folder.glob("*.pyz")):
        raise BuildError(f"{folder} is not a finished release folder: {'; '.join(problems) or 'no assets'}")
    plan = publish_plan(tag, folder)
    if dry_run:
        for step in plan:
            print("would run: gh " + " ".join(step))
        return
    if _gh("release", "view", tag.name, check=False).returncode == 0:
        raise BuildError(
            f"a release for {tag.name} already exists; releases and their assets are never replaced",
            hint="publish a new version instead (bump the version, tag again)",
            exit_code=lib.EXIT_FAILED,
        )
    for step in plan:  # upload has no --clobber: an existing asset name fails the run
        _gh(*step)
        print("ran: gh " + " ".join(step[:3]))


# -------------------------------------------------------------------------------------------- CLI


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="release/release", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--dry-run", metavar="TAG", help="build, verify and write dist/release-<version>/; publish nothing"
    )
    sub = p.add_subparsers(dest="command")
    c = sub.add_parser("check-tag", help="validate a tag against pyproject.toml")
    c.add_argument("tag")
    n = sub.add_parser("notes", help="print the changelog section of a version")
    n.add_argument("version")
    for name in ("build", "publish"):
        s = sub.add_parser(name)
        s.add_argument("tag")
        s.add_argument(
            "--dist", type=Path, default=None, help="release folder (default: dist/release-<version>)"
        )
        if name == "build":
            _build_options(s)
        else:
            s.add_argument(
                "--dry-run", dest="publish_dry_run", action="store_true", help="print the gh commands"
            )
    _build_options(p)
    p.add_argument("--dist", type=Path, default=None, help="release folder (default: dist/release-<version>)")
    return p.parse_args(argv)


def _build_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--target",
        dest="targets",
        action="append",
        type=parse_target,
        metavar="PY:PLATFORM",
        help="e.g. 3.12:manylinux_2_17_aarch64 (repeatable; default: CPython 3.11-3.14 x Linux glibc and "
        "musl x86_64/aarch64 and macOS arm64/x86_64)",
    )
    p.add_argument(
        "--bytecode",
        choices=_build.BYTECODE_MODES,
        default="require",
        help="byte code from each target's CPython: require it (default; a release ships it), auto, none",
    )
    p.add_argument("--wheelhouse", type=Path, default=None, help="wheel cache (see build/pyz)")
    p.add_argument("--offline", action="store_true", help="never download wheels")
    p.add_argument(
        "--worktree",
        action="store_true",
        help="build the working tree as it is (default: the committed HEAD); for trying releases locally",
    )


def _github_output(**values: str) -> None:
    target = os.environ.get("GITHUB_OUTPUT")
    if target:
        with open(target, "a", encoding="utf-8") as fh:
            fh.writelines(f"{k}={v}\n" for k, v in values.items())


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        version = lib.project_version(REPO_ROOT)
        if args.dry_run or args.command == "build":
            tag = check_tag(args.dry_run or args.tag, version)
            folder = getattr(args, "dist", None) or REPO_ROOT / "dist" / f"release-{tag.version}"
            build_release(
                tag,
                args.targets or DEFAULT_TARGETS,
                folder,
                wheelhouse=args.wheelhouse,
                offline=args.offline,
                worktree=args.worktree,
                bytecode=args.bytecode,
            )
            if args.dry_run:
                publish(tag, folder, dry_run=True)
            print(f"{'dry run' if args.dry_run else 'build'} complete: {folder}")
        elif args.command == "check-tag":
            tag = check_tag(args.tag, version)
            print(f"version={tag.version}\nprerelease={str(tag.prerelease).lower()}")
            _github_output(version=tag.version, prerelease=str(tag.prerelease).lower())
        elif args.command == "notes":
            print(release_notes(args.version))
        elif args.command == "publish":
            tag = check_tag(args.tag, version)
            publish(
                tag, args.dist or REPO_ROOT / "dist" / f"release-{tag.version}", dry_run=args.publish_dry_run
            )
        else:
            print("release/release: nothing to do; see --help", file=sys.stderr)
            return 2
    except BuildError as exc:
        return lib.report_error(exc, "release/release")
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
