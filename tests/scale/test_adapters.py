"""Adapters: detection per language from fixture trees (files only), the commands each picks,
`adapters list`, and `plan` naming the adapter behind every stage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from testkit import write_files

from codex_orchestrator.cli import cli
from codex_orchestrator.pipelines import adapters
from codex_orchestrator.pipelines.model import SELF

EVAL = Path(__file__).resolve().parent.parent / "fixtures" / "eval"


tree = write_files


def commands(root: Path) -> dict[str, list[str]]:
    pipeline, _ = adapters.diagnostics_pipeline(root)
    return {s.id: list(s.command) for s in pipeline.stages}


def invoke(*args: str) -> object:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_python_with_ruff_and_pytest(tmp_path: Path) -> None:
    root = tree(
        tmp_path / "py",
        {
            "pyproject.toml": "[project]\nname='x'\n[tool.ruff]\nline-length=100\n"
            "[tool.pytest.ini_options]\naddopts='-q'\n",
            "src/x/__init__.py": "",
        },
    )
    assert [a.name for a in adapters.detect(root)] == ["python"]
    cmds = commands(root)
    assert list(cmds) == ["build", "lint", "test", "spec-guard"]
    assert cmds["build"][:3] == ["python3", "-m", "compileall"] and cmds["build"][-1] == "src"
    assert cmds["lint"] == ["ruff", "check", "."]
    assert cmds["test"] == ["python3", "-m", "pytest", "-q"]
    assert cmds["spec-guard"] == [SELF, "spec-guard"]


def test_python_dependencies_and_setup_cfg_sections_count(tmp_path: Path) -> None:
    root = tree(
        tmp_path / "deps",
        {
            "pyproject.toml": "[project]\nname='x'\n[project.optional-dependencies]\n"
            "dev = ['ruff>=0.6', 'pytest-cov']\n",
        },
    )
    cmds = commands(root)
    assert cmds["lint"] == ["ruff", "check", "."]
    assert "test" not in cmds  # pytest-cov is not pytest, and there is no tests/ folder
    legacy = tree(tmp_path / "cfg", {"setup.cfg": "[flake8]\nmax-line-length=100\n[tool:pytest]\n"})
    cmds = commands(legacy)
    assert cmds["lint"] == ["python3", "-m", "flake8"]
    assert cmds["test"] == ["python3", "-m", "pytest", "-q"]


UNITTEST_STYLE = "import unittest\n\n\nclass T(unittest.TestCase):\n    def test_a(self):\n        pass\n"


@pytest.mark.parametrize(
    "files",
    [
        {"tests/requirements.txt": "pretend\npytest>=6\n"},  # packaging's layout
        {"requirements-dev.txt": "# tools\nPyTest==8.0 ; python_version>'3'\n"},
        {"requirements/test.txt": "pytest\n"},
        {"tests/unit/test_deep.py": "import pytest\n"},
        {"tests/test_b.py": "from pytest import raises\n"},
        {"tests/test_b.py": "def test_plain():\n    assert True\n"},  # unittest never collects this
        {"test_root.py": "def test_plain():\n    assert True\n"},
        {"tests/api/client_test.py": "def test_plain():\n    assert True\n"},  # pytest's *_test.py
    ],
)
def test_python_tests_written_for_pytest_run_with_pytest(tmp_path: Path, files: dict[str, str]) -> None:
    """unittest would find no test in these (or fail to import them), and report the run green."""
    root = tree(tmp_path, {"pyproject.toml": "", "tests/test_a.py": UNITTEST_STYLE, **files})
    assert commands(root)["test"] == ["python3", "-m", "pytest", "-q"]


def test_python_unittest_suites_stay_with_unittest(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "pyproject.toml": "",
            "requirements.txt": "pytest-cov\nrequests\n",  # not pytest
            "tests/test_a.py": UNITTEST_STYLE + '\n\ndef helper():\n    """def test_x(): in a string"""\n',
            "tests/.hidden/test_h.py": "import pytest\n",  # hidden folders are not the suite
            "tests/data.py": "import pytest\n",  # not a test file
        },
    )
    assert commands(root)["test"][:3] == ["python3", "-m", "unittest"]


def test_python_unittest_layouts(tmp_path: Path) -> None:
    pkg = tree(tmp_path / "pkg", {"setup.py": "", "tests/__init__.py": "", "tests/test_a.py": ""})
    assert commands(pkg)["test"] == ["python3", "-m", "unittest", "discover", "-q", "-s", "tests", "-t", "."]
    src = tree(tmp_path / "src", {"pyproject.toml": "", "src/m.py": "", "test/test_m.py": ""})
    stage = next(s for s in adapters.diagnostics_pipeline(src)[0].stages if s.id == "test")
    assert list(stage.command) == ["python3", "-m", "unittest", "discover", "-q", "-s", "test"]
    assert dict(stage.env) == {"PYTHONPATH": "src"}  # a src/ layout is importable by its tests
    flat = tree(tmp_path / "flat", {"pyproject.toml": "", "test_flat.py": ""})
    assert commands(flat)["test"] == ["python3", "-m", "unittest", "discover", "-q"]
    bare = tree(tmp_path / "bare", {"pyproject.toml": ""})
    assert list(commands(bare)) == ["build", "spec-guard"]


def test_python_tests_kept_inside_packages_are_found(tmp_path: Path) -> None:
    """Without a top-level tests/ folder, a package's own tests/ (src/<pkg>/tests, <pkg>/tests) is the
    suite: pytest when written for it, else unittest discovery that reaches it."""
    written_for_pytest = {"src/pkg/__init__.py": "", "src/pkg/tests/test_a.py": "def test_a():\n    pass\n"}
    assert commands(tree(tmp_path / "a", {"pyproject.toml": "", **written_for_pytest}))["test"] == [
        "python3",
        "-m",
        "pytest",
        "-q",
    ]
    flat = tree(
        tmp_path / "b", {"setup.py": "", "pkg/__init__.py": "", "pkg/tests/test_a.py": "import pytest\n"}
    )
    assert commands(flat)["test"] == ["python3", "-m", "pytest", "-q"]
    unittest_files = {
        "pkg/__init__.py": "",
        "pkg/tests/__init__.py": "",
        "pkg/tests/test_a.py": UNITTEST_STYLE,
    }
    flat = tree(tmp_path / "c", {"setup.py": "", **unittest_files})
    assert commands(flat)["test"] == ["python3", "-m", "unittest", "discover", "-q"]
    src = tree(tmp_path / "d", {"pyproject.toml": "", **{f"src/{k}": v for k, v in unittest_files.items()}})
    stage = next(s for s in adapters.diagnostics_pipeline(src)[0].stages if s.id == "test")
    assert list(stage.command) == ["python3", "-m", "unittest", "discover", "-q", "-s", "src", "-t", "src"]
    assert dict(stage.env) == {"PYTHONPATH": "src"}
    for root in (flat, src):  # and discovery reaches the test
        stage = next(s for s in adapters.diagnostics_pipeline(root)[0].stages if s.id == "test")
        argv = [sys.executable, *stage.command[1:]]
        env = {**os.environ, **dict(stage.env)}
        ran = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, check=False)
        assert "Ran 1 test" in ran.stderr and ran.returncode == 0, ran.stderr
    elsewhere = {  # installed or generated copies are not the project's tests
        "pyproject.toml": "",
        "node_modules/x/tests/test_a.py": "def test_a():\n    pass\n",
        ".venv/tests/test_a.py": "def test_a():\n    pass\n",
        "build/tests/test_a.py": "def test_a():\n    pass\n",
    }
    assert "test" not in commands(tree(tmp_path / "e", elsewhere))


def test_requirements_txt_makes_a_python_project_only_where_nothing_else_does(tmp_path: Path) -> None:
    app = tree(
        tmp_path / "app", {"requirements.txt": "flask\n", "app.py": "", "tests/test_app.py": UNITTEST_STYLE}
    )
    assert [a.name for a in adapters.detect(app)] == ["python"]
    assert commands(app)["test"] == ["python3", "-m", "unittest", "discover", "-q", "-s", "tests"]
    assert [a.name for a in adapters.detect(tree(tmp_path / "pipenv", {"Pipfile": ""}))] == ["python"]
    web = tree(tmp_path / "web", {"requirements.txt": "mkdocs\n", "package.json": "{}"})  # docs tooling
    assert [a.name for a in adapters.detect(web)] == ["node"]


def test_python_uses_the_projects_own_environment(tmp_path: Path) -> None:
    venv = tree(
        tmp_path / "venv",
        {
            "pyproject.toml": "[tool.ruff]\n[tool.pytest.ini_options]\n",
            ".venv/bin/python": "",
            ".venv/bin/ruff": "",
        },
    )
    cmds = commands(venv)
    assert cmds["build"][0] == ".venv/bin/python"
    assert cmds["lint"] == [".venv/bin/ruff", "check", "."]
    assert cmds["test"] == [".venv/bin/python", "-m", "pytest", "-q"]
    uv = tree(tmp_path / "uv", {"pyproject.toml": "[tool.ruff]\n", "uv.lock": "", "tests/x.py": ""})
    cmds = commands(uv)
    assert cmds["lint"] == ["uv", "run", "ruff", "check", "."]
    assert cmds["test"][:4] == ["uv", "run", "python", "-m"]
    poetry = tree(tmp_path / "poetry", {"pyproject.toml": "", "poetry.lock": ""})
    assert commands(poetry)["build"][:3] == ["poetry", "run", "python"]


def test_node_scripts_and_package_managers(tmp_path: Path) -> None:
    scripts = {
        "build": "tsc",
        "lint": "eslint .",
        "typecheck": "tsc --noEmit",
        "test": "vitest run",
        "x": "y",
    }
    npm = tree(tmp_path / "npm", {"package.json": json.dumps({"scripts": scripts})})
    assert [a.name for a in adapters.detect(npm)] == ["node"]
    cmds = commands(npm)
    assert list(cmds) == ["build", "lint", "typecheck", "test", "spec-guard"]
    assert cmds["build"] == ["npm", "--no-update-notifier", "run", "build"]
    assert cmds["test"] == ["npm", "--no-update-notifier", "test"]
    pnpm = tree(tmp_path / "pnpm", {"package.json": json.dumps({"scripts": scripts}), "pnpm-lock.yaml": ""})
    assert commands(pnpm)["lint"] == ["pnpm", "run", "lint"]
    declared = {"scripts": {"test": "jest"}, "packageManager": "yarn@4.1.0"}
    yarn = tree(tmp_path / "yarn", {"package.json": json.dumps(declared)})
    assert commands(yarn)["test"] == ["yarn", "run", "test"]
    placeholder = {"scripts": {"test": 'echo "Error: no test specified" && exit 1'}}
    empty = tree(tmp_path / "empty", {"package.json": json.dumps(placeholder)})
    assert list(commands(empty)) == ["spec-guard"]
    broken = tree(tmp_path / "broken", {"package.json": "{not json"})
    assert list(commands(broken)) == ["spec-guard"]  # detected, nothing to run, no crash


def test_go_rust_maven_gradle(tmp_path: Path) -> None:
    go = tree(tmp_path / "go", {"go.mod": "module x\n"})
    assert commands(go) == {
        "build": ["go", "build", "./..."],
        "lint": ["go", "vet", "./..."],
        "test": ["go", "test", "./..."],
        "spec-guard": [SELF, "spec-guard"],
    }
    tree(go, {".golangci.yml": "linters: {}\n"})
    assert commands(go)["lint"] == ["golangci-lint", "run", "./..."]

    rust = tree(tmp_path / "rust", {"Cargo.toml": "[package]\nname='x'\n"})
    assert commands(rust)["test"] == ["cargo", "test", "--quiet"]
    tree(rust, {"Cargo.lock": ""})
    assert commands(rust)["build"] == ["cargo", "build", "--quiet", "--locked"]
    assert commands(rust)["lint"][:2] == ["cargo", "clippy"]

    maven = tree(tmp_path / "maven", {"pom.xml": "<project/>"})
    assert list(commands(maven)) == ["build", "test", "spec-guard"]
    assert commands(maven)["test"] == ["mvn", "-q", "-B", "test"]
    tree(
        maven, {"pom.xml": "<project><artifactId>maven-checkstyle-plugin</artifactId></project>", "mvnw": ""}
    )
    assert commands(maven)["lint"] == ["./mvnw", "-q", "-B", "checkstyle:check"]

    gradle = tree(tmp_path / "gradle", {"build.gradle.kts": "", "gradlew": ""})
    assert [a.name for a in adapters.detect(gradle)] == ["gradle"]
    assert commands(gradle)["test"] == ["./gradlew", "--console=plain", "-q", "test"]


def test_detection_reads_files_only_and_keeps_priority(tmp_path: Path) -> None:
    (tmp_path / "package.json").mkdir()  # a folder named like a marker is not a marker
    assert adapters.detect(tmp_path) == []
    pipeline, names = adapters.diagnostics_pipeline(tmp_path)
    assert names == () and [s.id for s in pipeline.stages] == ["spec-guard"] and pipeline.source == "builtin"
    both = tree(tmp_path / "both", {"go.mod": "", "pyproject.toml": ""})
    pipeline, names = adapters.diagnostics_pipeline(both)
    assert names == ("python", "go") and pipeline.source == "builtin:python"
    assert {s.source for s in pipeline.stages} == {"adapter:python", "builtin"}


@pytest.mark.parametrize(
    ("fixture", "adapter"),
    [
        ("python-pass", "python"),
        ("python-fail", "python"),
        ("node-scripts", "node"),
        ("stale-spec", "python"),
    ],
)
def test_eval_fixture_trees_are_detected(fixture: str, adapter: str) -> None:
    assert [a.name for a in adapters.detect(EVAL / fixture)] == [adapter]


def test_adapters_list_json_and_text(tmp_path: Path) -> None:
    root = tree(tmp_path / "node", {"package.json": json.dumps({"scripts": {"test": "node t.js"}})})
    result = invoke("adapters", "list", "--format", "json", "--repo", str(root))
    assert result.exit_code == 0 and result.stderr == ""
    data = json.loads(result.stdout)
    assert [a["name"] for a in data["adapters"]] == ["python", "node", "go", "rust", "maven", "gradle"]
    assert data["detected"] == ["node"] and data["used"] == "node"
    node = data["adapters"][1]
    assert node["detected"] and node["used"] and node["markers"] == ["package.json"]
    assert node["stages"] == [
        {
            "id": "test",
            "title": "npm run test",
            "command": "npm --no-update-notifier test",
            "env": {},
            "source": "adapter:node",
        }
    ]
    for item in data["adapters"]:
        assert {r["stage"] for r in item["rules"]} >= {"build", "test"}, item["name"]
    text = invoke("adapters", "list", "--repo", str(root))
    assert "node (Node.js)  [detected; supplies diagnostics]" in text.stdout
    assert "go test ./..." in text.stdout and "mvn -q -B test" in text.stdout
    empty = invoke("adapters", "list", "--repo", str(tmp_path / "node" / "..") + "/nothing")
    assert empty.exit_code == 3  # a missing repository is an environment error


def test_plan_shows_which_adapter_produced_each_stage() -> None:
    result = invoke("plan", "--json", "--repo", str(EVAL / "python-pass"))
    data = json.loads(result.stdout)
    assert data["source"] == "builtin:python"
    assert [(s["id"], s["source"]) for s in data["stages"]] == [
        ("build", "adapter:python"),
        ("test", "adapter:python"),
        ("spec-guard", "builtin"),
    ]
    text = invoke("plan", "--repo", str(EVAL / "node-scripts")).stdout
    assert "FROM" in text
    rows = {line.split()[1]: line.split()[2] for line in text.splitlines()[2:] if line.strip()}
    assert rows == {
        "build": "adapter:node",
        "lint": "adapter:node",
        "test": "adapter:node",
        "spec-guard": "builtin",
    }
    assert not (EVAL / "node-scripts" / ".runs").exists()


def test_the_built_in_pipeline_is_detected_only_when_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run of a configured pipeline reads no project file for the built-in one; asking for the built-in
    one, the list, the adapters or the notes detects it once. A configured `diagnostics` replaces it."""
    from codex_orchestrator.pipelines import config as cfg

    root = tree(tmp_path / "repo", {"pyproject.toml": '[project]\nname = "x"\n'})
    (root / cfg.CONFIG_FILE).write_text(
        json.dumps({"pipelines": [{"id": "mine", "stages": [{"id": "a", "command": ["true"]}]}]})
    )
    calls: list[Path] = []
    real = adapters.diagnostics_pipeline
    monkeypatch.setattr(adapters, "diagnostics_pipeline", lambda r: calls.append(r) or real(r))
    loaded = cfg.load(root)
    assert loaded.pipelines.get("mine").id == "mine" and loaded.pipelines.get("docs-review")
    assert calls == []
    assert loaded.pipelines.default_pipeline == "diagnostics"
    assert loaded.pipelines.get("diagnostics").source == "builtin:python" and calls == [root]
    assert loaded.pipelines.adapters == ("python",) and list(loaded.pipelines.pipelines)[:3] == [
        "diagnostics",
        "docs-review",
        "mine",
    ]
    assert calls == [root]  # once
    for ask in ("pipelines", "adapters", "notes"):
        fresh = cfg.load(root)
        getattr(fresh.pipelines, ask)
        assert len(calls) == 2, ask
        calls.pop()

    (root / cfg.CONFIG_FILE).write_text(
        json.dumps({"pipelines": [{"id": "diagnostics", "stages": [{"id": "a", "command": ["true"]}]}]})
    )
    calls.clear()
    own = cfg.load(root).pipelines
    assert own.get("diagnostics").source == "config" and calls == []
    assert own.pipelines["diagnostics"].source == "config" and next(iter(own.pipelines)) == "diagnostics"


def test_an_unknown_default_pipeline_is_refused_without_detection(tmp_path: Path) -> None:
    from codex_orchestrator.errors import ConfigError
    from codex_orchestrator.pipelines import config as cfg

    root = tree(tmp_path / "repo", {cfg.CONFIG_FILE: json.dumps({"default_pipeline": "nope"})})
    with pytest.raises(ConfigError, match=r"unknown pipeline 'nope' \(available: diagnostics, docs-review\)"):
        cfg.load(root)


def test_project_files_that_are_devices_or_pipes_are_not_read(tmp_path: Path) -> None:
    """A clone can hold a symlink to /dev/zero (`setup.cfg -> /dev/zero`): reading it filled memory until
    the process died. A FIFO blocked detection forever. Neither is a regular file: neither is read."""
    import os
    import resource
    import subprocess
    import sys

    python = tree(tmp_path / "py", {"pyproject.toml": "[project]\nname = 'x'\n", "tests/__init__.py": ""})
    for name in ("setup.cfg", "tox.ini", "requirements.txt", "tests/test_zero.py"):
        (python / name).symlink_to("/dev/zero")
    os.mkfifo(python / "requirements-dev.txt")
    os.mkfifo(python / "tests" / "test_fifo.py")
    node = tree(tmp_path / "node", {})
    (node / "package.json").write_text('{"scripts": {"test": "node --test"}}')
    script = (
        "import sys\nfrom pathlib import Path\nfrom codex_orchestrator.pipelines import adapters\n"
        "for root in sys.argv[1:]:\n"
        "    print([list(s.command) for s in adapters.diagnostics_pipeline(Path(root))[0].stages])\n"
    )

    def cap_memory() -> None:  # were a regression to read /dev/zero again, it fails here, not the machine
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    run = subprocess.run(
        [sys.executable, "-c", script, str(python), str(node)],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=cap_memory,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    python_stages, node_stages = run.stdout.splitlines()
    assert "['python3', '-m', 'unittest', 'discover', '-q', '-s', 'tests', '-t', '.']" in python_stages
    assert "'npm', '--no-update-notifier', 'test'" in node_stages
