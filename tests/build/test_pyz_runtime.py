"""codex_orchestrator.runtime: detecting the .pyz we run from, and re-running ourselves."""

from __future__ import annotations

import sys
import types
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from codex_orchestrator import runtime


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    runtime.pyz_path.cache_clear()
    yield
    runtime.pyz_path.cache_clear()


def _fake_shiv(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("environment.json", "{}")
        zf.writestr("_bootstrap/__init__.py", "")
        zf.writestr("__main__.py", "")
    return path


def test_source_checkout_is_not_a_pyz() -> None:
    assert runtime.launcher_info() is None
    assert runtime.pyz_path() is None
    assert runtime.self_command()[-2:] == ["-m", "codex_orchestrator"]


def test_launcher_record_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_main = types.ModuleType("__main__")
    archive = str(tmp_path / "a b" / "codex.pyz")
    setattr(fake_main, runtime.LAUNCHER_ATTR, {"archive": archive, "python": "3.11", "root": ""})
    monkeypatch.setitem(sys.modules, "__main__", fake_main)
    assert runtime.launcher_info() == {"archive": archive, "python": "3.11", "root": ""}
    assert runtime.pyz_path() == Path(archive)
    assert runtime.self_command() == [sys.executable, *runtime.interpreter_flags(), archive]


def test_env_override_must_name_a_shiv_archive(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as zf:
        zf.writestr("x", "y")
    monkeypatch.setenv(runtime.PYZ_ENV, str(plain))
    assert runtime.pyz_path() is None
    runtime.pyz_path.cache_clear()
    archive = _fake_shiv(tmp_path / "real.pyz")
    monkeypatch.setenv(runtime.PYZ_ENV, str(archive))
    assert runtime.pyz_path() == archive.resolve()


def test_plain_shiv_build_is_detected_from_argv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    archive = _fake_shiv(tmp_path / "plain-shiv.pyz")
    monkeypatch.setattr(sys, "argv", [str(archive), "--version"])
    assert runtime.pyz_path() is None  # shiv's bootstrap is not loaded: argv[0] alone is not trusted
    runtime.pyz_path.cache_clear()
    monkeypatch.setitem(sys.modules, "_bootstrap", types.ModuleType("_bootstrap"))
    assert runtime.pyz_path() == archive.resolve()
