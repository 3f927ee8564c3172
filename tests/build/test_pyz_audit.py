"""The audit passes a good archive and names the defect in each deliberately broken one."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import _archive as arc
import _audit
import _bytecode
import _pyzlib as lib
import pytest
from pyz_helpers import Built, make_elf

Info = zipfile.ZipInfo
Mutation = Callable[[Path, Path], None]

OUR = "site-packages/codex_orchestrator/"
ELF_AARCH64 = b"\x7fELF\x02\x01\x01" + b"\0" * 11 + (183).to_bytes(2, "little") + b"\0" * 44
HOST_ELF = lib.ELF_MACHINES[lib.Target.host().machine]


def _drop(predicate: Callable[[str], bool]) -> Mutation:
    def mutate(src: Path, dst: Path) -> None:
        arc.rewrite_archive(src, dst, transform=lambda i, d: None if predicate(i.filename) else (i, d))

    return mutate


def _add(name: str, data: bytes, mode: int = 0o100644) -> Mutation:
    def mutate(src: Path, dst: Path) -> None:
        with zipfile.ZipFile(src) as zf:
            like = zf.getinfo("environment.json")
        arc.rewrite_archive(src, dst, add=[(arc.entry_like(like, name, mode), data)])

    return mutate


def _edit(name: str, edit: Callable[[Info, bytes], tuple[Info, bytes]]) -> Mutation:
    def mutate(src: Path, dst: Path) -> None:
        arc.rewrite_archive(src, dst, transform=lambda i, d: edit(i, d) if i.filename == name else (i, d))

    return mutate


def _first_schema(name: str) -> bool:
    return name.startswith(OUR + "_assets/schemas/") and name.endswith(".json")


def _schema_dropper(src: Path, dst: Path) -> None:
    with zipfile.ZipFile(src) as zf:
        victim = sorted(n for n in zf.namelist() if _first_schema(n))[0]
    _drop(lambda n: n == victim)(src, dst)


def _chmod(mode: int) -> Callable[[Info, bytes], tuple[Info, bytes]]:
    def edit(info: Info, data: bytes) -> tuple[Info, bytes]:
        info.external_attr = mode << 16
        return info, data

    return edit


def _extra_distribution(src: Path, dst: Path) -> None:
    dist = "site-packages/requests-2.32.0.dist-info/"
    metadata = b"Metadata-Version: 2.1\nName: requests\nVersion: 2.32.0\n"
    wheel = b"Wheel-Version: 1.0\nTag: py3-none-any\n"
    record = (
        f"requests-2.32.0.dist-info/METADATA,{arc.record_hash(metadata)},{len(metadata)}\n"
        f"requests-2.32.0.dist-info/WHEEL,{arc.record_hash(wheel)},{len(wheel)}\n"
        "requests-2.32.0.dist-info/RECORD,,\n"
    ).encode()
    with zipfile.ZipFile(src) as zf:
        like = zf.getinfo("environment.json")
    arc.rewrite_archive(
        src,
        dst,
        add=[
            (arc.entry_like(like, dist + "METADATA"), metadata),
            (arc.entry_like(like, dist + "WHEEL"), wheel),
            (arc.entry_like(like, dist + "RECORD"), record),
        ],
    )


def _pyc_edit(name: str, edit: Callable[[bytes], bytes]) -> Mutation:
    return _edit(name, lambda i, d: (i, edit(d)))


def _timestamp_pyc(data: bytes) -> bytes:
    return data[:4] + (0).to_bytes(4, "little") + b"\0" * 8 + data[16:]


def _other_source_pyc(data: bytes) -> bytes:
    return data[:8] + bytes(8) + data[16:]


def _native_table_edited(src: Path, dst: Path) -> None:
    def edit(info: Info, data: bytes) -> tuple[Info, bytes]:
        native = arc.launcher_native_table(data) or {}
        build = arc.launcher_build_table(data) or {}
        native = {k: v for k, v in native.items() if k != "rpds.rpds"}
        return info, arc.render_launcher(build, native)

    _edit("__main__.py", edit)(src, dst)


def _in_libs(name: str, data: bytes) -> Mutation:
    """Add a member to libs.zip (the stored archive of the libraries the plain CLI does not import)."""

    def edit(info: Info, blob: bytes) -> tuple[Info, bytes]:
        with zipfile.ZipFile(io.BytesIO(blob)) as inner:
            items = [(i, inner.read(i)) for i in inner.infolist()]
        items.append((arc.entry_like(items[0][0], name), data))
        return info, arc.zip_bytes(items)

    return _edit("libs.zip", edit)


def _deflated(info: Info, data: bytes) -> tuple[Info, bytes]:
    info.compress_type = zipfile.ZIP_DEFLATED
    return info, data


def _launcher_field(key: str, value: str) -> Mutation:
    def edit(info: Info, data: bytes) -> tuple[Info, bytes]:
        build = arc.launcher_build_table(data) or {}
        return info, arc.render_launcher({**build, key: value}, arc.launcher_native_table(data) or {})

    return _edit("__main__.py", edit)


def _symlink(src: Path, dst: Path) -> None:
    _add(OUR + "_assets/schemas/link.json", b"../../../../../etc/passwd", 0o120777)(src, dst)


BROKEN: dict[str, tuple[Mutation, str, str]] = {
    # name: (mutation, expected finding code, text the finding must name)
    "missing schema": (_schema_dropper, "missing-asset", "_assets/schemas/"),
    "planted .env": (_add(OUR + ".env", b"OPENAI_API_KEY=sk-test\n"), "secret", ".env"),
    "__pycache__": (_add(OUR + "__pycache__/cli.cpython-311.pyc", b"\x00" * 16), "bytecode", "__pycache__"),
    "our tests/": (
        _add("site-packages/tests/test_cli.py", b"def test(): pass\n"),
        "our-tests",
        "tests/test_cli.py",
    ),
    "foreign .so": (
        _add(OUR + "_speedups.cpython-311-aarch64-linux-gnu.so", ELF_AARCH64),
        "foreign-extension",
        "_speedups",
    ),
    "musl-linked .so in a glibc asset": (
        _add(OUR + "_speedups.abi3.so", make_elf(HOST_ELF, ["libc.so"])),
        "foreign-extension",
        "linked against musl libc (libc.so)",
    ),
    "a .so needing a newer glibc than the tag": (
        _add(
            OUR + "_speedups.abi3.so",
            make_elf(HOST_ELF, ["libc.so.6"], {"libc.so.6": ["GLIBC_2.2.5", "GLIBC_2.34"]}),
        ),
        "foreign-extension",
        "needs glibc 2.34",
    ),
    "extra distribution": (_extra_distribution, "unexpected-distribution", "requests"),
    "tampered file": (
        _edit("site-packages/click/core.py", lambda i, d: (i, d + b"\nimport os  # injected\n")),
        "record-mismatch",
        "click/core.py",
    ),
    "symlink": (_symlink, "symlink", "link.json"),
    "world-writable": (_edit(OUR + "cli/__init__.py", _chmod(0o100666)), "world-writable", "cli/__init__.py"),
    "shiv's own __main__": (
        _edit("__main__.py", lambda i, d: (i, b"import _bootstrap\n_bootstrap.bootstrap()\n")),
        "launcher",
        "__main__.py",
    ),
    "bin/ left in": (
        _add("site-packages/bin/codex-orchestrator", b"#!/usr/bin/python3\n"),
        "bin-dir",
        "bin/",
    ),
    "direct_url.json": (
        _add("site-packages/codex_orchestrator-0.1.0.dist-info/direct_url.json", b"{}"),
        "direct-url",
        "direct_url.json",
    ),
    "dev tool": (_add("site-packages/pytest/__init__.py", b""), "dev-tool", "pytest"),
    "unsafe path": (_add("site-packages/../../evil.py", b""), "unsafe-path", "evil.py"),
    # byte code: exactly the build-time pyc beside each packed .py, for the target Python
    "pyc without source": (_add(OUR + "ghost.pyc", b"\xa7\r\r\n" + b"\0" * 12), "bytecode", "ghost.pyc"),
    "pyc outside site-packages": (_add("_bootstrap/__init__.pyc", b"\0" * 16), "bytecode", "_bootstrap"),
    "timestamp pyc": (
        _pyc_edit("site-packages/click/core.pyc", _timestamp_pyc),
        "bytecode-mismatch",
        "core.pyc",
    ),
    "pyc of other source": (
        _pyc_edit("site-packages/click/core.pyc", _other_source_pyc),
        "bytecode-mismatch",
        "source hash",
    ),
    "pyc for another Python": (
        _pyc_edit("site-packages/click/core.pyc", lambda d: (3531).to_bytes(2, "little") + d[2:]),
        "bytecode-mismatch",
        "magic",
    ),
    "missing pyc": (
        _drop(lambda n: n == "site-packages/click/core.pyc"),
        "missing-bytecode",
        "click/core.py",
    ),
    "launcher pyc missing": (_drop(lambda n: n == "__main__.pyc"), "missing-bytecode", "__main__.py"),
    "pyc deflated": (_edit("site-packages/click/core.pyc", _deflated), "stored", "click/core.pyc"),
    "schema deflated": (
        _edit(OUR + "_assets/schemas/manifest.schema.json", _deflated),
        "stored",
        "manifest.schema.json",
    ),
    "native table edited": (_native_table_edited, "launcher", "NATIVE"),
    # libs.zip: every library but ours and click's, stored, named exactly by the launcher
    "libs.zip compressed": (_edit("libs.zip", _deflated), "libs", "stored"),
    "a library outside libs.zip": (_add("site-packages/mcp/extra.py", b""), "libs", "mcp/extra.py"),
    "our package inside libs.zip": (
        _in_libs(OUR + "extra.py", b""),
        "libs",
        "codex_orchestrator/extra.py",
    ),
    "handshake versions edited": (
        _launcher_field("mcp_handshake", "2024-11-05"),
        "launcher",
        "mcp_handshake",
    ),
    "libs.zip changed after the launcher": (
        _in_libs("site-packages/newlib/__init__.py", b""),
        "launcher",
        "libs",
    ),
}


@pytest.mark.slow
def test_good_archive_passes(built: Built) -> None:
    report = _audit.audit(built.pyz, version=built.version, source=built.source)
    assert report.findings == []
    assert report.ok
    assert report.size <= _audit.lib.SIZE_BUDGET
    assert f"codex-orchestrator=={built.version}" in report.distributions
    assert any(d.startswith("mcp==") for d in report.distributions)


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_archive_is_named(case: str, built: Built, tmp_path: Path) -> None:
    mutate, code, needle = BROKEN[case]
    bad = tmp_path / built.pyz.name
    mutate(built.pyz, bad)
    report = _audit.audit(bad, version=built.version, source=built.source)
    assert not report.ok
    hits = [f for f in report.findings if f.code == code]
    assert hits, f"{case}: expected [{code}], got {[str(f) for f in report.findings]}"
    assert any(needle in f.path or needle in f.message for f in hits), [str(f) for f in hits]


@pytest.mark.slow
def test_oversized_archive_is_named(built: Built) -> None:
    size = built.pyz.stat().st_size
    report = _audit.audit(built.pyz, version=built.version, source=built.source, budget=size - 1)
    assert [f.code for f in report.findings] == ["size"]
    assert f"{size:,}" in report.findings[0].message


@pytest.mark.slow
def test_wrong_version_is_named(built: Built) -> None:
    report = _audit.audit(built.pyz, version="9.9.9", source=built.source)
    codes = report.codes()
    assert "version-mismatch" in codes
    assert any("9.9.9" in f.message for f in report.findings if f.code == "version-mismatch")


@pytest.mark.slow
def test_asset_differing_from_source_is_named(built: Built, tmp_path: Path) -> None:
    import shutil

    source = tmp_path / "source"
    shutil.copytree(built.source, source, symlinks=True)
    schema = sorted((source / "schemas").glob("*.json"))[0]
    schema.write_text(schema.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    report = _audit.audit(built.pyz, version=built.version, source=source)
    assert {f.code for f in report.findings} == {"asset-mismatch"}
    assert schema.name in report.findings[0].path


@pytest.mark.slow
def test_every_packed_module_has_its_build_time_pyc(built: Built) -> None:
    with zipfile.ZipFile(built.pyz) as zf:
        names = set(zf.namelist())
        sources = sorted(
            n for n in names if n.endswith(".py") and (n.startswith("site-packages/") or n == "__main__.py")
        )
        assert sources and all(s + "c" in names for s in sources)
        magic = _bytecode.magic_bytes(built.target.python)
        for name in (OUR + "cli/__init__.py", "site-packages/click/core.py", "__main__.py"):
            assert _bytecode.pyc_problem(zf.read(name + "c"), zf.read(name), magic) is None
        assert not [n for n in names if "__pycache__" in n]


def test_pyc_problem_names_each_defect() -> None:
    import importlib.util

    source = b"x = 1\n"
    code = compile(source, "m.py", "exec")
    from importlib._bootstrap_external import _code_to_hash_pyc  # type: ignore[attr-defined]

    good = bytes(_code_to_hash_pyc(code, importlib.util.source_hash(source), False))
    magic = importlib.util.MAGIC_NUMBER
    assert _bytecode.pyc_problem(good, source, magic) is None
    assert "source hash" in (_bytecode.pyc_problem(good, b"x = 2\n", magic) or "")
    checked = bytes(_code_to_hash_pyc(code, importlib.util.source_hash(source), True))
    assert "checked" in (_bytecode.pyc_problem(checked, source, magic) or "")
    assert "timestamp" in (_bytecode.pyc_problem(_timestamp_pyc(good), source, magic) or "")
    assert "magic" in (_bytecode.pyc_problem(good, source, b"\0\0\r\n") or "")
    assert "truncated" in (_bytecode.pyc_problem(good[:10], source, magic) or "")


MUSL = lib.Target.parse("3.11", "musllinux_1_2_x86_64")
GLIBC = lib.Target.parse("3.11", "manylinux_2_17_x86_64")


@pytest.mark.parametrize(
    ("target", "needed", "versions", "problem"),
    [
        (MUSL, ["libgcc_s-f685abf1.so.1", "libc.so"], {"libgcc_s-f685abf1.so.1": ["GCC_3.0"]}, None),
        (MUSL, ["libc.so.6"], {}, "linked against glibc (libc.so.6), not musl"),
        # aarch64's libgcc_s names a GLIBC_2.0 version of its own: not a glibc link
        (
            MUSL,
            ["libgcc_s-0bf60adc.so.1", "libc.so"],
            {"libgcc_s-0bf60adc.so.1": ["GCC_3.3", "GLIBC_2.0"]},
            None,
        ),
        (MUSL, ["libc.so"], {"libc.so.6": ["GLIBC_2.3"]}, "linked against glibc (libc.so.6), not musl"),
        (MUSL, ["libpthread.so.0", "libc.so"], {}, "linked against glibc (libpthread.so.0)"),
        (GLIBC, ["libc.so.6"], {"libc.so.6": ["GLIBC_2.2.5", "GLIBC_2.17", "GLIBC_PRIVATE"]}, None),
        (GLIBC, ["libgcc_s.so.1"], {"libgcc_s.so.1": ["GLIBC_2.99"], "libc.so.6": ["GLIBC_2.17"]}, None),
        (GLIBC, ["libc.so.6"], {"libc.so.6": ["GLIBC_2.2.5", "GLIBC_2.18"]}, "needs glibc 2.18"),
        (
            GLIBC,
            ["libm.so.6"],
            {"libm.so.6": ["GLIBC_2.29"], "libc.so.6": ["GLIBC_2.3.4"]},
            "needs glibc 2.29",
        ),
        (GLIBC, ["libc.musl-x86_64.so.1"], {}, "linked against musl libc (libc.musl-x86_64.so.1)"),
        (GLIBC, [], {}, None),
    ],
)
def test_shared_objects_are_held_to_the_target_libc(
    target: lib.Target, needed: list[str], versions: dict[str, list[str]], problem: str | None
) -> None:
    found = _audit._binary_problem(make_elf(62, needed, versions), target)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_elf_links_reads_the_interpreter_s_own_extensions() -> None:
    """The parser against real files: this interpreter's compiled stdlib modules name the libc they use."""
    import glob
    import os
    import sys

    if not sys.platform.startswith("linux") or not os.confstr("CS_GNU_LIBC_VERSION"):
        pytest.skip("needs a glibc Linux interpreter with compiled stdlib modules")
    files = sorted(glob.glob(os.path.join(os.path.dirname(os.__file__), "lib-dynload", "*.so")))
    assert files, "no compiled stdlib modules beside os.py"
    seen = [arc.elf_links(Path(f).read_bytes()) for f in files]
    assert all(links is not None for links in seen)
    assert any("libc.so.6" in links.needed for links in seen if links)
    assert any(
        v.startswith("GLIBC_2.") for links in seen if links for vs in links.versions.values() for v in vs
    )
    # built here, against this machine's glibc: never taken for musl, at most newer than the 2.17 floor
    problems = [_audit._binary_problem(Path(f).read_bytes(), lib.Target.host()) for f in files]
    assert all(p is None or p.startswith("needs glibc 2.") for p in problems), problems


def test_packed_relocations_raise_the_musl_floor() -> None:
    """musl before 1.2.4 crashes on DT_RELR: an asset holding one tells its launcher to want musl 1.2.4."""
    plain = make_elf(62, ["libc.so"])
    packed = make_elf(62, ["libc.so"], relr=True)
    assert arc.elf_links(packed) == arc.ElfLinks(["libc.so"], {}, True)
    assert arc.elf_links(plain) == arc.ElfLinks(["libc.so"], {}, False)
    assert arc.libc_fields("musl", [b"not elf", plain]) == {}
    assert arc.libc_fields("musl", [plain, packed]) == {"musl": "1.2.4"}
    assert arc.libc_fields("glibc", [packed]) == {}
    assert arc.libc_fields(None, [packed]) == {}


def test_elf_links_never_raises_on_damaged_files() -> None:
    """A hostile or truncated wheel must be named by the audit, never crash it: every damaged variant of a
    valid file reads as links or as None."""
    import random

    good = make_elf(62, ["libc.so.6", "libm.so.6"], {"libc.so.6": ["GLIBC_2.2.5", "GLIBC_2.17"]}, relr=True)
    rng = random.Random(15)
    for _ in range(2000):
        blob = bytearray(good[: rng.randrange(len(good) + 1)] if rng.random() < 0.3 else good)
        for _ in range(rng.randrange(1, 6)):
            if blob:
                blob[rng.randrange(len(blob))] = rng.randrange(256)
        links = arc.elf_links(bytes(blob))
        assert links is None or isinstance(links, arc.ElfLinks)
        problem = _audit._binary_problem(bytes(blob), GLIBC)  # and the audit's reading of it
        assert problem is None or isinstance(problem, str)
