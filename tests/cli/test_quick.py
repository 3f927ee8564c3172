"""The quick path of `start` (no click): it knows exactly the options of the click command, reads them as
click does, leaves to click everything else, and a run it starts prints and exits as the click command's."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from testkit import py, write_config

from codex_orchestrator.cli import quick
from codex_orchestrator.cli.run_cmds import start, status
from codex_orchestrator.cli.runs_cmds import list_
from codex_orchestrator.runs.manifest import RunStatus

CLICK_COMMANDS = {("start",): start, ("status",): status, ("runs", "list"): list_}


def _click_params(words: tuple[str, ...], args: list[str]) -> dict[str, object]:
    """The parameters the click command receives, without those only click reads."""
    command = CLICK_COMMANDS[words]
    params = command.make_context(" ".join(words), args).params
    for param in command.params:
        if isinstance(param, click.Option) and set(param.opts) & quick.COMMANDS[words].click_only:
            params.pop(str(param.name), None)
    return params


@pytest.mark.parametrize("words", list(quick.COMMANDS), ids=" ".join)
def test_every_option_is_read_by_the_quick_path_or_left_to_click(words: tuple[str, ...]) -> None:
    """Adding an option to one of these commands without teaching the quick path (or leaving it to click)
    fails here; so does a default, a choice or a range that differs from click's."""
    command = quick.COMMANDS[words]
    names = set()
    for param in CLICK_COMMANDS[words].params:
        if isinstance(param, click.Argument):
            assert param.name == command.argument
            names.add(param.name)
            continue
        assert isinstance(param, click.Option)
        if set(param.opts) & command.click_only:
            assert set(param.opts) <= command.click_only
            continue
        for opt in param.opts:
            table = command.flags if param.is_flag else command.values
            assert table.get(opt) == param.name, f"{opt} of `{' '.join(words)}` is unknown to the quick path"
        names.add(param.name)
        if isinstance(param.type, click.Choice):
            assert tuple(param.type.choices) == command.choices[str(param.name)]
        if isinstance(param.type, click.IntRange):
            assert (param.type.min, param.type.max) == command.integers[str(param.name)]
    assert names == set(command.defaults) and _click_params(words, []) == command.defaults
    assert set(command.choices) | set(command.integers) <= set(command.defaults)


def test_the_quick_path_knows_every_run_status() -> None:
    """One list of run statuses, without the manifest module, serves the quick path and the MCP tools."""
    from codex_orchestrator.runs import RUN_STATUSES

    assert tuple(RunStatus) == RUN_STATUSES
    assert quick.COMMANDS[("runs", "list")].choices["status"] == RUN_STATUSES


READ_BY_BOTH = [
    ["start"],
    ["start", "five"],
    ["start", "five", "--json"],
    ["start", "--format", "json", "five"],
    ["start", "--format=json"],
    ["start", "--repo", "/tmp/x", "--task", "t1", "--target", "b", "--project", "web", "p"],
    ["start", "--parent-run", "20261201T000000000Z-0000abcd", "--sandbox", "codex:workspace"],
    ["start", "--detach", "--format", "text"],
    ["start", "--follow", "--task=a", "--task=b"],  # the last one wins, as in click
    ["start", "--sandbox=none", "p"],
    ["status"],
    ["status", "--run", "latest", "--json"],
    ["status", "--task=t1", "--format", "json", "--repo", "/tmp/x"],
    ["status", "--run=0000abcd"],
    ["runs", "list"],
    ["runs", "list", "--limit", "3", "--status", "failed", "--pipeline", "p", "--task", "t", "--json"],
    ["runs", "list", "--limit=100000", "--format=text"],
    ["runs", "list", "--limit", "+7", "--status=in_progress"],
]
LEFT_TO_CLICK = [
    ["start", "--help"],
    ["start", "-h"],
    ["start", "--junit-xml", "out.xml"],
    ["start", "a", "b"],
    ["start", "--nope"],
    ["start", "--format", "xml"],
    ["start", "--follow", "--detach"],
    ["start", "--task"],
    ["start", "--task", "--json"],
    ["start", "--task="],
    ["start", "--json=1"],
    ["start", "--", "p"],
    ["start", "-"],
    ["status", "--watch"],
    ["status", "--follow"],
    ["status", "--interval", "1"],
    ["status", "latest"],
    ["status", "--help"],
    ["runs"],
    ["runs", "prune"],
    ["runs", "list", "--limit", "0"],
    ["runs", "list", "--limit", "x"],
    ["runs", "list", "--limit", "100001"],
    ["runs", "list", "--status", "stale"],
    ["runs", "list", "extra"],
    ["runs", "--help"],
    ["plan"],
    [],
]


@pytest.mark.parametrize("argv", READ_BY_BOTH, ids=" ".join)
def test_the_quick_path_reads_a_command_line_as_click_does(argv: list[str]) -> None:
    parsed = quick.parse(argv)
    assert parsed is not None
    words, params = parsed
    assert params == _click_params(words, argv[len(words) :])


@pytest.mark.parametrize("argv", LEFT_TO_CLICK, ids=lambda a: " ".join(a) or "(nothing)")
def test_what_the_quick_path_does_not_read_is_left_to_click(argv: list[str]) -> None:
    assert quick.parse(argv) is None


@pytest.fixture
def five(tmp_path: Path) -> Path:
    root = tmp_path / "five"
    root.mkdir()
    stages = [{"id": x, "command": ["echo", x]} for x in "abcde"]
    stages.append({"id": "f", "command": py("import sys; sys.exit(3)"), "allow_failure": False})
    write_config(
        root,
        {
            "default_pipeline": "five",
            "pipelines": [
                {"id": "five", "stages": stages[:5]},
                {"id": "fails", "stages": stages[4:]},
            ],
        },
    )
    return root


def _cli(
    repo: Path, *args: str, env: dict[str, str] | None = None, via_click: bool = False
) -> subprocess.CompletedProcess[str]:
    """The CLI as its own process, reporting on stderr (last line) whether click was imported.
    `via_click`: the click application itself reads the command line (no quick path)."""
    script = (  # (atexit runs last what was registered first: the click line ends stderr)
        "import atexit, sys\n"
        "atexit.register(lambda: print('click imported:', 'click' in sys.modules, file=sys.stderr))\n"
        "heavy = ('dataclasses', 'inspect', 'shutil', 'tempfile', 'importlib.resources', 'tomllib')\n"
        "atexit.register(lambda: print('heavy imported:', sorted(set(heavy) & set(sys.modules)),"
        " file=sys.stderr))\n"
    )
    if via_click:
        script += "from codex_orchestrator.cli.app import cli\ncli.main(prog_name='codex-orchestrator')\n"
    else:
        script += "from codex_orchestrator.cli import main\nmain()\n"
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "GITHUB_ACTIONS": "", **(env or {})},
        check=False,
    )


def _same(text: str) -> str:
    text = re.sub(r"\d{8}T\d{6}\d{3}Z-[0-9a-f]{8}", "RUN", text)
    # timestamps before numbers: their seconds are a number too, and a pair of runs may straddle a minute
    text = re.sub(r"\d{4}-\d\d-\d\dT[0-9:.]+Z", "TIME", text)
    text = re.sub(r"\d+\.\d+(e-?\d+)?", "N", text)
    text = re.sub(r"JUnit XML written to .*\n", "", text)  # what only --junit-xml adds
    text = re.sub(r"heavy imported: .*\n", "", text)
    return re.sub(r"click imported: \w+\n?$", "", text)


@pytest.mark.parametrize(
    "args",
    [["five"], ["five", "--format", "json"], ["fails"], ["fails", "--json"], ["missing"], ["--json", "nope"]],
    ids=" ".join,
)
def test_a_run_from_the_quick_path_prints_and_exits_as_from_click(
    five: Path, tmp_path: Path, args: list[str]
) -> None:
    quick_run = _cli(five, "start", *args)
    assert quick_run.stderr.rstrip().endswith("click imported: False")
    assert "heavy imported: []" in quick_run.stderr  # start-up is a feature: none of these on this path
    click_run = _cli(five, "start", *args, "--junit-xml", str(tmp_path / "junit.xml"))  # click reads it
    assert click_run.stderr.rstrip().endswith("click imported: True")
    assert quick_run.returncode == click_run.returncode
    assert _same(quick_run.stdout) == _same(click_run.stdout)
    assert _same(quick_run.stderr) == _same(click_run.stderr)
    if "--json" in args or "json" in args:
        json.loads(quick_run.stdout)  # one document, nothing else


def test_in_github_actions_start_goes_through_click(five: Path) -> None:
    """The job summary and annotations hang on click's context: there, every start is click's."""
    summary = five / "summary.md"
    run = _cli(five, "start", env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    assert run.returncode == 0, run.stderr
    assert run.stderr.rstrip().endswith("click imported: True")
    assert summary.is_file()


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["status", "--json"],
        ["status", "--task", "nobody"],
        ["status", "--run", "0000beef", "--format", "json"],
        ["runs", "list"],
        ["runs", "list", "--limit", "1", "--json"],
        ["runs", "list", "--status", "failed"],
        ["runs", "list", "--repo", "/nonexistent/repo"],
    ],
    ids=" ".join,
)
def test_status_and_runs_list_print_and_exit_as_from_click(five: Path, args: list[str]) -> None:
    """Read without click (nor its command modules), and what they print is click's, errors included."""
    assert _cli(five, "start", "five").returncode == 0
    assert _cli(five, "start", "fails").returncode == 1
    quick_run = _cli(five, *args)
    click_run = _cli(five, *args, via_click=True)
    assert quick_run.stderr.rstrip().endswith("click imported: False")
    assert click_run.stderr.rstrip().endswith("click imported: True")
    assert "heavy imported: []" in quick_run.stderr
    assert quick_run.returncode == click_run.returncode
    assert _same(quick_run.stdout) == _same(click_run.stdout)
    assert _same(quick_run.stderr) == _same(click_run.stderr)
    if "--json" in args or "json" in args:
        json.loads(quick_run.stdout)


def test_status_from_the_quick_path_imports_no_engine(five: Path) -> None:
    """A status reads a manifest: none of the modules that run stages are imported for it."""
    assert _cli(five, "start", "five").returncode == 0
    script = (
        "import sys\nfrom codex_orchestrator.cli import main\n"
        "try:\n    main(sys.argv[1:])\nfinally:\n"
        "    print(sorted(m for m in sys.modules if m.startswith('codex_orchestrator')), file=sys.stderr)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, "status"], cwd=five, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    loaded = run.stderr.strip().splitlines()[-1]
    engine = ("runs.engine", "runs.lifecycle", "cli._start", "cli.progress", "pipelines.config")
    for module in (*engine, "pipelines.model", "runs.testrunners"):  # nor the pipeline model, nor stages'
        assert f"codex_orchestrator.{module}'" not in loaded


#: Standard modules a `start` can do without, each with what loading it would cost: OpenSSL (hashlib,
#: hmac: about 3 ms, where CPython's own SHA-256 hashes a token), copy (a manifest is copied as JSON),
#: ctypes (about 2 ms; the subreaper's prctl goes through `_ctypes` itself), typing (about 3.5 ms, and
#: more for each NamedTuple: see codex_orchestrator._typing).
#: In a Python project, tomllib, configparser and shutil read its files and find its tools for the
#: built-in pipeline: not for a run of a configured one (about 10 ms).
NOT_ON_THE_START_PATH = ("_hashlib", "hashlib", "hmac", "copy", "ctypes", "typing")
#: pathlib's urllib.parse and its ipaddress (about 2.8 ms): see `_lean`
NOT_ON_THE_START_PATH += ("urllib.parse", "ipaddress")
NOT_FOR_A_CONFIGURED_PIPELINE = (
    "tomllib",
    "configparser",
    "shutil",
    "codex_orchestrator.pipelines.adapters",  # detection of the built-in pipeline (about 1 ms)
    "codex_orchestrator.pipelines.tools",
)
#: Our modules a run does not use: cancelling, resuming and querying runs (about 1.3 ms).
NOT_FOR_A_RUN = tuple(f"codex_orchestrator.runs.{m}" for m in ("cancel", "resume", "queries"))


def test_a_start_loads_no_module_it_can_do_without(five: Path) -> None:
    from clikit import git

    (five / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.pytest.ini_options]\n')
    (five / "setup.cfg").write_text("[flake8]\n")
    git(five, "init", "-q", "-b", "main")
    git(five, "add", ".")
    git(five, "commit", "-q", "-m", "first")  # a clean tree: no change to hash
    loaded = _start_and_report(five, "", "sorted(sys.modules)")
    assert "'codex_orchestrator.runs.engine'" in loaded  # the run did run here
    unneeded = NOT_ON_THE_START_PATH + NOT_FOR_A_CONFIGURED_PIPELINE + NOT_FOR_A_RUN
    assert [m for m in unneeded if f"'{m}'" in loaded] == []

    # the built-in pipeline is still detected when it is the one asked for
    listed = subprocess.run(
        [sys.executable, "-m", "codex_orchestrator", "pipelines", "--json"],
        cwd=five,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    shown = json.loads(listed.stdout)
    assert shown["adapters"][0] == "python" and "diagnostics" in [p["id"] for p in shown["pipelines"]]


def test_a_start_runs_no_garbage_collection(five: Path) -> None:
    """At CPython's default young threshold, the imports of a `start` set off about 15 collections
    (1.5-2 ms); the entry point raises the threshold so none runs before a short command ends."""
    prelude = (
        "import gc\nruns = []\n"
        "def seen(phase, info):\n"
        "    if phase == 'start' and gc.get_threshold()[0] > 2000:  # once the entry point raised it\n"
        "        runs.append(info['generation'])\n"
        "gc.callbacks.append(seen)\n"
    )
    assert _start_and_report(five, prelude, "gc.get_threshold()[0], runs") == "(50000, [])"


def _start_and_report(five: Path, prelude: str, expression: str) -> str:
    """Run `start five` through the console entry point in a fresh interpreter, after `prelude`, and
    return `repr(expression)` as it was when the command ended."""
    script = (
        f"import sys\n{prelude}from codex_orchestrator.cli import main\n"
        f"try:\n    main(sys.argv[1:])\nfinally:\n    print(repr(({expression})), file=sys.stderr)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, "start", "five"], cwd=five, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    return run.stderr.strip().splitlines()[-1]
