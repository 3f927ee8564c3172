"""build/pyz: build one reproducible codex-orchestrator .pyz for one target."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import _archive as arc
import _pyzlib as lib
import _tools as tk
from _pyzlib import BuildError, Target


@dataclass(frozen=True)
class BuildResult:
    path: Path
    sha256: str
    size: int
    version: str
    target: Target
    seconds: float


def _log(quiet: bool, message: str) -> None:
    if not quiet:
        print(f"build/pyz: {message}", file=sys.stderr, flush=True)


def build_wheel(tools: tk.Tools, source: Path, out: Path, sde: int) -> Path:
    env = tk.pip_environment()
    env["SOURCE_DATE_EPOCH"] = str(sde)
    tk.run(
        [tools.python, "-m", "hatchling", "build", "-t", "wheel", "-d", str(out)],
        what="building the wheel with hatchling",
        env=env,
        cwd=source,
    )
    wheels = sorted(out.glob("*.whl"))
    if len(wheels) != 1:
        raise BuildError(f"expected one wheel in {out}, found {len(wheels)}", exit_code=lib.EXIT_FAILED)
    return wheels[0]


def install_site_packages(
    tools: tk.Tools, target: Target, wheel: Path, wheelhouse: Path, offline: bool, work: Path
) -> Path:
    deps_req = work / "requirements-deps.txt"
    tk.write_target_requirements(target, deps_req)
    tk.fetch_runtime(tools, target, wheelhouse, offline, deps_req)
    full_req = work / "requirements-all.txt"
    own = f"{lib.DIST_NAME} @ {wheel.as_uri()} --hash=sha256:{arc.sha256_file(wheel)}"
    tk.write_target_requirements(target, full_req, [own])
    site = work / "site-packages"
    tk.run(
        tools.pip(
            "install",
            "--target",
            str(site),
            "--no-index",
            "--find-links",
            str(wheelhouse),
            "--require-hashes",
            "--no-compile",
            "--no-warn-script-location",
            *target.pip_target_args(),
            "-r",
            str(full_req),
        ),
        what=f"installing the locked dependencies for {target.pytag}-{target.platform}",
        env=tk.pip_environment(),
        hint="regenerate build/requirements.lock with build/lock if a dependency is missing from it",
    )
    arc.normalise_site_packages(site)
    return site


def run_shiv(tools: tk.Tools, site: Path, out: Path, target: Target, sde: int) -> None:
    env = tk.pip_environment()
    env["SOURCE_DATE_EPOCH"] = str(sde)
    tk.run(
        [
            tools.shiv,
            "--site-packages",
            str(site),
            "--reproducible",
            "--compressed",
            "-p",
            f"/usr/bin/env python{target.python}",
            "-c",
            lib.CONSOLE_SCRIPT,
            "-o",
            str(out),
        ],
        what="packing the archive with shiv",
        env=env,
    )


def finalise(raw: Path, final: Path, target: Target, version: str) -> None:
    """Swap in our launcher and normalise every entry's mode (shiv copies the tools venv's modes)."""
    with zipfile.ZipFile(raw) as zf:
        env = json.loads(zf.read("environment.json"))
    fields = {
        **target.launcher_fields(),
        "version": version,
        "build_id": str(env["build_id"]),
        "asset": final.name,
    }
    launcher = arc.render_launcher(fields)

    def transform(info: zipfile.ZipInfo, data: bytes) -> tuple[zipfile.ZipInfo, bytes]:
        info.external_attr = 0o100644 << 16
        if info.filename == "__main__.py":
            return info, launcher
        return info, data

    arc.rewrite_archive(raw, final, transform=transform, canonical_order=True)


def build(
    target: Target,
    *,
    source: Path = lib.REPO_ROOT,
    out_dir: Path | None = None,
    wheelhouse: Path | None = None,
    offline: bool = False,
    quiet: bool = False,
) -> BuildResult:
    """Build dist/codex-orchestrator-<version>-<pytag>-<platform>.pyz (+ .sha256) reproducibly."""
    started = time.monotonic()
    old_umask = os.umask(0o022)
    try:
        source = source.resolve()
        version = lib.project_version(source)
        sde = lib.source_date_epoch(source)
        out_dir = (out_dir or source / "dist").absolute()
        wheelhouse = (wheelhouse or tk.default_wheelhouse()).absolute()
        _log(quiet, f"{target.pytag}-{target.platform}, version {version}, SOURCE_DATE_EPOCH={sde}")
        tools = tk.ensure_tools(wheelhouse, offline)
        with tempfile.TemporaryDirectory(prefix="codex-orchestrator-pyz-") as tmp:
            work = Path(tmp)
            wheel = build_wheel(tools, source, work / "wheel", sde)
            site = install_site_packages(tools, target, wheel, wheelhouse, offline, work)
            raw = work / "raw.pyz"
            run_shiv(tools, site, raw, target, sde)
            out_dir.mkdir(parents=True, exist_ok=True)
            final = out_dir / target.asset_name(version)
            finalise(raw, final, target, version)
        digest = arc.sha256_file(final)
        sidecar = final.with_name(final.name + ".sha256")
        sidecar.write_text(f"{digest}  {final.name}\n", encoding="utf-8")
        os.chmod(sidecar, 0o644)
        size = final.stat().st_size
        return BuildResult(final, digest, size, version, target, time.monotonic() - started)
    finally:
        os.umask(old_umask)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="build/pyz",
        description="Build dist/codex-orchestrator-<version>-<pytag>-<platform>.pyz (+ .sha256) reproducibly "
        "from build/requirements.lock.",
    )
    p.add_argument(
        "--python", default=None, help="target CPython minor: 3.11, 3.12 or 3.13 (default: this one)"
    )
    p.add_argument(
        "--platform",
        default=None,
        help="target platform tag: manylinux_2_17_x86_64 or manylinux_2_17_aarch64 (default: this machine)",
    )
    p.add_argument("--out", type=Path, default=None, help="output folder (default: dist/ in the source tree)")
    p.add_argument(
        "--wheelhouse",
        type=Path,
        default=None,
        help=f"wheel cache (default: {tk.default_wheelhouse()}; $CODEX_ORCHESTRATOR_BUILD_CACHE moves it)",
    )
    p.add_argument(
        "--offline", action="store_true", help="never download; fail if the wheelhouse lacks a wheel"
    )
    p.add_argument(
        "--fetch-only",
        action="store_true",
        help="only fill the wheelhouse (build tools + this target's wheels) and exit",
    )
    p.add_argument("--source", type=Path, default=lib.REPO_ROOT, help=argparse.SUPPRESS)
    p.add_argument("--quiet", action="store_true", help="print only the result line")
    return p.parse_args(argv)


def fetch_only(target: Target, wheelhouse: Path | None) -> Path:
    wh = (wheelhouse or tk.default_wheelhouse()).absolute()
    tools = tk.ensure_tools(wh, offline=False)
    with tempfile.TemporaryDirectory(prefix="codex-orchestrator-fetch-") as tmp:
        req = Path(tmp) / "requirements.txt"
        tk.write_target_requirements(target, req)
        tk.fetch_runtime(tools, target, wh, False, req)
    return wh


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.platform:
            target = Target.parse(
                args.python or f"{sys.version_info[0]}.{sys.version_info[1]}", args.platform
            )
        else:
            target = Target.host(args.python)
        if args.fetch_only:
            wh = fetch_only(target, args.wheelhouse)
            print(f"wheelhouse ready for {target.pytag}-{target.platform}: {wh}")
            return 0
        result = build(
            target,
            source=args.source,
            out_dir=args.out,
            wheelhouse=args.wheelhouse,
            offline=args.offline,
            quiet=args.quiet,
        )
    except BuildError as exc:
        return lib.report_error(exc, "build/pyz")
    except KeyboardInterrupt:
        print("build/pyz: interrupted", file=sys.stderr)
        return 130
    print(
        f"{result.path}  sha256={result.sha256}  size={result.size / 1e6:.2f} MB  ({result.seconds:.1f}s)",
    )
    if result.size > lib.SIZE_BUDGET:
        print(f"build/pyz: warning: over the {lib.SIZE_BUDGET / 1e6:.0f} MB budget", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
