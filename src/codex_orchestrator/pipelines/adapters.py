"""Language adapters: detect a project type from files present (never by running it) and supply
build / lint / test stages for the built-in `diagnostics` pipeline.

Each adapter also carries a static catalogue (`rules`) of the commands it can choose and when, which
`adapters list` shows; `stages(root)` is the choice made for one folder.

Longer than 400 lines because it is a rule table: one block per language adapter, read top to
bottom; splitting it per language would scatter the detection order.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from codex_orchestrator import safejson
from codex_orchestrator._typing import TYPE_CHECKING, NamedTuple
from codex_orchestrator.pipelines.model import (
    DIAGNOSTICS,
    VIRTUAL_ENV,
    Pipeline,
    Stage,
    spec_guard_stage,
)
from codex_orchestrator.runs.store import read_regular

if TYPE_CHECKING:
    from typing import Any


class Rule(NamedTuple):
    """One line of an adapter's catalogue: stage `stage` runs `command` when `when` holds."""

    stage: str
    command: str
    when: str


class Adapter(NamedTuple):
    name: str
    title: str
    markers: tuple[str, ...]
    stages: Callable[[Path], list[Stage]]
    rules: tuple[Rule, ...] = ()
    #: files that make a project of this kind only where no adapter's markers are found (a Python
    #: application with only requirements.txt; a Node project may keep one for its tooling)
    fallback_markers: tuple[str, ...] = ()

    def detect(self, root: Path) -> bool:
        return any((root / marker).is_file() for marker in self.markers)

    def detect_fallback(self, root: Path) -> bool:
        return any((root / marker).is_file() for marker in self.fallback_markers)


def _stage(
    adapter: str,
    sid: str,
    title: str,
    argv: list[str],
    guardrail: bool = False,
    env: dict[str, str] | None = None,
) -> Stage:
    return Stage(
        id=sid,
        title=title,
        command=tuple(argv),
        guardrail=guardrail,
        env=tuple(sorted((env or {}).items())),
        source=f"adapter:{adapter}",
    )


MAX_PROJECT_FILE_BYTES = 4 * 1024 * 1024  # a project file is read up to this size


def _read(path: Path, limit: int = MAX_PROJECT_FILE_BYTES) -> bytes:
    """The first `limit` bytes of a project file; empty when it is missing or not a regular file. Every
    project file is read through here: a FIFO or a device in a repository must not hang detection, and a
    huge file must not fill memory."""
    return read_regular(path, limit)


def _text(path: Path) -> str:
    return _read(path).decode("utf-8", errors="replace")


def _toml(path: Path) -> dict[str, Any]:
    import tomllib  # only a project with a pyproject.toml needs it

    try:
        return tomllib.loads(_text(path))
    except ValueError:  # TOMLDecodeError, or an integer of more digits than int() converts
        return {}


def _ini_sections(path: Path) -> set[str]:
    import configparser  # only a project with a setup.cfg or tox.ini needs it

    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(_text(path), source=str(path))
    except configparser.Error:
        return set()
    return set(parser.sections())


# ------------------------------------------------------------------------------------------ Python

_PY_EXCLUDE = r"(^|/)(\.[^/]+|node_modules|build|dist|venv)(/|$)"


class _PythonEnv(NamedTuple):
    """How to reach the project's interpreter and tools: its own virtualenv, uv, poetry, or PATH."""

    python: tuple[str, ...]
    prefix: tuple[str, ...]  # prepended to a tool name (uv run, poetry run)
    bin_dir: str | None  # a local virtualenv's bin folder, relative to the root

    def tool(self, root: Path, name: str) -> list[str]:
        if self.bin_dir is not None:
            local = f"{self.bin_dir}/{name}"
            return [local] if (root / local).is_file() else [*self.python, "-m", name]
        return [*self.prefix, name]


def _python_env(root: Path) -> _PythonEnv:
    for venv in (".venv", "venv"):
        if (root / venv / "bin" / "python").exists():
            return _PythonEnv((f"{venv}/bin/python",), (), f"{venv}/bin")
    if (root / "uv.lock").is_file():
        return _PythonEnv(("uv", "run", "python"), ("uv", "run"), None)
    if (root / "poetry.lock").is_file():
        return _PythonEnv(("poetry", "run", "python"), ("poetry", "run"), None)
    return _PythonEnv(("python3",), (), None)


_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _mentions(deps: object, name: str) -> bool:
    """Whether a dependency list (or a dict of lists) names the distribution `name`."""
    if isinstance(deps, dict):
        return any(_mentions(v, name) for v in deps.values())
    if isinstance(deps, list):
        for item in deps:
            m = _REQ_NAME.match(item) if isinstance(item, str) else None
            if m and re.sub(r"[-_.]+", "-", m.group(1)).lower() == name:
                return True
    return False


def _python_deps(project: dict[str, Any]) -> list[object]:
    proj = project.get("project", {})
    proj = proj if isinstance(proj, dict) else {}
    return [
        proj.get("dependencies", []),
        proj.get("optional-dependencies", {}),
        project.get("dependency-groups", {}),
    ]


_REQUIREMENTS_GLOBS = (
    "*requirements*.txt",
    "requirements/*.txt",
    "tests/*requirements*.txt",
    "test/*requirements*.txt",
)
_PYTEST_STYLE = re.compile(rb"^(?:import pytest|from pytest |from _pytest|def test_)", re.MULTILINE)
_TEST_FILES_READ = 200  # test files read at most, 64 KiB of each, to tell a pytest suite
_TEST_FILE_BYTES = 64 * 1024


def _requirements_mention(root: Path, name: str) -> bool:
    """Whether a requirements file (requirements*.txt, requirements/*.txt, tests/requirements.txt ...)
    names the distribution `name`."""
    for pattern in _REQUIREMENTS_GLOBS:
        for path in sorted(root.glob(pattern))[:20]:
            if _mentions(_text(path).splitlines(), name):
                return True
    return False


_SKIPPED_FOLDERS = ("node_modules", "build", "dist", "venv", "site-packages")


def _package_test_dirs(root: Path) -> list[str]:
    """The test folders inside packages, for a project without a top-level tests/ or test/:
    `src/<pkg>/tests` and `<pkg>/tests` (or `test`), as many projects keep them; at most 20."""
    found: list[str] = []
    for pattern in ("src/*/tests", "src/*/test", "*/tests", "*/test"):
        for path in sorted(root.glob(pattern)):
            rel = path.relative_to(root)
            if any(p.startswith(".") or p in _SKIPPED_FOLDERS for p in rel.parts):
                continue
            if path.is_dir() and not path.is_symlink() and not path.parent.is_symlink():
                found.append(rel.as_posix())
    return list(dict.fromkeys(found))[:20]


def _pytest_style_tests(root: Path, test_dirs: list[str]) -> bool:
    """Whether the tests are written for pytest: a test file imports pytest or defines a test function
    at module level (which unittest never collects). Reads at most _TEST_FILES_READ files."""
    files = sorted(root.glob("test_*.py"))
    for test_dir in test_dirs:
        for dirpath, dirnames, filenames in os.walk(root / test_dir):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
            files += [  # unittest's default pattern, and pytest's other one (`*_test.py`)
                Path(dirpath, f)
                for f in sorted(filenames)
                if f.endswith(".py") and (f.startswith("test") or f.endswith("_test.py"))
            ]
            if len(files) >= _TEST_FILES_READ:
                break
        if len(files) >= _TEST_FILES_READ:
            break
    return any(_PYTEST_STYLE.search(_read(path, _TEST_FILE_BYTES)) for path in files[:_TEST_FILES_READ])


def _python_stages(root: Path) -> list[Stage]:
    project = _toml(root / "pyproject.toml")
    tool = project.get("tool", {})
    tool = tool if isinstance(tool, dict) else {}
    deps = _python_deps(project)
    cfg_sections = _ini_sections(root / "setup.cfg") | {f"tox:{s}" for s in _ini_sections(root / "tox.ini")}
    env = _python_env(root)
    python = list(env.python)
    target = "src" if (root / "src").is_dir() else "."
    stages = [
        _stage(
            "python",
            "build",
            "Byte-compile the sources",
            [*python, "-m", "compileall", "-q", "-x", _PY_EXCLUDE, target],
        )
    ]
    if (
        "ruff" in tool
        or (root / "ruff.toml").is_file()
        or (root / ".ruff.toml").is_file()
        or any(_mentions(d, "ruff") for d in deps)
    ):
        stages.append(
            _stage("python", "lint", "Lint with ruff", [*env.tool(root, "ruff"), "check", "."], True)
        )
    elif (root / ".flake8").is_file() or "flake8" in cfg_sections or "tox:flake8" in cfg_sections:
        stages.append(_stage("python", "lint", "Lint with flake8", [*python, "-m", "flake8"], True))
    test_dir = next((d for d in ("tests", "test") if (root / d).is_dir()), None)
    package_tests = _package_test_dirs(root) if test_dir is None else []
    has_pytest = (
        "pytest" in tool
        or any((root / name).is_file() for name in ("pytest.ini", "conftest.py", "tests/conftest.py"))
        or "tool:pytest" in cfg_sections
        or "tox:pytest" in cfg_sections
        or any(_mentions(d, "pytest") for d in deps)
        or _requirements_mention(root, "pytest")
        or _pytest_style_tests(root, [test_dir] if test_dir else package_tests)
    )
    if has_pytest:
        stages.append(
            _stage("python", "test", "Run the tests (pytest)", [*python, "-m", "pytest", "-q"], True)
        )
    else:
        if test_dir is not None or package_tests or any(root.glob("test_*.py")):
            argv = [*python, "-m", "unittest", "discover", "-q"]
            if test_dir is not None:
                argv += ["-s", test_dir]
                if (root / test_dir / "__init__.py").is_file():
                    argv += ["-t", "."]
            elif package_tests and target == "src":  # (from `.`, discovery walks into the packages)
                argv += ["-s", "src", "-t", "src"]
            # a src/ layout is importable by its tests without installing it
            extra = {"PYTHONPATH": "src"} if target == "src" else None
            stages.append(_stage("python", "test", "Run the tests (unittest)", argv, True, env=extra))
    if env.bin_dir is not None:  # the project's virtualenv is active for every stage (PATH, VIRTUAL_ENV)
        venv = {VIRTUAL_ENV: env.bin_dir.rsplit("/", 1)[0]}
        stages = [s._replace(env=tuple(sorted({**dict(s.env), **venv}.items()))) for s in stages]
    return stages


_PYTHON_RULES = (
    Rule("build", "python3 -m compileall -q src|.", "always (the project's interpreter, see below)"),
    Rule("lint", "ruff check .", "[tool.ruff], ruff.toml, or ruff among the dependencies"),
    Rule("lint", "python3 -m flake8", "otherwise, when .flake8 or a [flake8] section exists"),
    Rule(
        "test",
        "python3 -m pytest -q",
        "[tool.pytest.ini_options], pytest.ini, conftest.py, pytest among the dependencies or in a "
        "requirements file, or a test file that imports pytest or defines a test function at module level",
    ),
    Rule("test", "python3 -m unittest discover -q -s tests", "otherwise, when tests/, test/ or test_*.py"),
    Rule(
        "test",
        "python3 -m unittest discover -q [-s src -t src]",
        "otherwise, when a package holds its tests (src/<pkg>/tests, <pkg>/tests, or test/)",
    ),
    Rule("*", ".venv/bin/python | uv run | poetry run", "a local .venv/venv, uv.lock, poetry.lock"),
    Rule("*", "VIRTUAL_ENV=.venv, .venv/bin first on PATH", "every stage, when a local .venv/venv exists"),
)


# -------------------------------------------------------------------------------------------- Node

_NPM_NO_TEST = 'echo "Error: no test specified" && exit 1'
_NODE_SCRIPTS = (
    ("build", "build", False),
    ("lint", "lint", True),
    ("typecheck", "typecheck", True),
    ("test", "test", True),
)


def read_package_json(root: Path) -> dict[str, Any] | None:
    """package.json as an object; None when there is none (or it is not an object)."""
    try:
        package = safejson.loads(
            _read(root / "package.json", MAX_PROJECT_FILE_BYTES + 1),
            max_depth=32,
            max_bytes=MAX_PROJECT_FILE_BYTES,
        )
    except ValueError:
        return None
    return package if isinstance(package, dict) else None


def node_manager(root: Path, package: dict[str, Any]) -> str:
    return _node_manager(root, package)


_NODE_INSTALL = {  # manager -> (with a lockfile, without)
    "npm": ("npm ci", "npm install"),
    "pnpm": ("pnpm install --frozen-lockfile", "pnpm install"),
    "yarn": ("yarn install --frozen-lockfile", "yarn install"),
    "bun": ("bun install --frozen-lockfile", "bun install"),
}
_NODE_LOCKS = (
    "package-lock.json",
    "npm-shrinkwrap.json",
    "pnpm-lock.yaml",
    "yarn.lock",
    "bun.lockb",
    "bun.lock",
)


def declares_dependencies(package: dict[str, Any]) -> bool:
    return any(isinstance(package.get(k), dict) and package[k] for k in ("dependencies", "devDependencies"))


def missing_dependencies(root: Path, package: dict[str, Any] | None = None) -> str | None:
    """The command that installs the dependencies a Node project in `root` declares, when node_modules
    is missing there (every stage then fails in a way that says nothing about the code); else None."""
    package = read_package_json(root) if package is None else package
    if package is None or not declares_dependencies(package) or (root / "node_modules").is_dir():
        return None
    locked = any((root / name).is_file() for name in _NODE_LOCKS)
    return _NODE_INSTALL[node_manager(root, package)][0 if locked else 1]


def _node_manager(root: Path, package: dict[str, Any]) -> str:
    declared = package.get("packageManager")
    if isinstance(declared, str):
        name = declared.split("@", 1)[0]
        if name in ("npm", "pnpm", "yarn", "bun"):
            return name
    for lockfile, manager in (
        ("pnpm-lock.yaml", "pnpm"),
        ("yarn.lock", "yarn"),
        ("bun.lockb", "bun"),
        ("bun.lock", "bun"),
    ):
        if (root / lockfile).is_file():
            return manager
    return "npm"


def _node_run(manager: str, script: str) -> list[str]:
    if manager == "npm":
        # no update check: a stage never reaches for the network on its own
        verb = ["test"] if script == "test" else ["run", script]
        return ["npm", "--no-update-notifier", *verb]
    return [manager, "run", script]


def _node_stages(root: Path) -> list[Stage]:
    package = read_package_json(root) or {}
    scripts = package.get("scripts", {})
    scripts = scripts if isinstance(scripts, dict) else {}
    manager = _node_manager(root, package)
    stages = []
    for sid, script, guardrail in _NODE_SCRIPTS:
        body = scripts.get(script)
        if not isinstance(body, str) or (script == "test" and body == _NPM_NO_TEST):
            continue
        argv = _node_run(manager, script)
        stages.append(_stage("node", sid, f"{manager} run {script}", argv, guardrail))
    return stages


_NODE_RULES = (
    Rule("build", "npm run build", 'a "build" script in package.json'),
    Rule("lint", "npm run lint", 'a "lint" script'),
    Rule("typecheck", "npm run typecheck", 'a "typecheck" script'),
    Rule("test", "npm test", 'a "test" script (not npm\'s placeholder)'),
    Rule("*", "pnpm | yarn | bun", "packageManager field, or pnpm-lock.yaml / yarn.lock / bun.lock"),
)


# ---------------------------------------------------------------------------------------------- Go

_GOLANGCI = (".golangci.yml", ".golangci.yaml", ".golangci.toml", ".golangci.json")


def _go_stages(root: Path) -> list[Stage]:
    if any((root / name).is_file() for name in _GOLANGCI):
        lint = _stage("go", "lint", "golangci-lint", ["golangci-lint", "run", "./..."], guardrail=True)
    else:
        lint = _stage("go", "lint", "go vet", ["go", "vet", "./..."], guardrail=True)
    return [
        _stage("go", "build", "go build", ["go", "build", "./..."]),
        lint,
        _stage("go", "test", "go test", ["go", "test", "./..."], guardrail=True),
    ]


_GO_RULES = (
    Rule("build", "go build ./...", "always"),
    Rule("lint", "golangci-lint run ./...", "a .golangci.{yml,yaml,toml,json}"),
    Rule("lint", "go vet ./...", "otherwise"),
    Rule("test", "go test ./...", "always"),
)


# -------------------------------------------------------------------------------------------- Rust


def _rust_stages(root: Path) -> list[Stage]:
    locked = ["--locked"] if (root / "Cargo.lock").is_file() else []
    return [
        _stage("rust", "build", "cargo build", ["cargo", "build", "--quiet", *locked]),
        _stage(
            "rust",
            "lint",
            "cargo clippy",
            ["cargo", "clippy", "--quiet", *locked, "--", "-D", "warnings"],
            guardrail=True,
        ),
        _stage("rust", "test", "cargo test", ["cargo", "test", "--quiet", *locked], guardrail=True),
    ]


_RUST_RULES = (
    Rule("build", "cargo build --quiet", "always (--locked when Cargo.lock exists)"),
    Rule("lint", "cargo clippy --quiet -- -D warnings", "always"),
    Rule("test", "cargo test --quiet", "always"),
)


# --------------------------------------------------------------------------------------- JVM builds


def _maven_stages(root: Path) -> list[Stage]:
    mvn = "./mvnw" if (root / "mvnw").is_file() else "mvn"
    pom = _text(root / "pom.xml")
    stages = [_stage("maven", "build", "mvn compile", [mvn, "-q", "-B", "compile"])]
    if "maven-checkstyle-plugin" in pom:
        stages.append(
            _stage("maven", "lint", "mvn checkstyle:check", [mvn, "-q", "-B", "checkstyle:check"], True)
        )
    elif "spotless-maven-plugin" in pom:
        stages.append(
            _stage("maven", "lint", "mvn spotless:check", [mvn, "-q", "-B", "spotless:check"], True)
        )
    stages.append(_stage("maven", "test", "mvn test", [mvn, "-q", "-B", "test"], guardrail=True))
    return stages


_MAVEN_RULES = (
    Rule("build", "mvn -q -B compile", "always (./mvnw when the wrapper exists)"),
    Rule("lint", "mvn -q -B checkstyle:check", "pom.xml configures maven-checkstyle-plugin"),
    Rule("lint", "mvn -q -B spotless:check", "otherwise, when it configures spotless-maven-plugin"),
    Rule("test", "mvn -q -B test", "always"),
)


def _gradle_stages(root: Path) -> list[Stage]:
    gradle = "./gradlew" if (root / "gradlew").is_file() else "gradle"
    base = [gradle, "--console=plain", "-q"]
    return [
        _stage("gradle", "build", "gradle assemble", [*base, "assemble"]),
        _stage("gradle", "lint", "gradle check (without tests)", [*base, "check", "-x", "test"], True),
        _stage("gradle", "test", "gradle test", [*base, "test"], guardrail=True),
    ]


_GRADLE_RULES = (
    Rule("build", "gradle --console=plain -q assemble", "always (./gradlew when the wrapper exists)"),
    Rule("lint", "gradle --console=plain -q check -x test", "always"),
    Rule("test", "gradle --console=plain -q test", "always"),
)


ADAPTERS: tuple[Adapter, ...] = (
    Adapter(
        "python",
        "Python",
        ("pyproject.toml", "setup.py", "setup.cfg"),
        _python_stages,
        _PYTHON_RULES,
        fallback_markers=("requirements.txt", "Pipfile"),
    ),
    Adapter("node", "Node.js", ("package.json",), _node_stages, _NODE_RULES),
    Adapter("go", "Go", ("go.mod",), _go_stages, _GO_RULES),
    Adapter("rust", "Rust", ("Cargo.toml",), _rust_stages, _RUST_RULES),
    Adapter("maven", "Java (Maven)", ("pom.xml",), _maven_stages, _MAVEN_RULES),
    Adapter(
        "gradle",
        "Java/Kotlin (Gradle)",
        ("build.gradle", "build.gradle.kts", "settings.gradle", "settings.gradle.kts"),
        _gradle_stages,
        _GRADLE_RULES,
    ),
)


def detect(root: Path) -> list[Adapter]:
    """The adapters whose marker files exist in `root`, in priority order; without any, those whose
    fallback markers do."""
    return [a for a in ADAPTERS if a.detect(root)] or [a for a in ADAPTERS if a.detect_fallback(root)]


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
            id=DIAGNOSTICS,
            title=title,
            stages=tuple(stages),
            guardrails_required=True,
            source=f"builtin:{found[0].name}" if found else "builtin",
        ),
        names,
    )


def describe(root: Path | None = None) -> dict[str, Any]:
    """Every adapter with its markers and command catalogue; with `root`, what is detected there and
    the stages each detected adapter would supply (the first one feeds `diagnostics`)."""
    found = detect(root) if root is not None else []
    items = []
    for adapter in ADAPTERS:
        detected = adapter in found
        item: dict[str, Any] = {
            "name": adapter.name,
            "title": adapter.title,
            "markers": list(adapter.markers),
            "fallback_markers": list(adapter.fallback_markers),
            "detected": detected,
            "used": bool(found) and found[0] is adapter,
            "rules": [{"stage": r.stage, "command": r.command, "when": r.when} for r in adapter.rules],
        }
        if detected and root is not None:
            item["stages"] = [
                {"id": s.id, "title": s.title, "command": s.display(), "env": dict(s.env), "source": s.source}
                for s in adapter.stages(root)
            ]
        items.append(item)
    return {
        "repo": str(root) if root is not None else None,
        "detected": [a.name for a in found],
        "used": found[0].name if found else None,
        "adapters": items,
    }
