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
import _bytecode
import _pyzlib as lib
import _smoke
import _tools as tk
from _pyzlib import BuildError, Target

BYTECODE_MODES = ("require", "auto", "none")


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


def find_compiler(target: Target, mode: str) -> str | None:
    """The CPython that compiles the byte code: the target's own minor (pyc are per minor, not per OS), on
    this machine's own C library first (a musl CPython named for smoke tests is not the builder's)."""
    if mode == "none":
        return None
    python = _smoke.find_python(target.python, lib.host_libc()) or _smoke.find_python(target.python)
    if python is None and mode == "require":
        raise BuildError(
            f"no CPython {target.python} on this machine to compile the archive's byte code with",
            hint=f"install CPython {target.python} (or set CODEX_ORCHESTRATOR_PYTHON{target.pytag[2:]}); "
            "--bytecode none builds without byte code (every run then compiles what it imports)",
        )
    if python is not None:
        magic = tk.run(
            [
                python,
                "-S",
                "-I",
                "-c",
                "import importlib.util, sys; sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())",
            ],
            what=f"asking CPython {target.python} for its byte-code magic number",
        ).stdout.strip()
        want = _bytecode.magic_bytes(target.python)
        if want is None or magic != want.hex():
            raise BuildError(
                f"CPython {target.python} ({python}) writes byte code with magic {magic}, "
                f"build/_bytecode.py expects {want.hex() if want else 'none'}",
                hint="update MAGIC in build/_bytecode.py",
                exit_code=lib.EXIT_FAILED,
            )
    return python


def _compile_env() -> dict[str, str]:
    env = tk.pip_environment()
    env["PYTHONHASHSEED"] = "0"  # set and frozenset constants are marshalled in hash order
    return env


def compile_site(python: str, site: Path, prefix: str) -> tuple[list[str], list[str]]:
    """Hash-based X.pyc beside every X.py (compiled by `python`), recorded in the RECORD files."""
    out = tk.run(
        [python, "-S", "-I", "-B", str(lib.BUILD_DIR / "_bytecode.py"), "tree", str(site), prefix],
        what="compiling the byte code",
        env=_compile_env(),
    ).stdout
    compiled = [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("compiled ")]
    skipped = [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("skipped ")]
    arc.add_bytecode_to_records(site, compiled)
    return compiled, skipped


def render_outputs(python: str, site: Path) -> dict[str, str]:
    """What the CLI prints for `--version` and `--help` (at click's widest layout), for the launcher."""
    outputs: dict[str, str] = {}
    module, attribute = lib.ENTRY_POINT.split(":")
    code = (
        f"import sys; sys.path.insert(0, sys.argv[1]); from {module} import {attribute} as m; m(sys.argv[2:])"
    )
    env = {**tk.pip_environment(), "COLUMNS": "80", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    for key, arg in (("out_version", "--version"), ("out_help", "--help")):
        proc = tk.run(
            [python, "-S", "-I", "-B", "-c", code, str(site), arg], what=f"rendering `{arg}`", env=env
        )
        if proc.stdout.isascii() and proc.stdout and not proc.stderr:
            outputs[key] = proc.stdout
    return outputs


def finalise(
    raw: Path,
    final: Path,
    target: Target,
    version: str,
    extra: dict[str, str],
    native: dict[str, list[str]],
    compiler: str | None,
    work: Path,
    site: Path,
) -> None:
    """Swap in our launcher (+ its pyc), add the byte code (shiv skips every .pyc), normalise modes, and
    move every library but HOT_PACKAGES into the stored member libs.zip."""
    add: list[tuple[zipfile.ZipInfo, bytes]] = []
    libs: list[tuple[zipfile.ZipInfo, bytes]] = []
    with zipfile.ZipFile(raw) as zf:
        env = json.loads(zf.read("environment.json"))
        like = zf.getinfo("__main__.py")
        for info in zf.infolist():
            if arc.in_libs(info.filename):
                libs.append((arc.entry_like(info, info.filename), zf.read(info)))
    for rel in arc.namespace_dirs(site):  # zipimport finds a namespace package only by its directory entry
        add.append((arc.entry_like(like, f"site-packages/{rel}/", 0o40755), b""))
    for path in arc.iter_files(site):
        if path.suffix == ".pyc" and path.with_suffix(".py").is_file() and path.parent.name != "__pycache__":
            add.append(
                (
                    arc.entry_like(like, f"site-packages/{path.relative_to(site).as_posix()}"),
                    path.read_bytes(),
                )
            )
    libs += [item for item in add if arc.in_libs(item[0].filename)]
    add = [item for item in add if not arc.in_libs(item[0].filename)]
    for info, _ in add:
        if arc.read_on_every_start(info.filename):
            info.compress_type = zipfile.ZIP_STORED
    misplaced = sorted(m for members in native.values() for m in members if not arc.in_libs(m))
    if misplaced:
        raise BuildError(
            f"compiled code outside {lib.LIBS_MEMBER}: {', '.join(misplaced)}; the launcher extracts native "
            f"code from {lib.LIBS_MEMBER} only, so keep such packages out of HOT_PACKAGES",
            exit_code=lib.EXIT_FAILED,
        )
    libs_zip = arc.zip_bytes(libs)
    versions = site / arc.MCP_VERSIONS.removeprefix(arc.SITE)
    libs_names = [info.filename for info, _ in libs]
    hot_dists = [
        d for d in sorted(p.name for p in site.glob("*.dist-info")) if not arc.in_libs(f"site-packages/{d}/")
    ]
    fields = {
        **target.launcher_fields(),
        **arc.libc_fields(target.libc, (p.read_bytes() for p in arc.iter_files(site))),  # as the audit reads
        **extra,
        "version": version,
        "build_id": str(env["build_id"]),
        "asset": final.name,
        "entry_point": lib.ENTRY_POINT,
        "dists": ",".join(hot_dists),
        "libs": ",".join(arc.top_level_names(libs_names)),
        "libs_dists": ",".join(arc.dist_folders(libs_names)),
        "libs_size": str(len(libs_zip)),
        "mcp_handshake": arc.mcp_handshake_versions(versions.read_bytes() if versions.is_file() else None),
        "bytecode": f"cpython-{target.pytag[2:]}" if compiler else "none",
    }
    launcher = arc.render_launcher(fields, native)
    if compiler is not None:
        src, dst = work / "__main__.py", work / "__main__.pyc"
        src.write_bytes(launcher)
        tk.run(
            [
                compiler,
                "-S",
                "-I",
                "-B",
                str(lib.BUILD_DIR / "_bytecode.py"),
                "file",
                str(src),
                str(dst),
                f"{final.name}/__main__.py",
            ],
            what="compiling the launcher",
            env=_compile_env(),
        )
        launcher_pyc = arc.entry_like(like, "__main__.pyc")
        launcher_pyc.compress_type = zipfile.ZIP_STORED  # read on every start: no zlib for --version
        add.append((launcher_pyc, dst.read_bytes()))
    stored = arc.entry_like(like, lib.LIBS_MEMBER)
    stored.compress_type = zipfile.ZIP_STORED  # read by offset, never inflated: its entries are compressed
    add.append((stored, libs_zip))

    def transform(info: zipfile.ZipInfo, data: bytes) -> tuple[zipfile.ZipInfo, bytes] | None:
        if arc.in_libs(info.filename):
            return None
        info.external_attr = 0o100644 << 16
        if info.filename == "__main__.py":
            return info, launcher
        if arc.read_on_every_start(info.filename):
            info.compress_type = zipfile.ZIP_STORED
        return info, data

    arc.rewrite_archive(raw, final, transform=transform, add=add, canonical_order=True)


def build(
    target: Target,
    *,
    source: Path = lib.REPO_ROOT,
    out_dir: Path | None = None,
    wheelhouse: Path | None = None,
    offline: bool = False,
    quiet: bool = False,
    bytecode: str = "require",
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
        if bytecode not in BYTECODE_MODES:
            raise BuildError(
                f"unknown bytecode mode {bytecode!r}", hint=f"use one of {BYTECODE_MODES}", exit_code=2
            )
        compiler = find_compiler(target, bytecode)
        tools = tk.ensure_tools(wheelhouse, offline)
        with tempfile.TemporaryDirectory(prefix="codex-orchestrator-pyz-") as tmp:
            work = Path(tmp)
            wheel = build_wheel(tools, source, work / "wheel", sde)
            site = install_site_packages(tools, target, wheel, wheelhouse, offline, work)
            final = out_dir / target.asset_name(version)
            if compiler is None:
                _log(quiet, f"no byte code: CPython {target.python} compiles what it imports at every run")
            else:
                compiled, skipped = compile_site(compiler, site, f"{final.name}/site-packages")
                _log(quiet, f"byte code: {len(compiled)} modules compiled by {compiler}")
                for rel in skipped:
                    _log(quiet, f"warning: {rel} does not compile with CPython {target.python}; no pyc")
            names = [p.relative_to(site).as_posix() for p in arc.iter_files(site)]
            native = arc.native_table(names, target.extension_suffixes())
            outputs = render_outputs(compiler or sys.executable, site)
            raw = work / "raw.pyz"
            run_shiv(tools, site, raw, target, sde)
            out_dir.mkdir(parents=True, exist_ok=True)
            finalise(raw, final, target, version, outputs, native, compiler, work, site)
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
        "--python", default=None, help="target CPython minor: 3.11, 3.12, 3.13 or 3.14 (default: this one)"
    )
    p.add_argument(
        "--platform",
        default=None,
        help="target platform tag: manylinux_2_17_{x86_64,aarch64}, musllinux_1_2_{x86_64,aarch64}, "
        "macosx_11_0_arm64 or macosx_10_15_x86_64 (default: this machine)",
    )
    p.add_argument(
        "--bytecode",
        choices=BYTECODE_MODES,
        default="require",
        help="compile hash-based .pyc with the target CPython: require it (default), use it when found "
        "(auto), or ship none",
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
            bytecode=args.bytecode,
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
