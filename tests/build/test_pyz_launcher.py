"""The .pyz launcher: wrong interpreter -> exit 3 with a message on stderr; safe extraction roots."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import launcher
import pytest

HOST = {
    "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
    "machine": {"amd64": "x86_64", "arm64": "aarch64"}.get(
        os.uname().machine.lower(), os.uname().machine.lower()
    ),
    "glibc": "2.17",
    "platform": "manylinux_2_17_x86_64",
    "build_id": "b" * 64,
    "asset": "codex-orchestrator-0.1.0-cp311-manylinux_2_17_x86_64.pyz",
    "version": "0.1.0",
}


def test_matching_interpreter_is_accepted() -> None:
    assert launcher.check_interpreter(HOST) is None


def test_wrong_minor_names_the_needed_python() -> None:
    message = launcher.check_interpreter({**HOST, "python": "3.99"})
    assert message is not None
    assert "needs CPython 3.99" in message
    assert f"it is Python {sys.version.split()[0]}" in message
    assert "python3.99 " in message


def test_wrong_cpu_and_old_glibc_are_named() -> None:
    message = launcher.check_interpreter({**HOST, "machine": "riscv64", "glibc": "9.0"})
    assert message is not None
    assert "the CPU is" in message and "glibc is" in message


def test_main_exits_3_without_stdout(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(launcher, "BUILD", {**HOST, "python": "3.99"})
    with pytest.raises(SystemExit) as exc:
        launcher.main()
    assert exc.value.code == 3
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("codex-orchestrator: ") and "CPython 3.99" in err


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("SHIV_ROOT", raising=False)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    return tmp


def test_writable_home_keeps_shiv_default(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    assert launcher.choose_root(HOST, "/x/a.pyz") is None
    assert (home / ".shiv").is_dir()


@pytest.mark.parametrize("home", ["/nonexistent/for/sure", None, "relative/home"])
def test_missing_or_odd_home_uses_private_root(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, home: str | None
) -> None:
    if home is None:
        monkeypatch.delenv("HOME", raising=False)
    else:
        monkeypatch.setenv("HOME", home)
    root = launcher.choose_root(HOST, "/x/a.pyz")
    assert root == str(clean_env / f"codex-orchestrator-{os.getuid()}" / "shiv")
    assert os.path.isabs(root)
    top = Path(root).parent
    assert top.stat().st_mode & 0o777 == 0o700
    assert top.stat().st_uid == os.getuid()
    assert not Path("/nonexistent/for/sure").exists()


def test_private_root_with_loose_mode_is_tightened(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOME", raising=False)
    top = clean_env / f"codex-orchestrator-{os.getuid()}"
    top.mkdir(mode=0o777)
    os.chmod(top, 0o777)
    launcher.choose_root(HOST, "/x/a.pyz")
    assert top.stat().st_mode & 0o777 == 0o700


def test_private_root_symlink_is_refused(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HOME", raising=False)
    elsewhere = tmp_path / "attacker"
    elsewhere.mkdir()
    (clean_env / f"codex-orchestrator-{os.getuid()}").symlink_to(elsewhere)
    with pytest.raises(SystemExit) as exc:
        launcher.choose_root(HOST, "/x/a.pyz")
    assert exc.value.code == 3
    out, err = capsys.readouterr()
    assert out == "" and "refusing" in err and "SHIV_ROOT" in err


@pytest.mark.parametrize("value", ["relative/root", "$CODEX_TEST_UNSET_VAR/shiv", "./x"])
def test_unusable_shiv_root_is_refused(
    value: str, clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CODEX_TEST_UNSET_VAR", raising=False)
    monkeypatch.setenv("SHIV_ROOT", value)
    with pytest.raises(SystemExit) as exc:
        launcher.choose_root(HOST, "/x/a.pyz")
    assert exc.value.code == 3
    out, err = capsys.readouterr()
    assert out == "" and "SHIV_ROOT must be an absolute path" in err


def test_shiv_root_variables_are_expanded(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CODEX_TEST_BASE", str(tmp_path))
    monkeypatch.setenv("SHIV_ROOT", "$CODEX_TEST_BASE/shiv")
    assert launcher.choose_root(HOST, "/x/a.pyz") == f"{tmp_path}/shiv"
    monkeypatch.setenv("SHIV_ROOT", str(tmp_path / "abs"))
    assert launcher.choose_root(HOST, "/x/a.pyz") is None
