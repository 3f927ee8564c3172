"""The built-in validator must agree with jsonschema on our schemas, and refuse keywords it lacks."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codex_orchestrator import validation as schemacheck
from codex_orchestrator.errors import AssetError

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


@functools.cache
def _official(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("name", sorted(p.name for p in SCHEMAS.glob("*.json")))
def test_every_bundled_schema_is_supported(name: str) -> None:
    schemacheck.validator(name)  # raises on an unsupported keyword


def test_unsupported_keywords_are_refused() -> None:
    with pytest.raises(AssetError, match="unsupported keywords: if"):
        schemacheck.Validator({"type": "object", "properties": {"a": {"if": {}}}})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(-5, 5, allow_nan=False) | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)

CONFIG_KEYS = [
    "id",
    "stages",
    "command",
    "cwd",
    "env",
    "timeout_seconds",
    "allow_failure",
    "title",
    "stage_set",
]


@st.composite
def configs(draw: st.DrawFn) -> Any:
    stage = st.fixed_dictionaries(
        {
            "id": st.sampled_from(["build", "te st", "", "a" * 3, ".x"]),
            "command": st.one_of(st.text(max_size=5), st.lists(st.text(max_size=4), max_size=3), json_values),
        },
        optional={
            k: json_values for k in ("cwd", "env", "timeout_seconds", "allow_failure", "title", "extra")
        },
    )
    pipeline = st.fixed_dictionaries(
        {
            "id": st.sampled_from(["p", "q", "../x"]),
            "stages": st.lists(stage | st.just({"stage_set": "s"}), max_size=3),
        },
        optional={"title": json_values, "guardrails_required": json_values},
    )
    return draw(
        st.fixed_dictionaries(
            {},
            optional={
                "pipelines": st.lists(pipeline, max_size=2) | json_values,
                "default_pipeline": st.sampled_from(["p", "", "a/b"]) | json_values,
                "stage_sets": st.dictionaries(
                    st.sampled_from(["s", "t", ".u"]), st.lists(stage, max_size=2), max_size=2
                ),
                "heartbeat_interval_seconds": json_values | st.floats(0, 20),
                "unknown": json_values,
            },
        )
    )


@settings(max_examples=300, deadline=None)
@given(configs())
def test_config_validation_agrees_with_jsonschema(config: Any) -> None:
    official = _official("config.schema.json")
    ours = schemacheck.validate(config, "config.schema.json")
    assert (not ours) == official.is_valid(config), (ours, list(official.iter_errors(config))[:2])


def _sample_manifest() -> dict[str, Any]:
    from datetime import UTC, datetime

    from codex_orchestrator.pipelines.model import Pipeline, Stage
    from codex_orchestrator.runs import manifest as mf

    pipeline = Pipeline(
        "p", "P", (Stage("build", "Build", ("true",)), Stage("test", "Test", ("true",), guardrail=True))
    )
    return mf.new_manifest(
        task_id="t",
        run_id="20261123T120000000Z-0123abcd",
        pipeline=pipeline,
        repo_root=Path("/r"),
        run_dir=Path("/r/.runs/t/cli/x"),
        now=datetime(2026, 11, 23, tzinfo=UTC),
        token_sha256="0" * 64,
    )


PATHS = [
    ("status",),
    ("run_id",),
    ("commands", 0, "status"),
    ("commands", 0, "exit_code"),
    ("heartbeat_at",),
    ("runner", "pid"),
    ("guardrail_status", "status"),
    ("pipeline", "stages", 0, "command"),
    ("tool", "name"),
    ("resume_token_sha256",),
    ("schema_version",),
    ("created_at",),
    ("commands", 1, "duration_seconds"),
]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(PATHS), json_values | st.sampled_from(["succeeded", "2026-11-23T12:00:00.000Z", 1, None])
)
def test_manifest_validation_agrees_with_jsonschema(path: tuple[Any, ...], value: Any) -> None:
    data = copy.deepcopy(_sample_manifest())
    node: Any = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    official = _official("manifest.schema.json")
    ours = schemacheck.validate(data, "manifest.schema.json")
    if isinstance(value, str) and value.endswith("\n") and official.is_valid(data):
        # jsonschema matches with Python's `$`, which passes a final newline; we read `$` as JSON Schema
        # does (see test_a_pattern_anchor_refuses_a_trailing_newline)
        assert all("expected a string matching" in v.message for v in ours), ours
        return
    assert (not ours) == official.is_valid(data), (ours, list(official.iter_errors(data))[:2])


@pytest.mark.parametrize(
    ("pattern", "text", "valid"),
    [
        ("^a$", "a", True),
        ("^a$", "a\n", False),  # Python's `re` alone would pass it
        ("^(a$|b)", "a\n", False),
        ("^(a$|b)", "bc", True),
        ("^[$]x", "$x", True),  # inside a class `$` is a character
        ("^[]$]$", "$", True),  # `]` first in a class is a character, as Python reads it
        ("^[]$]$", "$\n", False),
        ("^[^]$]$", "x", True),
        ("^a\\$", "a$", True),  # an escaped `$`
        ("^[\\]$]$", "]", True),  # an escaped `]` does not close the class
        ("^[\\]$]$", "]\n", False),
        ("^[\\]]$", "]\n", False),
    ],
)
def test_a_pattern_anchor_refuses_a_trailing_newline(pattern: str, text: str, valid: bool) -> None:
    """JSON Schema reads `pattern` as ECMA-262 does, where `$` is the very end of the text."""
    assert (schemacheck.Validator({"type": "string", "pattern": pattern}).errors(text) == []) is valid


def test_a_manifest_id_with_a_trailing_newline_is_refused() -> None:
    data = _sample_manifest()
    data["run_id"] += "\n"
    (violation,) = schemacheck.validate(data, "manifest.schema.json")
    assert violation.path == "$.run_id" and "expected a string matching" in violation.message


def test_a_fresh_manifest_is_valid_for_both() -> None:
    data = _sample_manifest()
    assert schemacheck.validate(data, "manifest.schema.json") == []
    assert _official("manifest.schema.json").is_valid(data)
