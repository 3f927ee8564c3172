"""Language adapters: detect a project type from files present (never by running it) and supply
build / lint / test stages for the built-in `diagnostics` pipeline."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from codex_orchestrator.model import SELF, Pipeline, Stage


@dataclass(frozen=True)
class Adapter:
    name: str
    title: str
    markers: tuple[str, ...]
    stages: Callable[[Path], list[Stage]]

    def detect(self, root: Path) -> bool:
        return any((root / marker).exists() for marker in self.markers)


def _stage(adapter: str, sid: str, title: str, argv: list[str], guardrail: bool = False) -> Stage:
    return Stage(id=sid, title=title, command=tuple(argv), guardrail=guardrail, source=f"adapter:{adapter}")


def _pyproject(root: Path) -> dict[str, object]:
    try:
        with open(root / "pyproject.toml", "rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def _python_stages(root: Path) -> list[Stage]:
    project = _pyproject(root)
    tool = project.get("tool", {})
    tool = tool if isinstance(tool, dict) else {}
    target = "src" if (root / "src").is_dir() else "."
    stages = [
        _stage(
            "python",
            "build",
            "Byte-compile the sources",
            [
                "python3",
                "-m",
                "compileall",
                "-q",
                "-x",
                r"(^|/)(\.[^/]+|node_modules|build|dist)(/|$)",
                target,
            ],
        )
    ]
    if "ruff" in tool or (root / "ruff.toml").exists() or (root / ".ruff.toml").exists():
        stages.append(_stage("python", "lint", "Lint with ruff", ["ruff", "check", "."], guardrail=True))
    elif (root / ".flake8").exists():
        stages.append(
            _stage("python", "lint", "Lint with flake8", ["python3", "-m", "flake8"], guardrail=True)
        )
    has_pytest = "pytest" in tool or any(
        (root / name).exists() for name in ("pytest.ini", "conftest.py", "tests/conftest.py")
    )
    if has_pytest:
        stages.append(
            _stage("python", "test", "Run the tests (pytest)", ["python3", "-m", "pytest", "-q"], True)
        )
    elif (root / "tests").is_dir() or (root / "test").is_dir():
        stages.append(
            _stage(
                "python",
                "test",
                "Run the tests (unittest)",
                ["python3", "-m", "unittest", "discover", "-q"],
                True,
            )
        )
    return stages


_NPM_NO_TEST = 'echo "Error: no test specified" && exit 1'


def _node_stages(root: Path) -> list[Stage]:
    try:
        scripts = json.loads((root / "package.json").read_text(encoding="utf-8")).get("scripts", {})
    except (OSError, ValueError, AttributeError):
        scripts = {}
    scripts = scripts if isinstance(scripts, dict) else {}
    stages = []
    if "build" in scripts:
        stages.append(_stage("node", "build", "npm run build", ["npm", "run", "build"]))
    if "lint" in scripts:
        stages.append(_stage("node", "lint", "npm run lint", ["npm", "run", "lint"], guardrail=True))
    if "test" in scripts and scripts["test"] != _NPM_NO_TEST:
        stages.append(_stage("node", "test", "npm test", ["npm", "test"], guardrail=True))
    return stages


def _go_stages(root: Path) -> list[Stage]:
    return [
        _stage("go", "build", "go build", ["go", "build", "./..."]),
        _stage("go", "lint", "go vet", ["go", "vet", "./..."], guardrail=True),
        _stage("go", "test", "go test", ["go", "test", "./..."], guardrail=True),
    ]


def _rust_stages(root: Path) -> list[Stage]:
    return [
        _stage("rust", "build", "cargo build", ["cargo", "build", "--quiet"]),
        _stage(
            "rust",
            "lint",
            "cargo clippy",
            ["cargo", "clippy", "--quiet", "--", "-D", "warnings"],
            guardrail=True,
        ),
        _stage("rust", "test", "cargo test", ["cargo", "test", "--quiet"], guardrail=True),
    ]


def _maven_stages(root: Path) -> list[Stage]:
    return [
        _stage("maven", "build", "mvn compile", ["mvn", "-q", "-B", "compile"]),
        _stage("maven", "test", "mvn test", ["mvn", "-q", "-B", "test"], guardrail=True),
    ]


ADAPTERS: tuple[Adapter, ...] = (
    Adapter("python", "Python", ("pyproject.toml", "setup.py", "setup.cfg"), _python_stages),
    Adapter("node", "Node.js", ("package.json",), _node_stages),
    Adapter("go", "Go", ("go.mod",), _go_stages),
    Adapter("rust", "Rust", ("Cargo.toml",), _rust_stages),
    Adapter("maven", "Java (Maven)", ("pom.xml",), _maven_stages),
)


def detect(root: Path) -> list[Adapter]:
    return [adapter for adapter in ADAPTERS if adapter.detect(root)]


def spec_guard_stage() -> Stage:
    return Stage(
        id="spec-guard",
        title="Check spec freshness",
        command=(SELF, "spec-guard"),
        guardrail=True,
        source="builtin",
    )


def diagnostics_pipeline(root: Path) -> tuple[Pipeline, tuple[str, ...]]:
    """The built-in `diagnostics` pipeline for `root`: the first detected adapter's stages + spec-guard."""
    found = detect(root)
    stages: list[Stage] = []
    if found:
        stages.extend(found[0].stages(root))
    stages.append(spec_guard_stage())
    names = tuple(a.name for a in found)
    title = f"Diagnostics ({found[0].title})" if found else "Diagnostics"
    return (
        Pipeline(
            id="diagnostics",
            title=title,
            stages=tuple(stages),
            guardrails_required=True,
            source=f"builtin:{found[0].name}" if found else "builtin",
        ),
        names,
    )
