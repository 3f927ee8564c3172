"""doctor and self-check: JSON shapes, fake codex on PATH, registrations, simulated broken assets."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clikit import FakeCodex, invoke, write_script

from codex_orchestrator import resources, runtime
from codex_orchestrator.checks import doctor

# ----------------------------------------------------------------------------------------- doctor


def run_doctor(repo: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    result = invoke("doctor", "--repo", str(repo), "--format", "json", *extra)
    assert result.stderr == ""
    return result.exit_code, json.loads(result.stdout)


def by_id(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in report["checks"]}


@pytest.fixture
def no_codex(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """PATH without any codex (the real one, if installed, must not leak into the tests)."""
    keep = [p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "codex").exists()]
    monkeypatch.setenv("PATH", os.pathsep.join(keep))


def test_doctor_json_shape(tmp_path: Path, codex_home: Path, no_codex: None) -> None:
    code, report = run_doctor(tmp_path)
    assert code == 0
    assert set(report) == {
        "status",
        "strict",
        "repo",
        "repo_note",
        "counts",
        "failing",
        "checks",
        "exit_code",
    }
    ids = [c["id"] for c in report["checks"]]
    assert ids[:12] == [
        "python",
        "artifact",
        "dependencies",
        "runs_root",
        "config",
        "project",
        "pipeline_tools",
        "project_dependencies",
        "git",
        "codex_cli",
        "sandbox",
        "codex_mcp",
    ]
    assert "optional:libcst" not in ids  # nothing uses libcst, so doctor does not report it missing
    for check in report["checks"]:
        assert set(check) == {"id", "title", "status", "required", "optional_dependency", "detail", "fix"}
        assert check["status"] in ("ok", "warning", "missing")
        assert (check["fix"] is None) == (check["status"] == "ok")
    checks = by_id(report)
    assert checks["python"]["status"] == "ok" and checks["python"]["required"] is True
    assert checks["runs_root"]["status"] == "ok" and str(tmp_path / ".runs") in checks["runs_root"]["detail"]
    assert checks["codex_cli"]["status"] == "missing"
    assert "npm install -g @openai/codex" in checks["codex_cli"]["fix"]
    assert checks["codex_mcp"]["status"] == "missing"
    assert checks["codex_mcp"]["fix"].startswith("codex mcp add orchestrator -- ")
    assert report["counts"]["missing"] >= 2 and report["failing"] == []


def test_doctor_text_prints_fixes(tmp_path: Path, codex_home: Path, no_codex: None) -> None:
    result = invoke("doctor", "--repo", str(tmp_path))
    assert result.exit_code == 0
    assert "missing  Codex CLI" in result.stdout
    assert "fix: install the Codex CLI (`npm install -g @openai/codex`)" in result.stdout
    assert result.stderr.startswith("doctor: ") and "no required check failed" in result.stderr


def test_doctor_finds_a_fake_codex_on_path(
    tmp_path: Path, codex_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = tmp_path / "bin"
    write_script(bindir / "codex", 'import sys\nprint("codex-cli 9.9.9")\n')
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    check = by_id(run_doctor(tmp_path)[1])["codex_cli"]
    assert check["status"] == "ok"
    assert check["detail"] == f"codex-cli 9.9.9 ({bindir / 'codex'}, from PATH)"


def test_doctor_uses_codex_cli_bin(tmp_path: Path, codex_home: Path, fake_codex: FakeCodex) -> None:
    script = fake_codex("")
    check = by_id(run_doctor(tmp_path)[1])["codex_cli"]
    assert check["status"] == "ok" and f"({script}, from CODEX_CLI_BIN)" in check["detail"]


def test_doctor_bad_codex_cli_bin(tmp_path: Path, codex_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_CLI_BIN", str(tmp_path / "no" / "codex"))
    check = by_id(run_doctor(tmp_path)[1])["codex_cli"]
    assert check["status"] == "missing" and "CODEX_CLI_BIN=" in check["detail"]


def test_doctor_never_hangs_on_codex_version(
    tmp_path: Path, codex_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = write_script(tmp_path / "bin" / "codex", "import time\ntime.sleep(60)\n")
    monkeypatch.setenv("CODEX_CLI_BIN", str(script))
    monkeypatch.setattr(doctor, "VERSION_TIMEOUT_SECONDS", 0.5)
    check = by_id(run_doctor(tmp_path)[1])["codex_cli"]
    assert check["status"] == "warning" and "did not answer --version within 0.5 s" in check["detail"]


def _register(codex_home: Path, name: str, command: str, args: list[str], extra: str = "") -> None:
    (codex_home / "config.toml").write_text(
        'model = "o3"\n\n'
        f"[mcp_servers.{name}]\ncommand = {json.dumps(command)}\nargs = {json.dumps(args)}\n{extra}"
    )


def test_doctor_detects_a_registration(tmp_path: Path, codex_home: Path) -> None:
    _register(
        codex_home, "orch", sys.executable, ["-m", "codex_orchestrator", "mcp", "serve", "--repo", "/r"]
    )
    check = by_id(run_doctor(tmp_path)[1])["codex_mcp"]
    assert check["status"] == "ok"
    assert check["detail"] == f"registered as [mcp_servers.orch] in {codex_home / 'config.toml'}, repo /r"
    unconfined = ["-m", "codex_orchestrator", "mcp", "serve", "--repo", "/r", "--sandbox", "none"]
    _register(codex_home, "orch", sys.executable, unconfined)
    check = by_id(run_doctor(tmp_path)[1])["codex_mcp"]
    assert (
        check["status"] == "warning"
        and "runs with --sandbox none: stages the agent starts" in check["detail"]
    )
    assert check["fix"].startswith("codex mcp remove orch; then: codex mcp add orchestrator -- ")
    assert check["fix"].endswith("--sandbox codex")


def test_doctor_reports_a_disabled_or_foreign_registration(tmp_path: Path, codex_home: Path) -> None:
    _register(codex_home, "orch", "codex-orchestrator", ["mcp", "serve"], "enabled = false\n")
    assert by_id(run_doctor(tmp_path)[1])["codex_mcp"]["status"] == "warning"
    _register(codex_home, "other", "npx", ["-y", "some-server"])
    check = by_id(run_doctor(tmp_path)[1])["codex_mcp"]
    assert check["status"] == "missing" and "no [mcp_servers.*]" in check["detail"]
    (codex_home / "config.toml").write_text("[mcp_servers.x\n")
    check = by_id(run_doctor(tmp_path)[1])["codex_mcp"]
    assert check["status"] == "warning" and "cannot parse" in check["detail"]


def test_doctor_reads_home_codex_by_default(tmp_path: Path) -> None:
    home = Path(os.environ["HOME"])  # a temp dir (tests/conftest.py)
    (home / ".codex").mkdir()
    _register(home / ".codex", "o", "codex-orchestrator", ["mcp", "serve", "--repo", "/x"])
    assert by_id(run_doctor(tmp_path)[1])["codex_mcp"]["status"] == "ok"


def test_doctor_fails_when_a_required_check_fails(tmp_path: Path, codex_home: Path) -> None:
    (tmp_path / "codex.orchestrator.json").write_text('{"pipelines": 3}')
    code, report = run_doctor(tmp_path)
    assert code == 1 and report["status"] == "failed" and report["failing"] == ["config"]
    config = by_id(report)["config"]
    assert config["status"] == "missing" and "$.pipelines: expected array" in config["detail"]
    text = invoke("doctor", "--repo", str(tmp_path))
    assert text.exit_code == 1 and "FAILED (required): config" in text.stderr


def test_doctor_strict_fails_on_warnings(tmp_path: Path, codex_home: Path, no_codex: None) -> None:
    assert run_doctor(tmp_path)[0] == 0
    code, report = run_doctor(tmp_path, "--strict")
    assert code == 1 and "codex_cli" in report["failing"] and report["strict"] is True
    assert not any(f.startswith("optional:") for f in report["failing"])


def test_doctor_flags_missing_pipeline_tools(tmp_path: Path, codex_home: Path) -> None:
    (tmp_path / "codex.orchestrator.json").write_text(
        json.dumps(
            {
                "pipelines": [{"id": "p", "stages": [{"id": "lint", "command": ["no-such-tool-xyz"]}]}],
                "default_pipeline": "p",
            }
        )
    )
    check = by_id(run_doctor(tmp_path)[1])["pipeline_tools"]
    assert check["status"] == "warning"
    assert check["detail"] == "stage 'lint' needs `no-such-tool-xyz`, not installed"
    assert check["fix"].startswith("install no-such-tool-xyz")


def test_doctor_optional_dependency_uses_find_spec_without_importing(
    tmp_path: Path, codex_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = doctor.OptionalDependency("json", "json-pkg", "testing")
    monkeypatch.setattr(
        doctor, "OPTIONAL_DEPENDENCIES", (fake, doctor.OptionalDependency("zz_nope", "zz-nope", "x"))
    )
    checks = by_id(run_doctor(tmp_path)[1])
    assert checks["optional:json"]["status"] == "ok"
    assert checks["optional:zz_nope"]["status"] == "missing"
    assert checks["optional:zz_nope"]["fix"].endswith("-m pip install zz-nope")


def test_doctor_missing_repo_is_a_required_failure(tmp_path: Path, codex_home: Path) -> None:
    code, report = run_doctor(tmp_path / "nope")
    assert code == 1 and "runs_root" in report["failing"]
    assert "does not exist" in by_id(report)["runs_root"]["detail"]


# ------------------------------------------------------------------------------------- self-check


@pytest.fixture
def assets_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private copy of the bundled assets that resources.py reads instead of the real ones."""
    copy = tmp_path / "assets"
    shutil.copytree(Path(str(resources.assets_root())), copy, symlinks=False)
    monkeypatch.setattr(resources, "assets_root", lambda: copy)
    yield copy


def test_self_check_json_shape() -> None:
    result = invoke("self-check", "--format", "json")
    assert result.exit_code == 0, result.stdout
    assert result.stderr == ""
    report = json.loads(result.stdout)
    assert report["status"] == "ok" and report["failed"] == []
    assert set(report) >= {"version", "python", "platform", "artifact", "build", "checks", "failed"}
    names = [c["name"] for c in report["checks"]]
    for expected in (
        "schema manifest.schema.json",
        "schema config.schema.json",
        "template AGENTS.md",
        "template codex.orchestrator.json",
        "template tasks/specs/0001-mini-spec.md",
        "sample manifest (built-in validator)",
        "sample manifest (jsonschema)",
    ):
        assert expected in names
    assert report["artifact"]["kind"] == "package" and report["artifact"]["sha256"] is None
    assert report["python"]["version"] == ".".join(map(str, sys.version_info[:3]))


def test_self_check_text() -> None:
    result = invoke("self-check")
    assert result.exit_code == 0
    assert result.stdout.startswith("codex-orchestrator ")
    assert "  ok      sample manifest (jsonschema)" in result.stdout
    assert "artifact  installed package at" in result.stdout
    assert result.stderr.startswith("self-check passed: ")


def test_self_check_names_musl_which_the_platform_module_cannot(monkeypatch: pytest.MonkeyPatch) -> None:
    """On musl, `platform.libc_ver()` is empty: the .pyz's launcher read musl's version, and self-check
    shows it (JSON `platform.libc`, and beside the platform line, which does not name musl)."""
    import platform

    from codex_orchestrator.checks import selfcheck
    from codex_orchestrator.cli.selfcheck_cmd import render_report

    monkeypatch.setattr(platform, "libc_ver", lambda *a, **k: ("libc", ""))  # what it finds on musl
    monkeypatch.setattr(platform, "platform", lambda *a, **k: "Linux-6.18-x86_64-with-libc")
    monkeypatch.setattr(runtime, "launcher_info", lambda: {"libc": "musl 1.2.5"})
    report = selfcheck.run()
    assert report["platform"]["libc"] == "musl 1.2.5"
    assert "platform  Linux-6.18-x86_64-with-libc (musl 1.2.5)\n" in render_report(report) + "\n"
    monkeypatch.setattr(runtime, "launcher_info", lambda: None)  # a venv on musl: not known, not guessed
    assert selfcheck.run()["platform"]["libc"] is None
    glibc = {
        **report,
        "platform": {**report["platform"], "libc": "glibc 2.36", "platform": "Linux-x-with-glibc2.36"},
    }
    assert "platform  Linux-x-with-glibc2.36\n" in render_report(glibc) + "\n"  # named once, not twice


def test_self_check_names_a_missing_template(assets_copy: Path) -> None:
    (assets_copy / "templates" / "docs" / "PRD.md").unlink()
    result = invoke("self-check", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["status"] == "failed" and report["failed"] == ["template docs/PRD.md"]
    check = next(c for c in report["checks"] if c["name"] == "template docs/PRD.md")
    assert check["detail"] == "bundled template 'docs/PRD.md' is missing"
    text = invoke("self-check")
    assert text.exit_code == 1
    assert "FAILED  template docs/PRD.md" in text.stdout
    assert "self-check FAILED: template docs/PRD.md" in text.stderr
    assert "Fix: reinstall codex-orchestrator or download the release asset again" in text.stderr


def test_self_check_says_when_the_libraries_do_not_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """An extraction folder that takes no writes keeps jsonschema from loading: self-check says so and
    points at SHIV_ROOT, not at a download that would not help."""
    monkeypatch.setitem(sys.modules, "jsonschema", None)  # every `import jsonschema` raises ImportError
    result = invoke("self-check", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert "schema manifest.schema.json" in report["failed"]
    detail = next(c["detail"] for c in report["checks"] if c["name"] == "schema manifest.schema.json")
    assert detail.startswith("cannot check manifest.schema.json: jsonschema does not load: ")
    assert report["hint"].startswith("the bundled libraries do not load")
    text = invoke("self-check")
    assert text.exit_code == 1 and "not a valid JSON Schema" not in text.stdout
    assert "Fix: the bundled libraries do not load (the reason is above): set SHIV_ROOT" in text.stderr


def test_self_check_names_a_corrupted_schema(assets_copy: Path) -> None:
    (assets_copy / "schemas" / "manifest.schema.json").write_text('{"type": "object", ')
    report = json.loads(invoke("self-check", "--json").stdout)
    assert "schema manifest.schema.json" in report["failed"]
    assert "sample manifest" in report["failed"]
    detail = next(c["detail"] for c in report["checks"] if c["name"] == "schema manifest.schema.json")
    assert detail.startswith("bundled schema manifest.schema.json is not valid JSON")


def test_self_check_rejects_an_invalid_schema_and_a_template_without_marker(assets_copy: Path) -> None:
    (assets_copy / "schemas" / "config.schema.json").write_text('{"type": 12}')
    agents = assets_copy / "templates" / "AGENTS.md"
    agents.write_text(agents.read_text().replace("templateVersion", "version"))
    (assets_copy / "templates" / "stray.txt").write_text("no marker")
    report = json.loads(invoke("self-check", "--json").stdout)
    assert set(report["failed"]) >= {
        "schema config.schema.json",
        "template AGENTS.md",
        "template codex.orchestrator.json",
        "template stray.txt",
    }


def test_self_check_reports_pyz_path_hash_and_build_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "codex-orchestrator-0.1.0.pyz"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("environment.json", json.dumps({"shiv_version": "1.0.8", "build_id": "abc"}))
        zf.writestr("build-info.json", json.dumps({"version": "0.1.0", "commit": "deadbeef"}))
        zf.writestr("_bootstrap/__init__.py", "")
    monkeypatch.setenv("CODEX_ORCHESTRATOR_PYZ", str(archive))
    runtime.pyz_path.cache_clear()
    try:
        result = invoke("self-check", "--json")
    finally:
        runtime.pyz_path.cache_clear()
    report = json.loads(result.stdout)
    assert result.exit_code == 0, report["failed"]
    assert report["artifact"] == {
        "kind": "pyz",
        "path": str(archive.resolve()),
        "sha256": hashlib.sha256(archive.read_bytes()).hexdigest(),
        "size": archive.stat().st_size,
    }
    assert report["build"]["environment"]["build_id"] == "abc"
    assert report["build"]["build_info"]["commit"] == "deadbeef"
    assert "build metadata build-info.json" in [c["name"] for c in report["checks"]]


def test_help_imports_no_heavy_module() -> None:
    import subprocess

    code = (
        "import sys\n"
        "from codex_orchestrator.cli import main\n"
        "for cmd in (['init','codex'],['doctor'],['self-check'],['spec-guard'],['review']):\n"
        "    try:\n"
        "        main([*cmd, '--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = [m for m in ('mcp', 'pydantic', 'jsonschema') if m in sys.modules]\n"
        "sys.stderr.write(repr(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stderr.strip() == "[]", done.stderr
    assert "Usage: codex-orchestrator review" in done.stdout
