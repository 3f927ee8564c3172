"""What a stage printed, a config says or a model answered reaches a terminal only as text: the text
commands never pass on an escape sequence or a control character for the terminal to obey (set the title,
clear the screen, write the clipboard); documents (reports, patches) keep their bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clikit import invoke
from testkit import py, write_config

from codex_orchestrator import output

# colour, window title (OSC 0), clipboard write (OSC 52), clear screen, bell, backspace, an 8-bit CSI
HOSTILE = (
    "a\x1b[31mRED\x1b[0m\n\x1b]0;owned\x07\x1b]52;c;ZWNobyBoaQ==\x07title\n\x1b[2Jcleared\x07\x08\n"
    "\x9b31mcsi\n"
)
TERMINAL = ("\x1b", "\x07", "\x08", "\x9b")


def _hostile_repo(repo: Path) -> None:
    stage = {"id": "t", "command": py(f"import sys; sys.stdout.write({HOSTILE!r}); sys.exit(1)")}
    write_config(repo, {"default_pipeline": "p", "pipelines": [{"id": "p", "stages": [stage]}]})


def test_a_failed_stages_last_lines_are_shown_as_text(tmp_path: Path) -> None:
    _hostile_repo(tmp_path)
    result = invoke("start", "--repo", str(tmp_path))
    assert result.exit_code == 1
    for stream in (result.stdout, result.stderr):
        assert not any(c in stream for c in TERMINAL), repr(stream)
    assert "  | aRED\n" in result.stdout and "  | cleared\\x07\\x08\n" in result.stdout
    assert "  | title\n" in result.stdout and "  | \\x9b31mcsi\n" in result.stdout
    status = invoke("status", "--repo", str(tmp_path))
    assert not any(c in status.stdout for c in TERMINAL) and "  | aRED\n" in status.stdout
    view = json.loads(invoke("status", "--format", "json", "--repo", str(tmp_path)).stdout)
    log = Path(view["commands"][0]["log_path"])
    assert log.read_text() == HOSTILE  # the log itself keeps every byte the stage wrote


def test_a_config_and_a_stage_note_are_shown_as_text(tmp_path: Path) -> None:
    stage = {"id": "t", "command": "printf 'x\\n'; exit 3 # \x1b]0;owned\x07"}
    write_config(tmp_path, {"default_pipeline": "p", "pipelines": [{"id": "p", "stages": [stage]}]})
    for args in (["plan"], ["start"]):
        result = invoke(*args, "--repo", str(tmp_path))
        assert "exit 3 # " in result.stdout + result.stderr
        assert not any(c in result.stdout + result.stderr for c in TERMINAL), args


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain text, ünïcödé\tand a tab", "plain text, ünïcödé\tand a tab"),
        ("progress 10%\rprogress 20%", "progress 10%\nprogress 20%"),
        ("form\x0cfeed and nul\x00", "form\\x0cfeed and nul\\x00"),
        ("\x1b[1;31mbold red\x1b[0m", "bold red"),
        ("\x1b]8;;https://example.com\x1b\\link\x1b]8;;\x1b\\", "link"),
        ("bad byte \udcff", "bad byte \\udcff"),
        ("if admin\u202e\u2066 {", "if admin\\u202e\\u2066 {"),  # bidi overrides: "Trojan Source"
        ("caf\u00e9 \u00a0nbsp and \u4e2d", "caf\u00e9 \u00a0nbsp and \u4e2d"),  # printable text is kept
    ],
)
def test_text_lines_are_cleaned_and_documents_are_not(
    capsys: pytest.CaptureFixture[str], text: str, shown: str
) -> None:
    output.emit(text)
    output.diag(text)
    out, err = capsys.readouterr()
    assert out == err == shown + "\n"
    if "\udcff" not in text:
        output.emit_document(text + "\n\n")
        assert capsys.readouterr().out == text + "\n"  # a patch or a report keeps its bytes
