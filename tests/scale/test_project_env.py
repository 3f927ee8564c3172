"""Adapters run stages in the project's environment: a detected virtualenv is active for every stage,
stages whose tool is missing are left out of the built-in pipeline with a note, and doctor says when the
project's dependencies are not installed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from clikit import invoke

from codex_orchestrator.checks import doctor
from codex_orchestrator.pipelines import config as cfg
from codex_orchestrator.pipelines import tools
from codex_orchestrator.runs.layout import Roots


def _venv(root: Path, modules: tuple[str, ...] = ()) -> Path:
    """A minimal virtualenv: pyvenv.cfg, bin/python (this interpreter), a console script, site-packages."""
    venv = root / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text(  # as `python -m venv` writes it: no system site-packages
        f"home = {Path(sys.executable).parent}\ninclude-system-site-packages = false\n"
    )
    (venv / "bin" / "python").symlink_to(sys.executable)
    tool = venv / "bin" / "projtool"
    tool.write_text("#!/bin/sh\necho projtool-from-venv\n")
    tool.chmod(0o755)
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    site.mkdir(parents=True)
    for module in modules:
        (site / module).mkdir()
        (site / module / "__init__.py").write_text("")
    return venv


def test_virtualenv_is_active_for_every_stage(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_env.py").write_text(
        "import os, shutil, subprocess, unittest\n"
        "class T(unittest.TestCase):\n"
        "    def test_env(self):\n"
        "        print('VENV=' + os.environ['VIRTUAL_ENV'])\n"
        "        print('PATH0=' + os.environ['PATH'].split(os.pathsep)[0])\n"
        "        print(subprocess.run(['projtool'], capture_output=True, text=True).stdout)\n"
    )
    venv = _venv(tmp_path)
    config = cfg.load(tmp_path)
    stages = config.pipelines.get("diagnostics").stages
    assert {s.id: dict(s.env).get("VIRTUAL_ENV") for s in stages if s.source == "adapter:python"} == {
        "build": ".venv",
        "test": ".venv",
    }
    view = json.loads(invoke("start", "--json", "--repo", str(tmp_path)).stdout)
    log = Path(next(c for c in view["commands"] if c["id"] == "test")["log_path"]).read_text()
    assert f"VENV={venv}\n" in log
    assert f"PATH0={venv / 'bin'}\n" in log
    assert "projtool-from-venv" in log  # a console script of the venv is found, as in an activated shell


def test_a_test_stage_left_out_is_recorded_and_named_in_the_next_step(tmp_path: Path) -> None:
    """Tests written for pytest, in a virtualenv without pytest: the run records that its test stage was
    left out and why, fails for want of evidence, and its next step is to install what is missing (not
    to add tests, which exist)."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("def test_a():\n    assert True\n")
    _venv(tmp_path)
    result = invoke("start", "--json", "--repo", str(tmp_path))
    manifest = json.loads(Path(json.loads(result.stdout)["manifest"]).read_text())
    assert result.exit_code == 1
    assert manifest["pipeline"]["left_out"] == [{"stage": "test", "tool": ".venv/bin/python -m pytest"}]
    assert [c["id"] for c in manifest["commands"]] == ["build", "spec-guard"]
    assert manifest["guardrail_status"]["next_step"].startswith(
        "install what the built-in pipeline left out (stage 'test': `.venv/bin/python -m pytest` is not "
        "installed; `codex-orchestrator doctor` gives the command), or give 'spec-guard' something to check"
    )


def test_missing_tool_is_left_out_with_a_note(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname = 'x'\n[tool.ruff]\nline-length = 100\n[tool.pytest.ini_options]\n"
    )
    _venv(tmp_path, modules=("pytest",))  # pytest installed in the venv; ruff is not
    pipelines = cfg.load(tmp_path).pipelines
    assert [s.id for s in pipelines.get("diagnostics").stages] == ["build", "test", "spec-guard"]
    assert pipelines.left_out[0][:2] == ("lint", ".venv/bin/python -m ruff")
    plan = invoke("plan", "--repo", str(tmp_path))
    assert (
        "note: the built-in pipeline leaves out stage 'lint' (.venv/bin/python -m ruff check .): "
        in plan.stderr
    )
    assert json.loads(invoke("plan", "--json", "--repo", str(tmp_path)).stdout)["notes"] == pipelines.notes
    report = doctor.run(str(tmp_path))
    finding = next(c for c in report["checks"] if c["id"] == "pipeline_tools")
    assert finding["status"] == "warning" and "leaves out stage 'lint'" in finding["detail"]
    assert ".venv/bin/python -m pip install ruff" in finding["fix"]


def test_module_check_reads_the_venv_without_a_probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _venv(tmp_path, modules=("pytest",))
    tools._module_installed.cache_clear()
    monkeypatch.setattr(tools, "run_probe", lambda *a, **k: pytest.fail("probed"))
    assert tools.missing_tool([".venv/bin/python", "-m", "pytest"], root=tmp_path) is None


@pytest.mark.parametrize(
    ("lockfile", "fix"),
    [
        ("package-lock.json", "npm ci"),
        (None, "npm install"),
        ("pnpm-lock.yaml", "pnpm install --frozen-lockfile"),
    ],
)
def test_doctor_says_node_modules_is_missing(tmp_path: Path, lockfile: str | None, fix: str) -> None:
    (tmp_path / "package.json").write_text(json.dumps({"name": "x", "devDependencies": {"mocha": "^10"}}))
    if lockfile:
        (tmp_path / lockfile).write_text("")
    finding = doctor.check_dependencies(Roots.resolve(tmp_path))
    assert finding.status == "warning" and "node_modules is missing" in finding.detail
    assert finding.fix == f"run `{fix}` in {tmp_path}"
    (tmp_path / "node_modules").mkdir()
    assert doctor.check_dependencies(Roots.resolve(tmp_path)).status == "ok"


def test_config_stage_can_activate_a_venv(tmp_path: Path) -> None:
    _venv(tmp_path)
    (tmp_path / "codex.orchestrator.json").write_text(
        json.dumps(
            {
                "pipelines": [
                    {
                        "id": "p",
                        "stages": [{"id": "t", "command": ["projtool"], "env": {"VIRTUAL_ENV": ".venv"}}],
                    }
                ]
            }
        )
    )
    view = json.loads(invoke("start", "p", "--json", "--repo", str(tmp_path)).stdout)
    assert view["status"] == "succeeded"
    assert Path(view["commands"][0]["log_path"]).read_text() == "projtool-from-venv\n"
