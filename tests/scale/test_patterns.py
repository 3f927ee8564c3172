"""The learning library: each codemod and lint rule against its before/after fixtures, the versioned
index, dry-run diffs, atomic in-place rewrites, and never touching anything outside the given path."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from codex_orchestrator.cli import cli
from codex_orchestrator.scale import patterns
from codex_orchestrator.scale.patterns.codemods import UNITTEST_ALIASES

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "patterns"
CODEMODS = ["none-comparison", "unittest-aliases"]
LINT_RULES = ["mutable-default-arg", "bare-except"]


def invoke(*args: str) -> object:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def copy_fixture(name: str, which: str, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / "module.py"
    shutil.copyfile(FIXTURES / name / which, target)
    return target


# ------------------------------------------------------------------------------------------ index


def test_index_is_versioned_and_matches_the_implementations() -> None:
    data = patterns.catalog()
    assert data["schema_version"] == 1 and data["version"].count(".") == 2
    kinds = {p["name"]: p["kind"] for p in data["patterns"]}
    assert kinds == {
        "none-comparison": "codemod",
        "unittest-aliases": "codemod",
        "mutable-default-arg": "lint",
        "bare-except": "lint",
    }
    for entry in data["patterns"]:
        assert entry["language"] == "python" and entry["version"].count(".") == 2
        assert entry["summary"] and entry["example"]["before"] != entry["example"]["after"]
        assert (FIXTURES / entry["name"] / "before.py").is_file()  # every pattern has fixtures


@pytest.mark.parametrize("name", CODEMODS)
def test_index_examples_are_what_the_codemods_do(name: str, tmp_path: Path) -> None:
    example = patterns.get(name)["example"]
    path = tmp_path / "example.py"
    path.write_text(example["before"])
    patterns.apply(name, path, unsafe=True)
    assert path.read_text() == example["after"]


@pytest.mark.parametrize("name", LINT_RULES)
def test_index_examples_are_what_the_rules_flag(name: str, tmp_path: Path) -> None:
    example = patterns.get(name)["example"]
    (tmp_path / "before.py").write_text(example["before"])
    (tmp_path / "after.py").write_text(example["after"])
    found = patterns.lint(tmp_path, [name])["findings"]
    assert [f["relpath"] for f in found] == ["before.py"]


# --------------------------------------------------------------------------------------- codemods


@pytest.mark.parametrize("name", CODEMODS)
def test_codemod_turns_before_into_exactly_after(name: str, tmp_path: Path) -> None:
    work = tmp_path / "work"
    target = copy_fixture(name, "before.py", work)
    mode = 0o640
    os.chmod(target, mode)
    result = patterns.apply(name, work, unsafe=True)
    assert result["skipped"] == [] and [c["relpath"] for c in result["changed"]] == ["module.py"]
    assert target.read_bytes() == (FIXTURES / name / "after.py").read_bytes()
    assert os.stat(target).st_mode & 0o777 == mode  # permissions kept
    assert [p.name for p in work.iterdir()] == ["module.py"]  # no temp file left behind
    again = patterns.apply(name, work, unsafe=True)  # idempotent
    assert again["changed"] == [] and again["edits"] == 0


@pytest.mark.parametrize("name", CODEMODS)
def test_codemod_leaves_after_alone(name: str, tmp_path: Path) -> None:
    target = copy_fixture(name, "after.py", tmp_path)
    before = target.read_bytes()
    assert patterns.apply(name, target, unsafe=True)["changed"] == []
    assert target.read_bytes() == before


def test_dry_run_prints_a_unified_diff_and_writes_nothing(tmp_path: Path) -> None:
    target = copy_fixture("none-comparison", "before.py", tmp_path)
    original = target.read_bytes()
    result = invoke("patterns", "apply", "none-comparison", str(tmp_path), "--dry-run")
    assert result.exit_code == 0
    assert result.stdout.startswith("--- a/module.py\n+++ b/module.py\n@@ ")
    assert "-    if value == None:  # a comment that says == None stays as it is" in result.stdout
    assert "+    if value is None:  # a comment that says == None stays as it is" in result.stdout
    assert "would change 1 of 1 file(s), 9 edit(s)" in result.stderr
    assert target.read_bytes() == original
    data = json.loads(
        invoke("patterns", "apply", "none-comparison", str(target), "--dry-run", "--json").stdout
    )
    assert data["dry_run"] is True and data["edits"] == 9 and data["changed"][0]["path"] == str(target)


def test_apply_keeps_line_endings_bom_and_unicode(tmp_path: Path) -> None:
    path = tmp_path / "crlf.py"
    path.write_bytes(b"\xef\xbb\xbfx = 'h\xc3\xa9'  # caf\xc3\xa9\r\nif x==None: pass\r\n")
    patterns.apply("none-comparison", path, unsafe=True)
    assert path.read_bytes() == b"\xef\xbb\xbfx = 'h\xc3\xa9'  # caf\xc3\xa9\r\nif x is None: pass\r\n"
    wide = tmp_path / "wide.py"
    wide.write_text("d = {'é': 1}; e = ('日本' , d.get('é') != None)\n", encoding="utf-8")
    patterns.apply("none-comparison", wide, unsafe=True)
    assert wide.read_text(encoding="utf-8") == "d = {'é': 1}; e = ('日本' , d.get('é') is not None)\n"


def test_unittest_aliases_cover_every_alias_and_respect_local_definitions(tmp_path: Path) -> None:
    calls = "".join(f"        self.{old}(1)\n" for old in UNITTEST_ALIASES)
    path = tmp_path / "test_all.py"
    path.write_text(f"class T:\n    def test(self):\n{calls}")
    patterns.apply("unittest-aliases", path)
    expected = "".join(f"        self.{new}(1)\n" for new in UNITTEST_ALIASES.values())
    assert path.read_text() == f"class T:\n    def test(self):\n{expected}"
    own = tmp_path / "own.py"
    text = (
        "class T:\n    def assertEquals(self, a, b): ...\n    def t(self):\n        self.assertEquals(1, 1)\n"
    )
    own.write_text(text)
    assert patterns.apply("unittest-aliases", own)["changed"] == []  # the module defines its own
    assert own.read_text() == text


def test_unparsable_and_non_utf8_files_are_skipped_not_touched(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("if x == None\n")
    (tmp_path / "latin.py").write_bytes(b"# -*- coding: latin-1 -*-\nx = '\xe9' == None\n")
    result = patterns.apply("none-comparison", tmp_path, unsafe=True)
    assert result["changed"] == []
    reasons = {Path(s["path"]).name: s["reason"] for s in result["skipped"]}
    assert reasons["broken.py"].startswith("does not parse") and reasons["latin.py"] == "not UTF-8 text"
    assert (tmp_path / "broken.py").read_text() == "if x == None\n"


# ------------------------------------------------------------------------------------------ safety


def test_apply_never_follows_symlinks_out_of_the_path(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.py"
    victim.write_text("x = 1 == None\n")
    inside = tmp_path / "inside"
    inside.mkdir()
    (inside / "link.py").symlink_to(victim)
    (inside / "linked_dir").symlink_to(outside, target_is_directory=True)
    (inside / "own.py").write_text("y = 2 != None\n")
    result = patterns.apply("none-comparison", inside, unsafe=True)
    assert victim.read_text() == "x = 1 == None\n"  # untouched, through the file or the folder link
    assert (inside / "link.py").is_symlink()
    assert (inside / "own.py").read_text() == "y = 2 is not None\n"
    assert [Path(s["path"]).name for s in result["skipped"]] == ["link.py"]
    direct = patterns.apply("none-comparison", inside / "link.py", unsafe=True)  # even when named directly
    assert direct["changed"] == [] and "symbolic link" in direct["skipped"][0]["reason"]
    assert victim.read_text() == "x = 1 == None\n"


def test_apply_skips_hidden_and_vendored_folders(tmp_path: Path) -> None:
    for folder in (".venv/lib", "node_modules/pkg", "__pycache__", "site-packages/x"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "m.py").write_text("a = a == None\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text("a = a == None\n")
    result = patterns.apply("none-comparison", tmp_path, dry_run=True)
    assert [c["relpath"] for c in result["changed"]] == ["pkg/m.py"]


def test_apply_refuses_lint_rules_and_unknown_names(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("x = 1\n")
    result = invoke("patterns", "apply", "bare-except", str(tmp_path), "--json")
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["message"] == "'bare-except' is a lint rule, not a codemod"
    unknown = invoke("patterns", "apply", "nope", str(tmp_path))
    assert unknown.exit_code == 2 and "no pattern named 'nope'" in unknown.stderr
    missing = invoke("patterns", "apply", "none-comparison", str(tmp_path / "missing"))
    assert missing.exit_code == 3 and "does not exist" in missing.stderr


# ------------------------------------------------------------------------------------------- lint


@pytest.mark.parametrize("name", LINT_RULES)
def test_lint_rule_finds_exactly_the_fixture_findings(name: str) -> None:
    expected = [tuple(x) for x in json.loads((FIXTURES / name / "findings.json").read_text())]
    before = patterns.lint(FIXTURES / name / "before.py", [name])
    assert [(f["line"], f["col"]) for f in before["findings"]] == expected
    assert all(f["rule"] == name for f in before["findings"])
    after = patterns.lint(FIXTURES / name / "after.py", [name])
    assert after["findings"] == [] and after["ok"]


def test_lint_cli_output_and_exit_codes(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("def f(x=[]):\n    try:\n        pass\n    except:\n        pass\n")
    (tmp_path / "clean.py").write_text("x = 1\n")
    result = invoke("patterns", "lint", str(tmp_path))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{tmp_path / 'a.py'}:1:9: mutable-default-arg mutable default argument `[]` in f() is shared "
        "between calls; default to None and create it inside the function",
        f"{tmp_path / 'a.py'}:4:5: bare-except bare `except:` also catches KeyboardInterrupt and "
        "SystemExit; catch `Exception` or something narrower",
    ]
    assert "2 finding(s) in 2 file(s)" in result.stderr
    only = json.loads(invoke("patterns", "lint", str(tmp_path), "--rule", "bare-except", "--json").stdout)
    assert [f["rule"] for f in only["findings"]] == ["bare-except"] and only["files"] == 2
    clean = invoke("patterns", "lint", str(tmp_path / "clean.py"))
    assert clean.exit_code == 0 and clean.stdout == ""
    wrong = invoke("patterns", "lint", str(tmp_path), "--rule", "none-comparison")
    assert wrong.exit_code == 2 and "is a codemod, not a lint rule" in wrong.stderr


def test_lint_reports_files_it_cannot_parse(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("def (:\n")
    result = patterns.lint(tmp_path)
    assert result["ok"] is False and result["findings"] == []
    assert result["errors"][0]["relpath"] == "bad.py" and "does not parse" in result["errors"][0]["message"]


def test_patterns_list() -> None:
    result = invoke("patterns", "list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["PATTERN", "KIND", "VERSION", "RUFF", "SAFETY", "FROM", "SUMMARY"]
    assert [line.split()[0] for line in lines[1:]] == CODEMODS + LINT_RULES
    data = json.loads(invoke("patterns", "list", "--json").stdout)
    assert data["library"] == "codex-orchestrator patterns"
