"""Hostile files and bytes: damaged runs are shown as damaged and never hide the others, any bytes in
paths and stage output are carried safely, every JSON we print is strict, files honour the umask."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from testkit import CLI, py, write_config

from codex_orchestrator.cli import cli
from codex_orchestrator.mcp_server import manifests
from codex_orchestrator.mcp_server.handlers import ToolBox
from codex_orchestrator.runs.layout import Roots


def _strict(text: str) -> object:
    """Parse as a strict parser would: no NaN/Infinity, no lone surrogates."""

    def refuse(name: str) -> object:
        raise AssertionError(f"non-strict JSON constant {name}")

    value = json.loads(text, parse_constant=refuse)
    text.encode("utf-8")  # no lone surrogates survived decoding
    return value


def _damage(repo: Path, run_id: str, text: str) -> None:
    run = repo / ".runs" / "default" / "cli" / run_id
    run.mkdir(parents=True)
    (run / "manifest.json").write_text(text)


def test_damaged_runs_are_listed_as_damaged_and_the_others_still_show(repo: Path) -> None:
    good = json.loads(CliRunner().invoke(cli, ["start", "--json", "--repo", str(repo)]).stdout)["run_id"]
    _damage(repo, "legacy-deep", '{"status": "x", "y": ' + "[" * 5000 + "]" * 5000 + "}")
    _damage(repo, "legacy-corrupt", '{"status": "fail')
    _damage(repo, "zz-legacy-nan", '{"status": NaN}')
    result = CliRunner().invoke(cli, ["runs", "list", "--json", "--repo", str(repo)])
    assert result.exit_code == 0, result.stderr
    listing = _strict(result.stdout)
    assert isinstance(listing, dict)
    assert [r["run_id"] for r in listing["runs"]] == [good]
    reasons = {d["run_id"]: d["reason"] for d in listing["damaged"]}
    assert set(reasons) == {"legacy-deep", "legacy-corrupt", "zz-legacy-nan"}
    assert "nested deeper" in reasons["legacy-deep"] and "NaN" in reasons["zz-legacy-nan"]
    text = CliRunner().invoke(cli, ["runs", "list", "--repo", str(repo)])
    assert good in text.stdout and "damaged run default/legacy-deep" in text.stderr
    mcp = ToolBox(Roots.resolve(repo)).call("list_runs", {})
    assert [r["run_id"] for r in mcp.structured["runs"]] == [good] and len(mcp.structured["damaged"]) == 3
    items, _ = manifests.list_page(Roots.resolve(repo), None)
    titles = {item.name.split("/")[1]: item.title for item in items}
    assert titles["legacy-deep"].endswith("(damaged)") and "(damaged)" not in titles[good]


def test_a_damaged_metrics_line_is_skipped(repo: Path) -> None:
    CliRunner().invoke(cli, ["start", "--json", "--repo", str(repo)])
    with open(repo / ".runs" / "default" / "metrics.jsonl", "a") as fh:
        fh.write("[" * 10000 + "]" * 10000 + "\n" + '{"run_id": "x", "duration_seconds": NaN}\n')
    result = CliRunner().invoke(cli, ["metrics", "summarize", "--json", "--repo", str(repo)])
    assert result.exit_code == 0 and "skipped 2 damaged line(s)" in result.stderr
    assert _strict(result.stdout)["runs"] == 1  # type: ignore[index]


def test_invalid_utf8_stage_output_is_carried_safely(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    write_config(
        repo,
        {
            "pipelines": [
                {
                    "id": "p",
                    "stages": [
                        {
                            "id": "s",
                            "command": py(
                                "import sys; sys.stdout.buffer.write(b'bad \\xff\\xfe\\n'); sys.exit(2)"
                            ),
                        }
                    ],
                }
            ]
        },
    )
    done = subprocess.run([*CLI, "start", "p", "--json"], cwd=repo, capture_output=True, timeout=60)
    assert done.returncode == 1 and b"Traceback" not in done.stderr
    view = _strict(done.stdout.decode("utf-8"))
    assert isinstance(view, dict) and view["status"] == "failed"
    text = subprocess.run(
        [*CLI, "status", "--run", view["run_id"]], cwd=repo, capture_output=True, timeout=60
    )
    assert text.returncode == 0 and b"Traceback" not in text.stderr


def test_a_repository_path_that_is_not_utf8_is_refused_in_one_sentence(tmp_path: Path) -> None:
    odd = os.fsencode(tmp_path) + b"/caf\xe9"
    os.mkdir(odd)
    for argv in (["start", "--json"], ["runs", "list"], ["plan"]):
        done = subprocess.run([*CLI, *argv], cwd=odd, capture_output=True, timeout=60)
        assert done.returncode == 3, (argv, done.stdout, done.stderr)
        assert b"Traceback" not in done.stderr + done.stdout
        assert b"not valid UTF-8" in done.stderr + done.stdout


def test_files_under_the_runs_root_honour_the_umask(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    write_config(
        repo, {"pipelines": [{"id": "p", "stages": [{"id": "s", "command": "echo secret; exit 1"}]}]}
    )
    done = subprocess.run(
        ["sh", "-c", 'umask 077 && exec "$@"', "sh", *CLI, "start", "p"],
        cwd=repo,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 1
    for path in [*repo.joinpath(".runs").rglob("*"), *repo.joinpath("out").rglob("*")]:
        if path.is_file():
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode & 0o077 == 0, (path, oct(mode))
    error_file = next(repo.glob(".runs/*/cli/*/errors/01-s.json"))
    log = next(repo.glob(".runs/*/cli/*/commands/01-s.log"))
    assert "secret" in json.loads(error_file.read_text())["output_tail"]
    assert stat.S_IMODE(error_file.stat().st_mode) & ~stat.S_IMODE(log.stat().st_mode) == 0


def test_numbers_longer_than_int_converts_in_files_we_read_are_no_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """int() refuses more than 4300 digits: a pyproject.toml, an AGENTS.md templateVersion or Codex's
    config.toml carrying such a number once ended these commands in a traceback."""
    huge = "1" * 5000
    (tmp_path / "pyproject.toml").write_text(f'[project]\nname = "x"\n[tool.x]\nn = {huge}\n')
    (tmp_path / "AGENTS.md").write_text(f"<!-- codex-orchestrator templateVersion: {huge} -->\n")
    (tmp_path / "home" / ".codex").mkdir(parents=True)
    (tmp_path / "home" / ".codex" / "config.toml").write_text(f"x = {huge}\n")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CODEX_HOME", raising=False)
    for argv in (["plan"], ["init", "codex"], ["doctor"]):
        result = CliRunner().invoke(cli, [*argv, "--repo", str(tmp_path)], catch_exceptions=False)
        assert result.exit_code in (0, 1), (argv, result.stdout, result.stderr)
        assert "Traceback" not in result.stdout + result.stderr
    assert "python3 -m compileall" in CliRunner().invoke(cli, ["plan", "--repo", str(tmp_path)]).stdout


def test_a_fifo_where_a_file_is_read_hangs_nothing(tmp_path: Path) -> None:
    """A FIFO blocks open() until a writer comes: `init codex` over a FIFO AGENTS.md waited forever, and
    go.mod is read for `go test` locations."""
    from codex_orchestrator.runs.locations import find

    os.mkfifo(tmp_path / "AGENTS.md")
    result = CliRunner().invoke(cli, ["init", "codex", "--repo", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 3
    assert result.stderr.startswith(
        f"Error: {tmp_path.resolve() / 'AGENTS.md'} exists and is not a regular file"
    )
    os.mkfifo(tmp_path / "go.mod")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "y_test.go").write_text("package sub\n")
    assert find("    y_test.go:6: bad\nFAIL\texample.com/x/sub\t0.1s\n", cwd=tmp_path, root=tmp_path) == []
