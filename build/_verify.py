"""build/verify PATH.pyz: audit the archive, then smoke-test it in a clean environment.

Exit 0 when everything passed, 1 when a check failed, 3 when the archive cannot be checked here
(missing file, no interpreter for its target and no --allow-skip-smoke).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import _archive as arc
import _audit
import _pyzlib as lib
import _smoke
from _pyzlib import BuildError


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="build/verify",
        description="Audit a codex-orchestrator .pyz (contents, RECORD hashes, locked distributions, size) "
        "and smoke-test it with `python3.X -S -I` in a clean environment.",
    )
    p.add_argument("archives", nargs="+", type=Path, metavar="PATH.pyz")
    p.add_argument("--audit-only", action="store_true", help="skip the smoke test")
    p.add_argument("--smoke-only", action="store_true", help="skip the audit")
    p.add_argument(
        "--version", dest="expected_version", default=None, help="expected version (default: pyproject)"
    )
    p.add_argument(
        "--budget-mb",
        type=float,
        default=lib.SIZE_BUDGET / 1e6,
        help=f"size budget in MB (default {lib.SIZE_BUDGET / 1e6:g})",
    )
    p.add_argument(
        "--source",
        type=Path,
        default=lib.REPO_ROOT,
        help="source tree whose schemas/ and templates/ must be bundled byte for byte (default: this repo)",
    )
    p.add_argument("--python", default=None, help="interpreter for the smoke test (default: found by minor)")
    p.add_argument(
        "--allow-skip-smoke",
        action="store_true",
        help="pass when this machine cannot run the target (another CPU, or that CPython is absent)",
    )
    p.add_argument(
        "--measure", type=int, default=0, metavar="N", help="also print start-up timings (N rounds)"
    )
    return p.parse_args(argv)


def _check_sidecar(pyz: Path) -> str | None:
    sidecar = pyz.with_name(pyz.name + ".sha256")
    if not sidecar.is_file():
        return None
    want = sidecar.read_text(encoding="utf-8").split()
    have = arc.sha256_file(pyz)
    if not want or want[0] != have:
        return f"{sidecar.name} says {want[0] if want else '(empty)'}, the file hashes to {have}"
    return None


def verify_one(pyz: Path, args: argparse.Namespace) -> int:
    print(f"== {pyz}")
    if not pyz.is_file():
        raise BuildError(f"{pyz} does not exist", hint="build it first with build/pyz")
    version = args.expected_version or lib.project_version(args.source)
    failed = False
    sidecar = _check_sidecar(pyz)
    if sidecar:
        print(f"FAIL sha256 sidecar: {sidecar}")
        failed = True
    parsed = lib.parse_asset_name(pyz.name)
    if not args.smoke_only:
        report = _audit.audit(pyz, version=version, source=args.source, budget=int(args.budget_mb * 1e6))
        status = "ok" if report.ok else "FAIL"
        print(
            f"{status:4} audit: {report.entries} entries, {len(report.distributions)} distributions, "
            f"{report.size / 1e6:.2f} MB (budget {args.budget_mb:g} MB)"
        )
        for finding in report.findings:
            print(f"     {finding}")
        failed |= not report.ok
        if parsed is None and report.target is not None:
            parsed = (version, report.target)
    if args.audit_only:
        return lib.EXIT_FAILED if failed else 0
    if parsed is None:
        print("FAIL smoke: cannot tell the target Python from the file name")
        return lib.EXIT_FAILED
    target = parsed[1]
    runnable = _smoke.host_can_run(target)
    python = args.python or (_smoke.find_python(target.python, target.libc) if runnable else None)
    if python is None:
        wanted = f"CPython {target.python}" + (f" on {target.libc}" if target.libc else "")
        reason = (
            f"this machine is not {target.os}-{target.machine}"
            if not runnable
            else f"no {wanted} found (set CODEX_ORCHESTRATOR_PYTHON{target.pytag[2:]})"
        )
        if args.allow_skip_smoke:
            print(f"SKIP smoke: {reason}")
            return lib.EXIT_FAILED if failed else 0
        raise BuildError(
            f"cannot smoke-test {pyz.name}: {reason}", hint="pass --allow-skip-smoke to audit only"
        )
    with tempfile.TemporaryDirectory(prefix="codex-orchestrator-verify-") as tmp:
        report_s = _smoke.smoke(
            pyz, version, target, python=python, work=Path(tmp), log=lambda c: print(c, flush=True)
        )
        failed |= not report_s.ok
        if args.measure:
            print(_smoke.measure(pyz, python, args.measure, Path(tmp) / "measure").render())
    return lib.EXIT_FAILED if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.audit_only and args.smoke_only:
        print("build/verify: error: --audit-only and --smoke-only exclude each other", file=sys.stderr)
        return 2
    worst = 0
    try:
        for pyz in args.archives:
            worst = max(worst, verify_one(pyz, args))
    except BuildError as exc:
        return lib.report_error(exc, "build/verify")
    except KeyboardInterrupt:
        print("build/verify: interrupted", file=sys.stderr)
        return 130
    print("verify: PASSED" if worst == 0 else "verify: FAILED")
    return worst


if __name__ == "__main__":
    sys.exit(main())
