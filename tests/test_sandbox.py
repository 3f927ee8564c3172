"""sandbox.py: parsing `--sandbox`, the argv prefix, the manifest record, and the availability probe
(against a fake codex; the real one is exercised in tests/mcp_server/test_mcp_sandbox.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sandboxkit import FAKE_VERSION, sandbox_calls, write_fake_codex

from codex_orchestrator import sandbox as sbx
from codex_orchestrator.errors import ManifestError, SandboxError, UsageError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("none", ("none", None)),
        ("codex", ("codex", ":workspace")),
        ("codex::read-only", ("codex", ":read-only")),
        ("codex::workspace", ("codex", ":workspace")),
        ("codex:ci-strict", ("codex", "ci-strict")),
    ],
)
def test_parse_accepts_the_documented_forms(text: str, expected: tuple[str, str | None]) -> None:
    assert sbx.parse(text) == expected


@pytest.mark.parametrize(
    "text", ["", "bwrap", "codex:", "codex:-P", "codex:a b", "codex:../x", "None", "codexx"]
)
def test_parse_refuses_anything_else(text: str) -> None:
    with pytest.raises(UsageError) as err:
        sbx.parse(text)
    assert "is not a sandbox" in err.value.message and "codex:PROFILE" in str(err.value.hint)


def test_wrap_runs_from_the_repository_root_and_changes_into_a_stage_folder(tmp_path: Path) -> None:
    box = sbx.Sandbox("codex", ":workspace", "/opt/codex/bin/codex", "codex-cli 1.0")
    repo = tmp_path / "repo"
    assert box.wrap(["make", "test"], cwd=repo, workspace=repo) == [
        "/opt/codex/bin/codex", "sandbox", "-P", ":workspace", "-C", str(repo), "--", "make", "test",
    ]  # fmt: skip
    wrapped = box.wrap(["make"], cwd=repo / "pkg", workspace=repo)
    assert wrapped[:7] == ["/opt/codex/bin/codex", "sandbox", "-P", ":workspace", "-C", str(repo), "--"]
    assert wrapped[7:10] == ["/bin/sh", "-c", sbx._CD_SH] and wrapped[-2:] == [str(repo / "pkg"), "make"]
    assert sbx.NO_SANDBOX.wrap(["make"], cwd=repo / "pkg", workspace=repo) == ["make"]


def test_the_cd_wrapper_runs_the_command_in_the_stage_folder(tmp_path: Path) -> None:
    (tmp_path / "pkg dir").mkdir()
    inner = ["/bin/sh", "-c", sbx._CD_SH, "x", str(tmp_path / "pkg dir"), "pwd"]
    assert subprocess.run(inner, capture_output=True, text=True, check=True).stdout.strip() == str(
        tmp_path / "pkg dir"
    )
    missing = ["/bin/sh", "-c", sbx._CD_SH, "x", str(tmp_path / "gone"), "pwd"]
    assert subprocess.run(missing, capture_output=True, text=True).returncode == 126


def test_record_round_trip_and_descriptions() -> None:
    box = sbx.Sandbox("codex", ":workspace", "/usr/bin/codex", "codex-cli 0.169.0")
    record = box.record()
    assert record == {
        "kind": "codex",
        "tool": "codex",
        "version": "codex-cli 0.169.0",
        "profile": ":workspace",
        "binary": "/usr/bin/codex",
    }
    assert sbx.Sandbox.from_record(record) == box
    assert sbx.Sandbox.from_record(None) == sbx.NO_SANDBOX == sbx.Sandbox.from_record({"kind": "none"})
    assert box.describe() == "codex sandbox, profile :workspace (codex-cli 0.169.0)"
    assert sbx.NO_SANDBOX.describe() == "none (stages ran unconfined, as the user)"
    assert sbx.describe_record(None) == "not recorded"
    wide = sbx.Sandbox("codex", ":danger-full-access", "/usr/bin/codex", "v")
    assert not wide.confined and box.confined and "unconfined" in wide.describe()
    assert box.spec == "codex::workspace" and sbx.NO_SANDBOX.spec == "none"


@pytest.mark.parametrize(
    "record",
    [
        {"kind": "bwrap"},
        {"kind": "codex", "profile": "--config=x", "binary": "/usr/bin/codex"},
        {"kind": "codex", "profile": ":workspace", "binary": "relative/codex"},
        {"kind": "codex", "profile": ":workspace"},
        "codex",
    ],
)
def test_a_malformed_record_is_refused(record: object) -> None:
    with pytest.raises(ManifestError):
        sbx.Sandbox.from_record(record)


def test_resolve_probes_the_sandbox_and_records_the_version(tmp_path: Path) -> None:
    fake = write_fake_codex(tmp_path / "bin")
    repo = tmp_path / "repo"
    repo.mkdir()
    from codex_orchestrator.codex.binary import CodexBinary

    box = sbx.resolve("codex", repo, find=lambda: CodexBinary(str(fake), "CODEX_CLI_BIN", fake))
    assert box == sbx.Sandbox("codex", ":workspace", str(fake), FAKE_VERSION)
    [call] = sandbox_calls(fake)
    assert call["opts"] == ["-P", ":workspace", "-C", str(repo)] and call["cmd"] == [
        "/bin/sh",
        "-c",
        "exit 0",
    ]
    assert sbx.resolve("none", repo) is sbx.NO_SANDBOX
    assert len(sandbox_calls(fake)) == 1  # `none` probes nothing


def test_resolve_without_codex_says_what_to_do(tmp_path: Path) -> None:
    from codex_orchestrator.codex.binary import CodexBinary

    with pytest.raises(SandboxError) as err:
        sbx.resolve("codex", tmp_path, find=lambda: CodexBinary("codex", "PATH", None))
    assert (
        err.value.message == "--sandbox codex needs the Codex CLI, but the Codex CLI ('codex') is not on PATH"
    )
    assert "npm install -g @openai/codex" in str(err.value.hint) and "--sandbox none" in str(err.value.hint)


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        ("codex::nope", "unknown built-in profile `:nope`", "define ':nope' under [permissions]"),
        ("codex:workspace", "requires a `[permissions]` table", "--sandbox codex::workspace"),
    ],
)
def test_resolve_names_a_bad_profile(tmp_path: Path, text: str, message: str, hint: str) -> None:
    fake = write_fake_codex(tmp_path / "bin")
    from codex_orchestrator.codex.binary import CodexBinary

    with pytest.raises(SandboxError) as err:
        sbx.resolve(text, tmp_path, find=lambda: CodexBinary(str(fake), "CODEX_CLI_BIN", fake))
    assert err.value.message.startswith("the Codex sandbox (profile ") and message in err.value.message
    assert hint in str(err.value.hint)


def test_resolve_reports_a_sandbox_that_cannot_be_set_up(tmp_path: Path) -> None:
    fake = write_fake_codex(tmp_path / "bin", broken_sandbox=True)
    from codex_orchestrator.codex.binary import CodexBinary

    with pytest.raises(SandboxError) as err:
        sbx.resolve("codex", tmp_path, find=lambda: CodexBinary(str(fake), "CODEX_CLI_BIN", fake))
    assert (
        err.value.message == "the Codex sandbox (profile :workspace) does not work here: sandbox setup failed"
    )
    assert "user namespaces" in str(err.value.hint) and "--sandbox none" in str(err.value.hint)


def test_refusal_markers() -> None:
    assert sbx.refusal("touch: cannot touch '/root/x': Read-only file system\n") == "Read-only file system"
    assert sbx.refusal("PermissionError: [Errno 1] Operation not permitted") == "Operation not permitted"
    assert sbx.refusal("AssertionError: 1 != 2") is None
