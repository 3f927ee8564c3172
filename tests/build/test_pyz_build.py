"""build/pyz: targets, locks, RECORD clean-up, the launcher template, and byte-for-byte reproducibility."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import _archive as arc
import _build
import _pyzlib as lib
import pytest
from pyz_helpers import REPO, Built, do_build, snapshot_source
from testkit import write_files

# ------------------------------------------------------------------------------------------ targets


def test_target_names_and_tags() -> None:
    t = lib.Target.parse("3.12", "manylinux_2_17_aarch64")
    assert t.pytag == "cp312"
    assert t.machine == "aarch64"
    assert t.asset_name("1.2.0rc1") == "codex-orchestrator-1.2.0rc1-cp312-manylinux_2_17_aarch64.pyz"
    plats = t.pip_platforms()
    assert plats[:2] == ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]
    assert "manylinux_2_28_aarch64" not in plats and "manylinux1_aarch64" not in plats
    x86 = lib.Target.parse("3.11", "manylinux_2_17_x86_64").pip_platforms()
    assert {"manylinux2010_x86_64", "manylinux1_x86_64", "manylinux_2_5_x86_64"} <= set(x86)
    args = t.pip_target_args()
    assert args[:3] == ["--only-binary=:all:", "--python-version", "3.12"]
    assert args[args.index("--abi") : args.index("--abi") + 2] == ["--abi", "cp312"]


def test_macos_and_314_targets() -> None:
    arm = lib.Target.parse("3.14", "macosx_11_0_arm64")
    assert arm.os == "macos" and arm.machine == "arm64" and arm.pytag == "cp314"
    plats = arm.pip_platforms()
    assert plats[:2] == ["macosx_11_0_arm64", "macosx_11_0_universal2"]
    assert "macosx_10_9_universal2" in plats and "macosx_10_9_arm64" not in plats
    assert "macosx_12_0_arm64" not in plats
    intel = lib.Target.parse("3.11", "macosx_10_15_x86_64")
    assert intel.pip_platforms()[:2] == ["macosx_10_15_x86_64", "macosx_10_15_universal2"]
    assert intel.marker_environment()["sys_platform"] == "darwin"
    assert intel.launcher_fields() == {
        "python": "3.11",
        "platform": "macosx_10_15_x86_64",
        "os": "macos",
        "machine": "x86_64",
        "macos": "10.15",
        "pythons": "3.11,3.12,3.13,3.14",
        "platforms": ",".join(lib.DEFAULT_PLATFORMS),
    }
    assert intel.extension_ok("a/_x.cpython-311-darwin.so")
    assert not intel.extension_ok("a/_x.cpython-311-x86_64-linux-gnu.so")
    assert lib.Target.parse("3.11", "manylinux_2_17_x86_64").launcher_fields()["glibc"] == "2.17"
    for platform in lib.DEFAULT_PLATFORMS:
        for python in lib.SUPPORTED_PYTHONS:
            name = lib.Target.parse(python, platform).asset_name("1.0.0")
            assert lib.parse_asset_name(name) == ("1.0.0", lib.Target(python, platform))


def test_musllinux_targets() -> None:
    """musllinux_1_2 assets take musllinux_1_1 wheels too (pydantic-core publishes only those), load
    -linux-musl extensions, and tell the launcher to want musl."""
    t = lib.Target.parse("3.13", "musllinux_1_2_aarch64")
    assert t.family == "musllinux" and t.libc == "musl" and t.os == "linux"
    assert t.pip_platforms() == ["musllinux_1_2_aarch64", "musllinux_1_1_aarch64", "musllinux_1_0_aarch64"]
    assert t.launcher_fields() == {
        "python": "3.13",
        "platform": "musllinux_1_2_aarch64",
        "os": "linux",
        "machine": "aarch64",
        "musl": "1.2",
        "pythons": "3.11,3.12,3.13,3.14",
        "platforms": ",".join(lib.DEFAULT_PLATFORMS),
    }
    assert t.extension_ok("a/_x.cpython-313-aarch64-linux-musl.so")
    assert not t.extension_ok("a/_x.cpython-313-aarch64-linux-gnu.so")
    assert lib.Target.parse("3.11", "manylinux_2_17_x86_64").libc == "glibc"
    assert lib.Target.parse("3.11", "macosx_11_0_arm64").libc is None
    families = {lib.Target.parse("3.11", p).family for p in lib.DEFAULT_PLATFORMS}
    assert families == {"manylinux", "musllinux", "macosx"}


def test_the_host_target_follows_the_c_library(monkeypatch: pytest.MonkeyPatch) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("Linux only")
    glibc = lib.Target.host("3.12")
    assert glibc.family == "manylinux" and glibc.platform.startswith("manylinux_2_17_")
    monkeypatch.setattr(lib.os, "confstr", lambda name: (_ for _ in ()).throw(ValueError(name)))
    musl = lib.Target.host("3.12")
    assert musl.platform == f"musllinux_1_2_{glibc.machine}"


@pytest.mark.parametrize(
    ("python", "platform"),
    [
        ("3.10", "manylinux_2_17_x86_64"),
        ("3.11", "win_amd64"),
        ("3.11", "musllinux_1_2_arm64"),
        ("3.11", "macosx_11_0_aarch64"),
        ("3.11", "manylinux_2_17_arm64"),
    ],
)
def test_unsupported_targets_are_refused(python: str, platform: str) -> None:
    with pytest.raises(lib.BuildError) as exc:
        lib.Target.parse(python, platform)
    assert exc.value.exit_code == 2
    assert exc.value.hint


def test_asset_name_round_trip() -> None:
    t = lib.Target.parse("3.13", "manylinux_2_17_x86_64")
    assert lib.parse_asset_name(t.asset_name("0.1.0")) == ("0.1.0", t)
    assert lib.parse_asset_name("codex-orchestrator-0.1.0.pyz") is None
    assert lib.parse_asset_name("codex-orchestrator-0.1.0-cp39-manylinux_2_17_x86_64.pyz") is None


def test_extension_names() -> None:
    t = lib.Target.parse("3.11", "manylinux_2_17_x86_64")
    assert t.extension_ok("a/_x.cpython-311-x86_64-linux-gnu.so")
    assert not t.extension_ok("a/_x.cpython-312-x86_64-linux-gnu.so")
    assert not t.extension_ok("a/_x.cpython-311-aarch64-linux-gnu.so")
    assert t.extension_ok("a/_rust.abi3.so")


# -------------------------------------------------------------------------------------------- locks


def test_runtime_lock_is_complete_and_hashed() -> None:
    entries = lib.parse_lock(lib.RUNTIME_LOCK)
    names = {e.name for e in entries}
    assert {"click", "jsonschema", "mcp"} <= names
    assert all(e.hashes and all(h.startswith("sha256:") for h in e.hashes) for e in entries)
    for python in lib.SUPPORTED_PYTHONS:
        chosen = {
            e.name for e in lib.entries_for_target(entries, lib.Target.parse(python, "manylinux_2_17_x86_64"))
        }
        assert "pywin32" not in chosen
        assert {"mcp", "pydantic-core", "cryptography", "rpds-py"} <= chosen


def test_tools_lock_pins_shiv_and_pip() -> None:
    versions = lib.tools_versions()
    assert versions["shiv"] == "1.0.8"
    assert "pip" in versions and "hatchling" in versions


def test_lock_parser_rejects_unpinned(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    lock.write_text("click>=8 \\\n    --hash=sha256:abc\n", encoding="utf-8")
    with pytest.raises(lib.BuildError, match="not pinned"):
        lib.parse_lock(lock)
    lock.write_text(
        "click==8.1.0 ; sys_platform == 'win32' \\\n    --hash=sha256:abc \\\n    --hash=sha256:def\n"
    )
    (entry,) = lib.parse_lock(lock)
    assert entry.marker == "sys_platform == 'win32'"
    assert entry.hashes == ("sha256:abc", "sha256:def")
    assert lib.entries_for_target([entry], lib.Target.host("3.11")) == []


def test_source_date_epoch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1234")
    assert lib.source_date_epoch(tmp_path) == 1234
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    with pytest.raises(lib.BuildError, match="commit time"):
        lib.source_date_epoch(tmp_path)


# --------------------------------------------------------------------------------- site-packages


def test_normalise_site_packages(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "bin").mkdir(parents=True)
    (site / "bin" / "tool").write_text("#!/abs/builder/python\n")
    (site / "pkg" / "__pycache__").mkdir(parents=True)
    (site / "pkg" / "__init__.py").write_text("")
    (site / "pkg" / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"x")
    info = site / "pkg-1.0.dist-info"
    info.mkdir()
    (info / "direct_url.json").write_text("{}")
    (info / "RECORD").write_text(
        "../../bin/tool,sha256=x,1\r\npkg/__init__.py,sha256=y,0\r\n"
        "pkg-1.0.dist-info/direct_url.json,sha256=z,2\r\npkg-1.0.dist-info/RECORD,,\r\n"
    )
    os.chmod(site / "pkg" / "__init__.py", 0o666)
    removed = arc.normalise_site_packages(site)
    assert "bin/tool" in removed and "pkg-1.0.dist-info/direct_url.json" in removed
    assert not (site / "bin").exists() and not (site / "pkg" / "__pycache__").exists()
    assert (info / "RECORD").read_bytes() == b"pkg/__init__.py,sha256=y,0\r\npkg-1.0.dist-info/RECORD,,\r\n"
    assert (site / "pkg" / "__init__.py").stat().st_mode & 0o777 == 0o644
    assert (site / "pkg").stat().st_mode & 0o777 == 0o755


def test_launcher_template_round_trip() -> None:
    table = {"python": "3.11", "version": "0.1.0", "build_id": "ab" * 32, "out_help": "Usage: x\n  \u00e9\n"}
    native = {"rpds.rpds": ["site-packages/rpds/rpds.cpython-311-x86_64-linux-gnu.so"]}
    rendered = arc.render_launcher(table, native)
    assert rendered.isascii()
    assert arc.launcher_build_table(rendered) == table
    assert arc.launcher_native_table(rendered) == native
    assert arc.launcher_matches_template(rendered)
    assert not arc.launcher_matches_template(rendered + b"\nprint('x')\n")
    compile(rendered, "__main__.py", "exec")


def test_native_table_and_namespace_dirs(tmp_path: Path) -> None:
    suffixes = lib.Target.parse("3.11", "manylinux_2_17_x86_64").extension_suffixes()
    names = [
        "rpds/rpds.cpython-311-x86_64-linux-gnu.so",
        "rpds/__init__.py",
        "_cffi_backend.cpython-311-x86_64-linux-gnu.so",
        "cffi.libs/libffi-1234.so.8",
        "cryptography/hazmat/bindings/_rust.abi3.so",
        "pkg-1.0.data/scripts/x.so",
    ]
    table = arc.native_table(names, suffixes)
    assert sorted(table) == ["_cffi_backend", "cryptography.hazmat.bindings._rust", "rpds.rpds"]
    assert table["rpds.rpds"] == [
        "site-packages/rpds/rpds.cpython-311-x86_64-linux-gnu.so",
        "site-packages/cffi.libs/libffi-1234.so.8",
    ]
    rels = ("ns/sub/mod.py", "ns/sub/__init__.py", "ns2/mod.py", "pkg/__init__.py", "x-1.dist-info/RECORD")
    site = write_files(tmp_path / "site", dict.fromkeys(rels, ""))
    assert arc.namespace_dirs(site) == ["ns", "ns2"]


def test_macho_cpus() -> None:
    thin = b"\xcf\xfa\xed\xfe" + (0x0100000C).to_bytes(4, "little") + b"\0" * 24
    fat = b"\xca\xfe\xba\xbe" + (2).to_bytes(4, "big")
    for cpu in (0x01000007, 0x0100000C):
        fat += cpu.to_bytes(4, "big") + b"\0" * 16
    assert arc.macho_cpus(thin) == {0x0100000C}
    assert arc.macho_cpus(fat) == {0x01000007, 0x0100000C}
    assert arc.macho_cpus(b"\x7fELF" + b"\0" * 60) is None


def test_rewrite_archive_canonical_order(tmp_path: Path) -> None:
    src = tmp_path / "a.pyz"
    with open(src, "wb") as fh:
        fh.write(b"#!/usr/bin/env python3.11\n")
        with zipfile.ZipFile(fh, "w") as zf:
            for name in (
                "__main__.py",
                "_bootstrap/z.py",
                "environment.json",
                "_bootstrap/a.py",
                "site-packages/m",
            ):
                zf.writestr(name, name)
    dst = tmp_path / "b.pyz"
    arc.rewrite_archive(src, dst, canonical_order=True)
    with zipfile.ZipFile(dst) as zf:
        names = zf.namelist()
    assert names == [
        "site-packages/m",
        "_bootstrap/a.py",
        "_bootstrap/z.py",
        "environment.json",
        "__main__.py",
    ]
    assert arc.read_prefix(dst) == b"#!/usr/bin/env python3.11\n"


# --------------------------------------------------------------------------------- real builds


@pytest.mark.slow
def test_build_is_reproducible(built: Built, tmp_path: Path) -> None:
    """A second build from another copy of the same sources, another umask and cwd: same bytes."""
    source = snapshot_source(tmp_path / "elsewhere" / "checkout", origin=built.source)
    old_umask = os.umask(0o077)
    old_cwd = Path.cwd()
    try:
        os.chdir(tmp_path)
        again = do_build(source, tmp_path / "out")
    finally:
        os.chdir(old_cwd)
        os.umask(old_umask)
    assert again.pyz.name == built.pyz.name
    assert again.sha256 == built.sha256
    assert again.pyz.read_bytes() == built.pyz.read_bytes()
    sidecar = again.pyz.with_name(again.pyz.name + ".sha256").read_text()
    assert sidecar == f"{again.sha256}  {again.pyz.name}\n"


@pytest.mark.slow
def test_build_contents(built: Built) -> None:
    assert built.pyz.stat().st_mode & 0o777 == 0o755
    assert arc.read_prefix(built.pyz) == f"#!/usr/bin/env python{built.target.python}\n".encode()
    with zipfile.ZipFile(built.pyz) as zf:
        infos = zf.infolist()
        table = arc.launcher_build_table(zf.read("__main__.py"))
    assert {arc.file_mode(i) for i in infos if not i.is_dir()} == {0o100644}
    assert {arc.file_mode(i) for i in infos if i.is_dir()} <= {0o40755}
    assert table is not None and table["version"] == built.version and table["python"] == built.target.python
    assert table["bytecode"] == f"cpython-{built.target.pytag[2:]}"
    assert table["out_version"] == f"{built.version}\n" and table["out_help"].startswith("Usage:")
    assert len({i.date_time for i in infos}) == 1


def test_cli_usage_errors() -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "build" / "pyz"), "--python", "3.9"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2
    assert "unsupported --python '3.9'" in out.stderr and "fix:" in out.stderr
    assert "Traceback" not in out.stderr


def test_byte_code_needs_the_target_python(monkeypatch: pytest.MonkeyPatch) -> None:
    import _smoke

    monkeypatch.setattr(_smoke, "find_python", lambda minor, libc=None: None)
    target = lib.Target.parse("3.14", "manylinux_2_17_x86_64")
    with pytest.raises(lib.BuildError) as exc:
        _build.find_compiler(target, "require")
    assert "no CPython 3.14" in exc.value.message and "--bytecode none" in exc.value.hint
    assert _build.find_compiler(target, "auto") is None
    assert _build.find_compiler(target, "none") is None


def test_byte_code_is_compiled_on_this_machine_s_own_c_library(monkeypatch: pytest.MonkeyPatch) -> None:
    """CODEX_ORCHESTRATOR_PYTHON311 may name a musl CPython for smoking a musl asset; the byte code of every
    asset is still compiled by this machine's own kind of interpreter, as a rebuild elsewhere would be."""
    import _smoke

    minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    own = lib.host_libc()
    asked: list[str | None] = []

    def find(m: str, libc: str | None = None) -> str | None:
        asked.append(libc)
        return sys.executable if libc == own else "/elsewhere/musl/python"

    monkeypatch.setattr(_smoke, "find_python", find)
    target = lib.Target.parse(minor, "musllinux_1_2_x86_64")
    assert _build.find_compiler(target, "require") == sys.executable
    assert asked == [own]


def test_byte_code_magic_table_matches_this_python() -> None:
    import importlib.util

    import _bytecode

    minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert _bytecode.magic_bytes(minor) == importlib.util.MAGIC_NUMBER
