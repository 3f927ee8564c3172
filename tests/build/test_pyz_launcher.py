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


# ---------------------------------------------------------------------------- platforms, old Pythons


def test_windows_is_refused_in_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    message = launcher.check_interpreter(HOST)
    assert message is not None and message.startswith("codex-orchestrator does not run on Windows yet")
    assert message.count(". ") == 0 and message.endswith(".")


def test_macos_build_on_linux_names_macos() -> None:
    mac = {**HOST, "os": "macos", "machine": "arm64", "macos": "11.0", "platform": "macosx_11_0_arm64"}
    mac.pop("glibc")
    message = launcher.check_interpreter(mac)
    assert message is not None
    assert "on macOS arm64 (macOS >= 11.0)" in message and "not macOS" in message


MUSL = {**HOST, "musl": "1.2.4", "platform": "musllinux_1_2_x86_64"}
MUSL.pop("glibc")


def _on_musl(monkeypatch: pytest.MonkeyPatch, version: tuple[int, ...] | None) -> None:
    """Make this Linux interpreter look like one on musl `version` (None: the version cannot be read)."""
    monkeypatch.setattr(launcher, "_glibc_version", lambda: None)
    monkeypatch.setattr(launcher, "_musl_version", lambda: version)


def test_musl_asset_runs_on_new_enough_musl(monkeypatch: pytest.MonkeyPatch) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("Linux only")
    _on_musl(monkeypatch, (1, 2, 5))
    seen: dict[str, str] = {}
    assert launcher.check_interpreter(MUSL, seen) is None
    assert seen == {"libc": "musl 1.2.5"}  # for self-check: the platform module cannot tell musl's version
    _on_musl(monkeypatch, None)  # unknown: not refused on a guess
    seen.clear()
    assert launcher.check_interpreter(MUSL, seen) is None and seen == {}


def test_musl_asset_refuses_glibc_and_old_musl(monkeypatch: pytest.MonkeyPatch) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("Linux only")
    monkeypatch.setattr(launcher, "_glibc_version", lambda: (2, 36))
    message = launcher.check_interpreter(MUSL)
    assert (
        message is not None and "(musl >= 1.2.4)" in message and "the C library is glibc, not musl" in message
    )
    _on_musl(monkeypatch, (1, 2, 3))  # DT_RELR objects would crash its loader: refuse before importing them
    message = launcher.check_interpreter(MUSL)
    assert message is not None and "but musl is 1.2.3 (" in message
    assert launcher.check_interpreter({**MUSL, "musl": "1.2"}) is None  # an asset without DT_RELR


def test_glibc_asset_refuses_musl(monkeypatch: pytest.MonkeyPatch) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("Linux only")
    _on_musl(monkeypatch, (1, 2, 5))
    message = launcher.check_interpreter(HOST)
    assert message is not None and "the C library is musl, not glibc" in message
    _on_musl(monkeypatch, None)  # neither glibc nor a musl loader where musl keeps it
    message = launcher.check_interpreter(HOST)
    assert message is not None and "the C library is not glibc" in message


def test_musl_version_is_read_from_the_loader(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The loader holds its version once as a NUL-terminated string; other "1." strings are skipped."""
    loader = tmp_path / "ld-musl.so.1"
    loader.write_bytes(b"\x7fELF\x00junk\x001.x.y\x00%s\x001.2.5\x00Version %s\n\x00" % (b"\x00" * 64, b""))
    monkeypatch.setattr(launcher, "_musl_loader", lambda: str(loader))
    assert launcher._musl_version() == (1, 2, 5)
    # read backwards in steps: found across a step's edge, before a later decoy, in a file of any size
    decoys = b"\x001.9\x00\x001.x.2\x00"
    edge = 400_000 + len(decoys) - (1 << 17)  # where the first step back begins
    for at in (0, edge - 3, edge, 300_000):
        body = bytearray(b"x" * 400_000)
        body[at : at + 7] = b"\x001.2.4\x00"
        loader.write_bytes(bytes(body) + decoys)
        assert launcher._musl_version() == (1, 2, 4), at
    loader.write_bytes(b"\x7fELF no version here")
    assert launcher._musl_version() is None
    loader.unlink()
    assert launcher._musl_version() is None
    monkeypatch.setattr(launcher, "_musl_loader", lambda: None)
    assert launcher._musl_version() is None


def test_musl_loader_is_found_where_alpine_keeps_it_or_where_it_is_mapped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Alpine's /lib/ld-musl-ARCH.so.1 first; else the loader this process mapped (a CPython built against
    a musl elsewhere, as CI's): its path in /proc/self/maps, spaces and all."""
    arch = os.uname().machine
    maps = tmp_path / "maps"
    real_open = open
    monkeypatch.setattr(
        launcher,
        "open",
        lambda path, *a, **k: real_open(maps if path == "/proc/self/maps" else path, *a, **k),
        raising=False,
    )
    monkeypatch.setattr(launcher.os.path, "exists", lambda path: path == f"/lib/ld-musl-{arch}.so.1")
    assert launcher._musl_loader() == f"/lib/ld-musl-{arch}.so.1"
    monkeypatch.setattr(launcher.os.path, "exists", lambda path: False)
    maps.write_text(
        "55d0c0a00000-55d0c0a01000 r--p 00000000 08:01 1234   /opt/py/bin/python3.11\n"
        "7f00a0000000-7f00a0014000 r--p 00000000 00:00 0 \n"
        "7f00a0100000-7f00a0114000 r-xp 00000000 08:01 99     /home/a user/musl/lib/libc.so\n"
    )
    assert launcher._musl_loader() == "/home/a user/musl/lib/libc.so"
    maps.write_text("7f00a0100000-7f00a0114000 r-xp 00000000 08:01 99     /lib/x86_64-linux-gnu/libc.so.6\n")
    assert launcher._musl_loader() is None  # glibc's libc.so.6 is not musl
    maps.unlink()
    assert launcher._musl_loader() is None


RELEASE = {
    "pythons": "3.11,3.12,3.13,3.14",
    "platforms": "manylinux_2_17_x86_64,manylinux_2_17_aarch64,musllinux_1_2_x86_64,musllinux_1_2_aarch64,"
    "macosx_11_0_arm64,macosx_10_15_x86_64",
}
MINOR = f"{sys.version_info[0]}{sys.version_info[1]}"


def test_a_refused_interpreter_is_told_which_asset_fits_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """One sentence still, ending with the fix: the file to download for this Python and platform."""
    if not sys.platform.startswith("linux") or MINOR not in ("311", "312", "313", "314"):
        pytest.skip("needs Linux and a CPython the release covers")
    machine = HOST["machine"]
    monkeypatch.setattr(launcher, "_glibc_version", lambda: (2, 36))
    other = {**HOST, **RELEASE, "python": "3.99"}
    message = launcher.check_interpreter(other)
    assert message is not None and "Run it as `python3.99 " in message
    assert message.endswith(
        f"or download codex-orchestrator-0.1.0-cp{MINOR}-manylinux_2_17_{machine}.pyz, "
        "the asset for this Python and platform."
    )
    musl_name = f"codex-orchestrator-0.1.0-cp{MINOR}-musllinux_1_2_{machine}.pyz"
    musl_asset = {**MUSL, **RELEASE, "python": HOST["python"], "asset": musl_name}
    message = launcher.check_interpreter(musl_asset)
    assert message is not None and "Run it as" not in message
    assert message.endswith(
        f"Download codex-orchestrator-0.1.0-cp{MINOR}-manylinux_2_17_{machine}.pyz instead, "
        "the asset for this platform."
    )
    _on_musl(monkeypatch, (1, 2, 5))
    message = launcher.check_interpreter({**HOST, **RELEASE})
    assert (
        message is not None
        and f"Download codex-orchestrator-0.1.0-cp{MINOR}-musllinux_1_2_{machine}.pyz" in message
    )
    _on_musl(monkeypatch, (1, 2, 3))  # the musl asset is this platform's, but its floor is not met
    message = launcher.check_interpreter(musl_asset)
    assert message is not None and message.endswith(
        f"but musl is 1.2.3 ({sys.executable}). Run it on a system that meets that floor."
    )
    monkeypatch.setattr(launcher, "_glibc_version", lambda: (2, 12))  # older than every glibc asset's floor
    message = launcher.check_interpreter({**musl_asset, "python": "3.99"})
    assert message is not None and message.endswith(
        "or download the asset built for your Python and platform."
    )
    assert "\n" not in message


def _old_python(version: str) -> str:
    import _smoke

    found = _smoke.find_python(version)
    if found is None:
        pytest.skip(f"no Python {version} on this machine")
    return found


@pytest.mark.parametrize("version", ["2.7", "3.6"])
def test_old_python_gets_the_message_and_exit_3(version: str, tmp_path: Path) -> None:
    """The launcher parses on Python 2.7 and 3.6 and answers like any other wrong version."""
    import subprocess

    import _archive as arc

    script = tmp_path / "__main__.py"
    script.write_bytes(arc.render_launcher({**HOST, "python": "3.11"}))
    for python in (_old_python(version), sys.executable):
        proc = subprocess.run(
            [python, "-S", "-E", str(script), "--version"], capture_output=True, text=True, check=False
        )
        if python == sys.executable and HOST["python"] == "3.11":
            continue  # the matching interpreter would go on to import the CLI
        assert proc.returncode == 3, proc.stderr
        assert proc.stdout == ""
        lines = proc.stderr.splitlines()
        assert len(lines) == 1, proc.stderr
        assert "needs CPython 3.11 on Linux" in lines[0] and f"it is Python {version}." in lines[0]
        assert f"Run it as `python3.11 {script}`" in lines[0]


@pytest.mark.parametrize("version", ["2.7", "3.6"])
def test_old_python_reads_no_musl_loader_without_failing(version: str, tmp_path: Path) -> None:
    """Where no musl loader can be read (no /lib/ld-musl-*, no /proc), the musl probes answer None on
    every Python the launcher must answer, 2.7's IOError included: the one-line message, never a traceback."""
    import subprocess

    source = Path(launcher.__file__).read_text(encoding="utf-8")
    probe = (
        "import os, sys\n"
        "ns = {'__name__': 'launcher'}\n"
        "exec(compile(sys.stdin.read(), 'launcher.py', 'exec'), ns)\n"
        "def missing(*a, **k):\n"
        "    raise IOError(2, 'No such file or directory')\n"
        "ns['open'] = missing\n"
        "os.path.exists = lambda path: False\n"
        "sys.stdout.write('%r %r' % (ns['_musl_loader'](), ns['_musl_version']()))\n"
    )
    proc = subprocess.run(
        [_old_python(version), "-S", "-E", "-c", probe],
        input=source,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "None None"


def test_prepared_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    build = {**HOST, "out_version": "0.1.0\n", "out_help": "Usage: codex-orchestrator\n"}
    monkeypatch.delenv(launcher.FASTPATH_ENV, raising=False)
    monkeypatch.setenv("COLUMNS", "120")
    assert launcher.prepared_answer(build, ["--version"]) == "0.1.0\n"
    assert launcher.prepared_answer(build, ["-h"]) == "Usage: codex-orchestrator\n"
    assert launcher.prepared_answer(build, ["--version", "x"]) is None
    assert launcher.prepared_answer(build, ["status"]) is None
    monkeypatch.setenv("COLUMNS", "60")  # click would wrap narrower than the rendered text
    assert launcher.prepared_answer(build, ["--help"]) is None
    assert launcher.prepared_answer(build, ["--version"]) == "0.1.0\n"
    monkeypatch.setenv(launcher.FASTPATH_ENV, "0")
    assert launcher.prepared_answer(build, ["--version"]) is None
    monkeypatch.delenv(launcher.FASTPATH_ENV)
    assert launcher.prepared_answer(dict(HOST), ["--version"]) is None  # nothing rendered: the CLI answers


def test_archive_path_reads_members(tmp_path: Path) -> None:
    import zipfile

    archive = tmp_path / "a.pyz"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("site-packages/x-1.0.dist-info/METADATA", "Name: x\nVersion: 1.0\n")
    path = launcher.ArchivePath(str(archive), "site-packages/x-1.0.dist-info")
    assert path.joinpath("METADATA").read_text().startswith("Name: x")
    assert (path.parent / "x-1.0.dist-info").name == "x-1.0.dist-info"
    with pytest.raises(FileNotFoundError):
        path.joinpath("missing").read_text()
    finder = launcher.ArchiveFinder(str(archive), str(tmp_path / "t"), {}, {"dists": "x-1.0.dist-info"})
    import importlib.metadata

    (dist,) = finder.find_distributions(importlib.metadata.DistributionFinder.Context(name="X"))
    assert dist.version == "1.0"
    assert finder.find_distributions(importlib.metadata.DistributionFinder.Context(name="y")) == []


def _archive_with_libs(tmp_path: Path) -> tuple[Path, int]:
    """An archive whose libs.zip (stored) holds the package `libmod` and the distribution `libmod`."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as inner:
        inner.writestr("site-packages/libmod/__init__.py", "VALUE = 42\n")
        inner.writestr("site-packages/libmod-2.0.dist-info/METADATA", "Name: libmod\nVersion: 2.0\n")
    libs = buffer.getvalue()
    archive = tmp_path / "a.pyz"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("site-packages/hot/__init__.py", "")
        zf.writestr(zipfile.ZipInfo("libs.zip"), libs)  # ZipInfo: stored
    return archive, len(libs)


def _finder_with_libs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, int, dict[str, str], Path, launcher.ArchiveFinder]:
    """That archive, its launcher fields, an empty extraction folder, and a finder over them."""
    archive, size = _archive_with_libs(tmp_path)
    build = {"libs": "libmod", "libs_dists": "libmod-2.0.dist-info", "libs_size": str(size)}
    target = tmp_path / "extracted"
    monkeypatch.setattr(sys, "path", [str(archive) + "/site-packages", *sys.path])
    return archive, size, build, target, launcher.ArchiveFinder(str(archive), str(target), {}, build)


def test_libs_zip_is_copied_out_on_first_import_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.metadata

    archive, size, build, target, finder = _finder_with_libs(tmp_path, monkeypatch)
    assert finder.find_spec("hot") is None and finder.find_spec("json") is None
    assert not target.exists()  # nothing copied for a module outside libs.zip
    monkeypatch.setattr(sys, "meta_path", [finder, *sys.meta_path])
    monkeypatch.delitem(sys.modules, "libmod", raising=False)
    import libmod  # type: ignore[import-not-found]

    assert libmod.VALUE == 42
    copied = target / "libs.zip"
    assert copied.stat().st_size == size
    assert sys.path[1] == str(copied) + "/site-packages"  # right after the archive's own entry
    assert libmod.__file__.startswith(str(copied))
    (dist,) = finder.find_distributions(importlib.metadata.DistributionFinder.Context(name="libmod"))
    assert dist.version == "2.0"

    before = copied.stat().st_mtime_ns
    again = launcher.ArchiveFinder(str(archive), str(target), {}, build)
    assert again.mount() == str(copied) and copied.stat().st_mtime_ns == before  # reused, not copied
    copied.write_bytes(b"truncated")
    assert launcher.ArchiveFinder(str(archive), str(target), {}, build).mount() == str(copied)
    assert copied.stat().st_size == size  # a copy of the wrong size is replaced


def test_threads_importing_from_libs_zip_at_once_copy_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mcp serve` imports on several threads: one copies libs.zip out, the others wait for it."""
    import threading

    _, size, _, target, finder = _finder_with_libs(tmp_path, monkeypatch)
    copies = []
    real_copy = finder._copy_out

    def slow_copy(member: str, dest: str, source: str) -> None:
        copies.append(member)
        threading.Event().wait(0.05)  # long enough for the other threads to arrive meanwhile
        real_copy(member, dest, source)

    monkeypatch.setattr(finder, "_copy_out", slow_copy)
    threads = [threading.Thread(target=finder.find_spec, args=("libmod.sub",)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert copies == ["libs.zip"]
    assert sys.path.count(str(target / "libs.zip") + "/site-packages") == 1
    assert (target / "libs.zip").stat().st_size == size


@pytest.mark.parametrize(
    ("stdout", "code", "stderr"),
    [
        ("closed", 0, ""),  # `>&-`: the answer is dropped, as the commands drop their output
        ("reader gone", 141, ""),  # `| head -c0`
        (
            "full",
            3,
            "Error: cannot write to standard output: the disk is full\n"
            "Fix: free space where standard output goes, or send it elsewhere\n",
        ),
    ],
)
def test_a_prepared_answer_meets_standard_output_as_the_commands_do(
    stdout: str, code: int, stderr: str
) -> None:
    """`--version`/`--help` answered by the launcher itself end as the CLI's commands do."""
    import subprocess

    build = str(Path(launcher.__file__).parent)
    script = f"import sys; sys.path.insert(0, {build!r}); import launcher; launcher._answer('0.1.0\\n')"
    argv = [sys.executable, "-c", script]
    if stdout == "closed":
        proc = subprocess.run(["sh", "-c", 'exec "$@" >&-', "sh", *argv], capture_output=True, timeout=60)
    elif stdout == "full":
        with open("/dev/full", "wb") as full:
            proc = subprocess.run(argv, stdout=full, stderr=subprocess.PIPE, timeout=60)
    else:
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            proc = subprocess.run(argv, stdout=write_end, stderr=subprocess.PIPE, timeout=60)
        finally:
            os.close(write_end)
    assert (proc.returncode, proc.stderr.decode()) == (code, stderr)
