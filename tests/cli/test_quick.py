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
from codex_orchestrator.cli.run_cmds import start


def test_every_option_of_start_is_read_by_the_quick_path_or_left_to_click() -> None:
    """Adding an option to `start` without teaching the quick path (or leaving it to click) fails here."""
    names = set()
    for param in start.params:
        if isinstance(param, click.Argument):
            names.add(param.name)
            continue
        assert isinstance(param, click.Option)
        for opt in param.opts:
            if opt in quick.CLICK_ONLY:
                continue
            table = quick.FLAG_OPTIONS if param.is_flag else quick.VALUE_OPTIONS
            assert table.get(opt) == param.name, f"{opt} of `start` is unknown to the quick path"
            names.add(param.name)
    defaults = start.make_context("start", []).params
    defaults.pop("junit_xml")
    assert names == set(quick.DEFAULTS) and defaults == quick.DEFAULTS  # the same, with click's defaults
    assert set(quick.FLAG_OPTIONS) | set(quick.VALUE_OPTIONS) | {"--junit-xml"} == {
        opt for p in start.params for opt in getattr(p, "opts", []) if opt.startswith("--")
    }


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
]
LEFT_TO_CLICK = [
    ["status"],
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
    [],
]


@pytest.mark.parametrize("argv", READ_BY_BOTH, ids=" ".join)
def test_the_quick_path_reads_a_command_line_as_click_does(argv: list[str]) -> None:
    params = quick.parse(argv)
    assert params is not None
    clicks = start.make_context("start", argv[1:]).params
    clicks.pop("junit_xml", None)
    assert params == clicks


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


def _cli(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI as its own process, reporting on stderr (last line) whether click was imported."""
    script = (  # (atexit runs last what was registered first: the click line ends stderr)
        "import atexit, sys\n"
        "atexit.register(lambda: print('click imported:', 'click' in sys.modules, file=sys.stderr))\n"
        "heavy = ('dataclasses', 'inspect', 'shutil', 'tempfile', 'importlib.resources', 'tomllib')\n"
        "atexit.register(lambda: print('heavy imported:', sorted(set(heavy) & set(sys.modules)),"
        " file=sys.stderr))\n"
        "from codex_orchestrator.cli import main\n"
        "main()\n"
    )
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
    text = re.sub(r"\d+\.\d+(e-?\d+)?", "N", text)
    text = re.sub(r"\d{4}-\d\d-\d\dT[0-9:.]+Z", "TIME", text)
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
