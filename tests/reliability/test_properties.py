"""Property-based tests: ids, config parsing and manifest reading never escape or crash."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codex_orchestrator.errors import ConfigError, InvalidIdError, ManifestError
from codex_orchestrator.ids import validate_id
from codex_orchestrator.pipelines import config as cfg
from codex_orchestrator.runs import manifest as mf
from codex_orchestrator.runs.layout import Roots

ids = st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["..", ".", "a/..", "a\\b", "../x", "x/../../y", "-rf", "ok-id", "a.b_c-1", "\x00", "a\nb", "é", " "]
)


@settings(max_examples=500)
@given(ids)
def test_an_accepted_id_is_one_safe_segment(value: str) -> None:
    try:
        validate_id("task", value)
    except InvalidIdError as exc:
        assert exc.message and exc.hint  # a sentence and a fix, never a bare exception
        return
    root = Path("/runs/root")
    assert (root / value).parent == root
    assert os.path.normpath(root / value) == str(root / value)
    assert not value.startswith((".", "-")) and len(value) <= 128
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def config_documents(draw: st.DrawFn) -> str:
    doc = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "default_pipeline": json_values,
                "pipelines": st.lists(
                    st.fixed_dictionaries(
                        {
                            "id": st.sampled_from(["p", "q"]) | json_values,
                            "stages": st.lists(
                                st.fixed_dictionaries(
                                    {"id": st.sampled_from(["a", "b"]) | json_values, "command": json_values},
                                    optional={
                                        "cwd": st.sampled_from(["..", "/", "sub", "a/../.."]) | json_values,
                                        "stage_set": json_values,
                                    },
                                ),
                                max_size=3,
                            ),
                        }
                    ),
                    max_size=3,
                )
                | json_values,
                "stage_sets": json_values,
                "projects": json_values,
            },
        )
    )
    text = json.dumps(doc)
    cut = draw(st.integers(0, len(text)))
    return text if draw(st.booleans()) else text[:cut]  # sometimes truncated: invalid JSON


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(config_documents())
def test_config_loading_fails_only_with_config_errors(tmp_path: Path, text: str) -> None:
    (tmp_path / "codex.orchestrator.json").write_text(text)
    try:
        loaded = cfg.load(tmp_path)
    except ConfigError as exc:
        assert exc.message.startswith("codex.orchestrator.json: ")
        return
    for pipeline in loaded.pipelines.pipelines.values():
        for stage in pipeline.stages:
            target = (tmp_path / stage.cwd).resolve()
            assert target == tmp_path.resolve() or tmp_path.resolve() in target.parents


odd_manifests = st.fixed_dictionaries(
    {},
    optional={
        k: json_values
        for k in (
            "commands",
            "heartbeat_at",
            "updated_at",
            "status",
            "guardrail_status",
            "heartbeat_stale_after_seconds",
        )
    },
).map(lambda v: json.dumps(v).encode())


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()) | odd_manifests)
def test_reading_a_garbage_manifest_gives_a_clear_error(tmp_path: Path, blob: bytes) -> None:
    path = tmp_path / "manifest.json"
    path.write_bytes(blob)
    try:
        data = mf.read(path)
    except ManifestError as exc:
        assert "manifest" in exc.message
        return
    assert isinstance(data, dict)
    mf.status_view(data, path, mf.parse_iso("2026-11-23T00:00:00Z"))  # never raises on odd content


@pytest.mark.parametrize("run_id", ["..", "../x", "a/b", ".lock", "x\x00"])
def test_find_run_never_leaves_the_runs_root(tmp_path: Path, run_id: str) -> None:
    with pytest.raises(InvalidIdError):
        Roots.resolve(tmp_path).find_run(run_id)


@given(st.text(max_size=12) | st.sampled_from(["", "echo", "a b", "x'y", "--flag=1", "ü", "@%+=:,./-_"]))
def test_a_stage_word_is_quoted_as_shlex_quotes_it(word: str) -> None:
    import shlex

    from codex_orchestrator.pipelines import model

    assert model._quote(word) == shlex.quote(word)


@given(st.text(max_size=140))
def test_id_checks_agree_with_the_schema_patterns(value: str) -> None:
    """`is_id`/`is_run_id` accept exactly what the bundled schemas' patterns accept, read as JSON Schema
    reads them (no trailing newline)."""
    from codex_orchestrator import validation
    from codex_orchestrator.ids import ID_PATTERN, RUN_ID_PATTERN, is_id, is_run_id

    assert is_id(value) == (
        validation.Validator({"type": "string", "pattern": ID_PATTERN}).errors(value) == []
    )
    schema = {"type": "string", "pattern": RUN_ID_PATTERN}
    assert is_run_id(value) == (validation.Validator(schema).errors(value) == [])
    assert is_id(value + "\n") is False and is_run_id("20261202T013246035Z-284f3209\n") is False


def test_the_id_patterns_are_the_manifest_schemas() -> None:
    from codex_orchestrator import resources
    from codex_orchestrator.ids import ID_PATTERN, RUN_ID_PATTERN, is_run_id, new_run_id

    defs = resources.schema("manifest.schema.json")["$defs"]
    assert defs["id"]["pattern"] == ID_PATTERN
    assert defs["run_id"]["pattern"] == RUN_ID_PATTERN
    assert is_run_id(new_run_id())


_location_lines = st.sampled_from(
    [
        "a.py:1:2: E1 msg",
        "a.py:" + "1" * 5000 + ": msg",  # more digits than int() converts
        '  File "a.py", line 3, in f',
        "Traceback (most recent call last):",
        "E       assert 1 == 2",
        " --> a.py:1:1",
        "thread 'x' panicked at a.py:2:3:",
        "  error: |-",
        "    at f (a.py:1:1)",
        "FAIL\texample.com/x\t0.1s",
        "a.py(1,2): error TS1: x",
        '  File "a\x00.py", line 1, in f',  # a NUL byte: no path
        "a" * 5000 + ".py:1:1: E1 x",  # a name too long for the file system
    ]
) | st.text(max_size=80)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.lists(_location_lines, max_size=30))
def test_reading_locations_from_any_output_never_fails(tmp_path: Path, lines: list[str]) -> None:
    from codex_orchestrator.runs.locations import MAX_LOCATIONS, find

    (tmp_path / "a.py").write_text("x\n")
    (tmp_path / "go.mod").write_text("module example.com/x\n")
    found = find("\n".join(lines), cwd=tmp_path, root=tmp_path)
    assert len(found) <= MAX_LOCATIONS
    assert all(x.path == "a.py" and 1 <= x.line <= 999_999_999 and x.message for x in found)


_runner_lines = st.sampled_from(
    [
        "Ran " + "1" * 5000 + " tests in 0.1s",  # more digits than int() converts: not a runner's count
        "Ran 0 tests in 0.000s",
        "",
        "OK",
        "OK (skipped=" + "9" * 5000 + ")",
        "===== " + "1" * 5000 + " skipped in 0.1s =====",
        "test result: ok. " + "1" * 5000 + " passed; 0 failed; 0 ignored; 0 measured",
        "# tests " + "1" * 5000,
        "# duration_ms 1",
        "  " + "1" * 5000 + " passing (1s)",
        "Tests:       " + "1" * 5000 + " skipped, 1 total",
        " Tests  1 skipped (" + "1" * 5000 + ")",
        "Duration 1s",
        "Time: 1 s",
    ]
) | st.text(max_size=60)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["pytest", "unittest", "node", "cargo", "go", "jest", "vitest", "mocha"]),
    st.lists(_runner_lines, max_size=12),
)
def test_reading_a_runners_summary_from_any_output_never_fails(runner: str, lines: list[str]) -> None:
    from codex_orchestrator.runs.testrunners import REASONS_BEGIN, empty_results, empty_summary

    text = "\n".join(lines)
    for why in (
        empty_summary(runner, text) if runner in ("pytest", "unittest", "node") else None,
        empty_results(runner, text),
    ):
        assert why is None or why.startswith(REASONS_BEGIN)
