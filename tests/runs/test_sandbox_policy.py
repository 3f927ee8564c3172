"""Run policy: stages wrapped in the run's sandbox, sandbox and origin recorded, the pinned configuration
of an MCP session, the detached driver's check of its manifest, and what resume does with the sandbox."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sandboxkit import FAKE_VERSION, sandbox_calls, write_fake_codex
from testkit import FakeClock, FakeRunner, assert_valid_manifest, py, write_config

from codex_orchestrator import sandbox as sbx
from codex_orchestrator.cli.run_cmds import render_status
from codex_orchestrator.errors import ConfigChangedError, ConfigError, SandboxError
from codex_orchestrator.pipelines.pinning import PinnedConfig
from codex_orchestrator.runs import lifecycle, queries
from codex_orchestrator.runs import manifest as mf
from codex_orchestrator.runs.layout import Roots
from codex_orchestrator.runs.policy import RunPolicy, cli_policy, mcp_policy
from codex_orchestrator.runs.store import FileLock

BOX = sbx.Sandbox("codex", ":workspace", "/opt/codex/bin/codex", "codex-cli 1.2.3")


def _manifest(view: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(view["manifest"]).read_text())
    assert_valid_manifest(data)
    return data


@pytest.fixture
def fake_codex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = write_fake_codex(tmp_path / "fake-bin")
    monkeypatch.setenv("CODEX_CLI_BIN", str(script))
    return script


def test_every_stage_runs_through_the_sandbox_from_the_repository_root(repo: Path, clock: FakeClock) -> None:
    runner = FakeRunner(clock)
    policy = RunPolicy(origin="mcp", sandbox=BOX)
    view = lifecycle.start_run(
        Roots.resolve(repo), "quick", clock=clock, process_runner=runner, policy=policy
    )
    assert view["status"] == "succeeded"
    prefix = ["/opt/codex/bin/codex", "sandbox", "-P", ":workspace", "-C", str(repo), "--"]
    assert [argv[:7] for argv, _ in runner.started] == [prefix] * 3
    assert runner.started[1][0][7:9] == ["/bin/sh", "-c"]  # the shell stage, inside the sandbox
    m = _manifest(view)
    assert m["sandbox"] == BOX.record() and m["origin"] == "mcp"
    assert view["sandbox"] == BOX.record() and view["origin"] == "mcp"
    text = render_status(view)
    assert "origin    mcp" in text and "sandbox   codex sandbox, profile :workspace (codex-cli 1.2.3)" in text


def test_a_cli_run_records_no_sandbox_and_its_origin(repo: Path, clock: FakeClock) -> None:
    runner = FakeRunner(clock)
    view = lifecycle.start_run(Roots.resolve(repo), "quick", clock=clock, process_runner=runner)
    assert runner.started[0][0][0] == sys.executable  # not wrapped
    m = _manifest(view)
    assert m["sandbox"] == {"kind": "none"} and m["origin"] == "cli"
    assert "sandbox   none (stages ran unconfined, as the user)" in render_status(view)


def test_manifests_written_before_the_fields_stay_valid(repo: Path, clock: FakeClock) -> None:
    view = lifecycle.start_run(Roots.resolve(repo), "quick", clock=clock, process_runner=FakeRunner(clock))
    m = _manifest(view)
    del m["sandbox"], m["origin"]
    assert mf.validate(m) == []
    old = mf.status_view(m, Path(view["manifest"]), clock.now())
    assert old["sandbox"] is None and old["origin"] is None
    text = render_status(old)
    assert "origin    not recorded" in text and "sandbox   not recorded" in text
    m["sandbox"] = {"kind": "codex", "profile": "-c x", "binary": "/x"}
    assert mf.validate(m)  # the record's shape is checked


def _stages_repo(root: Path) -> Path:
    root.mkdir()
    (root / "pkg").mkdir()
    write_config(
        root,
        {
            "pipelines": [
                {
                    "id": "where",
                    "stages": [
                        {
                            "id": "env",
                            "command": py("import os; print('profile', os.environ['FAKE_SANDBOX_PROFILE'])"),
                        },
                        {"id": "pkg", "cwd": "pkg", "command": py("import os; print('cwd', os.getcwd())")},
                    ],
                },
                {
                    "id": "refused",
                    "stages": [
                        {
                            "id": "write-home",
                            "command": "echo \"touch: '$HOME/x': Read-only file system\" >&2; exit 1",
                        }
                    ],
                },
            ]
        },
    )
    return root


def test_real_stages_run_wrapped_and_a_refusal_is_named(tmp_path: Path, fake_codex: Path) -> None:
    repo = _stages_repo(tmp_path / "repo")
    roots = Roots.resolve(repo)
    policy = cli_policy("codex", roots.repo)
    assert policy.sandbox == sbx.Sandbox("codex", ":workspace", str(fake_codex), FAKE_VERSION)
    view = lifecycle.start_run(roots, "where", policy=policy)
    assert view["status"] == "succeeded", view
    logs = [Path(str(c["log_path"])).read_text() for c in view["commands"]]
    assert logs == ["profile :workspace\n", f"cwd {repo / 'pkg'}\n"]
    assert [c["opts"] for c in sandbox_calls(fake_codex)[1:]] == [["-P", ":workspace", "-C", str(repo)]] * 2

    failed = lifecycle.start_run(roots, "refused", policy=policy)
    assert failed["status"] == "failed"
    stage = failed["commands"][0]
    assert (
        stage["summary"]
        == "exited with code 1; the Codex sandbox (:workspace) refused it: Read-only file system"
    )
    assert "refused it: Read-only file system" in str(failed["status_detail"])
    error = json.loads(Path(str(stage["error_file"])).read_text())
    assert "ran in the Codex sandbox (profile :workspace)" in error["hint"]
    assert "may write only in the repository" in error["hint"]

    plain = lifecycle.start_run(roots, "refused")  # the same failure without a sandbox blames nobody
    assert plain["commands"][0]["summary"] == "exited with code 1"


# -- pinned configuration ----------------------------------------------------------------------------


def test_pinned_configuration_runs_what_was_loaded_and_refuses_after_an_edit(repo: Path) -> None:
    roots = Roots.resolve(repo)
    pinned = PinnedConfig.pin(roots.repo)
    policy = RunPolicy(origin="mcp", configs=pinned)
    config = json.loads((repo / "codex.orchestrator.json").read_text())
    config["pipelines"].append({"id": "escape", "stages": [{"id": "x", "command": "touch /tmp/escaped"}]})
    write_config(repo, config)
    # what the session loaded is what it shows: no `escape`
    assert "escape" not in pinned.load(roots.repo).pipelines.pipelines
    with pytest.raises(ConfigChangedError) as err:
        lifecycle.start_run(roots, "escape", policy=policy, detach=True)
    assert err.value.message.startswith(
        "codex.orchestrator.json changed on disk since the MCP server started"
    )
    assert "restart the MCP server" in str(err.value.hint) and "--reload-config" in str(err.value.hint)
    assert not (roots.runs / "default").exists()  # nothing was created
    # the CLI follows the file
    assert lifecycle.create_run(roots, "escape")[1]["pipeline_id"] == "escape"


def test_pinning_covers_project_configurations(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "packages" / "a").mkdir(parents=True)
    (repo / "packages" / "b").mkdir(parents=True)
    write_config(repo, {"projects": {"a": {"path": "packages/a"}, "b": {"path": "packages/b"}}})
    write_config(
        repo / "packages" / "a", {"pipelines": [{"id": "pa", "stages": [{"id": "s", "command": "true"}]}]}
    )
    pinned = PinnedConfig.pin(repo)
    assert "pa" in pinned.load(repo / "packages" / "a").pipelines.pipelines
    pinned.verify()
    write_config(
        repo / "packages" / "b", {"pipelines": [{"id": "pb", "stages": [{"id": "s", "command": "true"}]}]}
    )
    assert pinned.changed() == [repo / "packages" / "b" / "codex.orchestrator.json"]
    with pytest.raises(ConfigChangedError, match=r"packages/b/codex\.orchestrator\.json changed on disk"):
        pinned.verify()


def test_an_invalid_configuration_is_pinned_as_its_error(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "codex.orchestrator.json").write_text("{not json")
    pinned = PinnedConfig.pin(repo)
    with pytest.raises(ConfigError, match="invalid JSON"):
        pinned.load(repo)
    with pytest.raises(ConfigChangedError, match="had no configuration when the MCP server started"):
        pinned.load(repo / "elsewhere")


def test_mcp_policy_defaults(repo: Path, fake_codex: Path) -> None:
    served = mcp_policy(repo, sandbox=None, read_only=False, reload_config=False)
    assert served.origin == "mcp" and served.sandbox is not None and served.sandbox.profile == ":workspace"
    assert served.configs.pinned
    assert mcp_policy(repo, sandbox=None, read_only=True, reload_config=True).sandbox == sbx.NO_SANDBOX
    assert not mcp_policy(repo, sandbox="none", read_only=False, reload_config=True).configs.pinned
    with pytest.raises(SandboxError):
        mcp_policy(repo, sandbox="codex::nope", read_only=True, reload_config=False)  # asked: checked


# -- the detached driver ---------------------------------------------------------------------------


def test_the_driver_refuses_a_manifest_changed_after_it_was_claimed(repo: Path, tmp_path: Path) -> None:
    roots = Roots.resolve(repo)
    paths, manifest, _ = lifecycle.create_run(roots, "quick")
    expect = lifecycle.launch_digest(manifest)
    marker = tmp_path / "smuggled"
    tampered = json.loads(paths.manifest.read_text())
    tampered["pipeline"]["stages"][0]["command"] = py(f"open({str(marker)!r}, 'w')")
    paths.manifest.write_text(json.dumps(tampered))
    lock = FileLock(paths.lock)
    assert lock.try_acquire() and lock.fd is not None
    drive = [sys.executable, "-m", "codex_orchestrator", "_drive", "--run-dir", str(paths.dir)]
    done = subprocess.run(
        [*drive, "--lock-fd", str(lock.fd), "--expect", expect], pass_fds=(lock.fd,), timeout=60, check=False
    )
    lock.release()
    assert done.returncode == 1
    final = mf.read(paths.manifest)
    assert final["status"] == "failed" and not marker.exists()
    assert (
        final["status_detail"]
        == "the manifest was changed on disk before its runner started; nothing was run"
    )
    assert not list(paths.commands.iterdir())


# -- resume and the sandbox ------------------------------------------------------------------------


def _failed_run(roots: Roots, policy: RunPolicy) -> str:
    view = lifecycle.start_run(roots, "failing", policy=policy)
    assert view["status"] == "failed"
    return view["run_id"]


def test_resume_keeps_the_recorded_sandbox_but_never_its_recorded_binary(
    repo: Path, fake_codex: Path
) -> None:
    roots = Roots.resolve(repo)
    run_id = _failed_run(roots, cli_policy("codex", roots.repo))
    paths, manifest = queries.load_run(roots, run_id)
    manifest["sandbox"]["binary"] = "/usr/local/bin/not-codex"  # an edit on disk
    paths.manifest.write_text(json.dumps(manifest))
    before = len(sandbox_calls(fake_codex))
    view = lifecycle.resume_run(roots, run_id)
    m = _manifest(view)
    assert m["sandbox"] == {**manifest["sandbox"], "binary": str(fake_codex)}
    event = m["resume_events"][-1]
    assert event["origin"] == "cli" and event["previous_sandbox"]["binary"] == "/usr/local/bin/not-codex"
    assert len(sandbox_calls(fake_codex)) > before  # probed afresh, then the stages ran through it


def test_resume_with_another_sandbox_records_the_change(repo: Path, fake_codex: Path) -> None:
    roots = Roots.resolve(repo)
    run_id = _failed_run(roots, cli_policy(None, roots.repo))
    mcp = RunPolicy(origin="mcp", sandbox=cli_policy("codex", roots.repo).sandbox)
    m = _manifest(lifecycle.resume_run(roots, run_id, policy=mcp))
    assert m["sandbox"]["kind"] == "codex" and m["origin"] == "cli"  # created by the CLI, resumed over MCP
    assert m["resume_events"][-1]["origin"] == "mcp"
    assert m["resume_events"][-1]["previous_sandbox"] == {"kind": "none"}
    m = _manifest(lifecycle.resume_run(roots, run_id, policy=cli_policy("none", roots.repo)))
    assert m["sandbox"] == {"kind": "none"} and m["resume_events"][-1]["previous_sandbox"]["kind"] == "codex"
    m = _manifest(lifecycle.resume_run(roots, run_id))  # same sandbox again: no change recorded
    assert "previous_sandbox" not in m["resume_events"][-1]


def test_resume_refuses_when_the_recorded_sandbox_is_gone(
    repo: Path, fake_codex: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    roots = Roots.resolve(repo)
    run_id = _failed_run(roots, cli_policy("codex", roots.repo))
    monkeypatch.setenv("CODEX_CLI_BIN", str(fake_codex.parent / "gone"))
    with pytest.raises(SandboxError) as err:
        lifecycle.resume_run(roots, run_id)
    assert err.value.message.startswith(
        f"resuming run {run_id} in its sandbox (codex::workspace) needs the Codex CLI"
    )
    assert "--sandbox none" in str(err.value.hint)
    paths, manifest = queries.load_run(roots, run_id)
    assert manifest["status"] == "failed" and manifest["resume_events"] == []
    assert FileLock(paths.lock).try_acquire()  # the claim was given back


def test_a_missing_program_reads_the_same_inside_the_sandbox(tmp_path: Path, fake_codex: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    write_config(
        repo, {"pipelines": [{"id": "p", "stages": [{"id": "lint", "command": ["no-such-linter", "."]}]}]}
    )
    roots = Roots.resolve(repo)
    for policy in (cli_policy(None, roots.repo), cli_policy("codex", roots.repo)):
        stage = lifecycle.start_run(roots, "p", policy=policy)["commands"][0]
        assert (stage["exit_code"], stage["summary"]) == (127, "command not found: 'no-such-linter'")
    assert len(sandbox_calls(fake_codex)) == 1  # the probe only: nothing was started in the sandbox


def test_pinning_watches_the_configuration_file() -> None:
    from codex_orchestrator.pipelines import config, pinning

    assert pinning.CONFIG_FILE == config.CONFIG_FILE
