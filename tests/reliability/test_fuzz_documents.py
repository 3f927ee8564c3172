"""Seeded, structure-aware fuzzing of the documents the tool reads from disk: configuration files,
manifests and metrics lines. Every mutant must give either a result or our one-sentence error — never
another exception, never a hang. `FUZZ_DOC_CASES=20000` runs a longer profile locally."""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from codex_orchestrator.errors import OrchestratorError
from codex_orchestrator.pipelines import config as cfg
from codex_orchestrator.runs import manifest as mf
from codex_orchestrator.runs.metrics import metrics_line, read_metrics

CASES = int(os.environ.get("FUZZ_DOC_CASES", "1500"))
SEED = int(os.environ.get("FUZZ_SEED", "20261201"))

CONFIG = {
    "default_pipeline": "ci",
    "stage_sets": {"checks": [{"id": "lint", "command": ["ruff", "check", "."]}]},
    "pipelines": [
        {
            "id": "ci",
            "title": "CI",
            "guardrails_required": True,
            "stages": [
                {"id": "build", "command": "python3 -m compileall -q src", "timeout_seconds": 300},
                {"stage_set": "checks"},
                {"id": "test", "command": ["python3", "-m", "pytest"], "env": {"A": "1"}, "cwd": "."},
            ],
        }
    ],
    "projects": {"web": {"path": "packages/web", "task_id": "web"}},
    "heartbeat_interval_seconds": 5,
    "retention": {"keep_last": 5},
}

ODD_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    1e308,
    "",
    "x" * 5000,
    "\ud800",
    "a\x00b",
    "../..",
    [],
    {},
    [[[[[]]]]],
    {"": {"": None}},
    "🙂",
]


def _mutate_value(rng: random.Random, value: Any, depth: int = 0) -> Any:
    """One structural mutation somewhere inside `value`."""
    if isinstance(value, dict) and value and rng.random() < 0.7:
        key = rng.choice(list(value))
        out = dict(value)
        roll = rng.random()
        if roll < 0.15:
            del out[key]
        elif roll < 0.3:
            out[key + rng.choice(["", "x", "_", "\ud800"])] = rng.choice(ODD_VALUES)
        else:
            out[key] = _mutate_value(rng, out[key], depth + 1)
        return out
    if isinstance(value, list) and value and rng.random() < 0.7:
        out_list = list(value)
        i = rng.randrange(len(out_list))
        roll = rng.random()
        if roll < 0.15:
            del out_list[i]
        elif roll < 0.3:
            out_list.insert(i, rng.choice(ODD_VALUES))
        elif roll < 0.4:
            out_list.extend(out_list * rng.randint(1, 3))
        else:
            out_list[i] = _mutate_value(rng, out_list[i], depth + 1)
        return out_list
    roll = rng.random()
    if roll < 0.1:
        nest = rng.choice([10, 40, 70, 2000])
        return json.loads("[" * nest + "]" * nest) if nest < 900 else {"deep": "[" * nest}
    return rng.choice(ODD_VALUES)


def _render(rng: random.Random, value: Any) -> bytes:
    """Serialise, then sometimes damage the text itself (truncate, NaN, deep brackets, raw bytes)."""
    text = json.dumps(value, ensure_ascii=rng.random() < 0.5)
    roll = rng.random()
    if roll < 0.1:
        text = text[: rng.randrange(len(text) + 1)]
    elif roll < 0.2:
        text = text.replace("5", rng.choice(["NaN", "Infinity", "-Infinity"]), 1)
    elif roll < 0.25:
        cut = rng.randrange(len(text) + 1)
        text = text[:cut] + "[" * 3000 + "]" * 3000 + text[cut:]
    elif roll < 0.3:
        text = text.replace('"ci"', '"ci", "ci": 1', 1)  # a duplicate key
    data = text.encode("utf-8", "surrogatepass")
    if rng.random() < 0.05:
        i = rng.randrange(len(data) + 1)
        data = data[:i] + bytes([rng.randrange(256)]) + data[i:]
    return data


def _sample_manifest(tmp_path: Path) -> dict[str, Any]:
    from codex_orchestrator.pipelines.model import Pipeline, Stage

    pipeline = Pipeline("ci", "CI", (Stage("build", "Build", ("true",)), Stage("test", "Test", ("true",))))
    return mf.new_manifest(
        task_id="default",
        run_id="20261201T000000000Z-00000000",
        pipeline=pipeline,
        repo_root=tmp_path,
        run_dir=tmp_path / "run",
        now=__import__("datetime").datetime(2026, 12, 1, tzinfo=__import__("datetime").UTC),
        token_sha256="0" * 64,
    )


def _fuzz(tmp_path: Path, seed: int, base: Any, name: str, read: Callable[[Path], Any]) -> tuple[int, int]:
    rng = random.Random(seed)
    path = tmp_path / name
    accepted = refused = 0
    deadline = time.monotonic() + 120
    for case in range(CASES):
        mutant = base
        for _ in range(rng.randint(1, 4)):
            mutant = _mutate_value(rng, mutant)
        path.write_bytes(_render(rng, mutant))
        started = time.monotonic()
        try:
            read(path)
            accepted += 1
        except OrchestratorError as exc:
            refused += 1
            assert exc.message and "\n" not in exc.message, exc.message
        except Exception as exc:  # pragma: no cover - a finding
            pytest.fail(f"{name} case {case} (seed {seed}) raised {type(exc).__name__}: {str(exc)[:200]}")
        assert time.monotonic() - started < 5, f"{name} case {case} took too long"
        if time.monotonic() > deadline:
            break
    return accepted, refused


def test_fuzzed_configurations_give_a_result_or_one_sentence(tmp_path: Path) -> None:
    def read(path: Path) -> Any:
        target = tmp_path / "repo"
        target.mkdir(exist_ok=True)
        (target / cfg.CONFIG_FILE).write_bytes(path.read_bytes())
        return cfg.load(target)

    accepted, refused = _fuzz(tmp_path, SEED, CONFIG, "config.json", read)
    assert refused > 0 and accepted + refused > 0


def test_fuzzed_manifests_give_a_result_or_one_sentence(tmp_path: Path) -> None:
    def read(path: Path) -> Any:
        data = mf.read(path)
        mf.status_view(data, path, __import__("datetime").datetime.now(__import__("datetime").UTC))
        metrics_line(data, path)
        return data

    _accepted, refused = _fuzz(tmp_path, SEED + 1, _sample_manifest(tmp_path), "manifest.json", read)
    assert refused > 0


def test_fuzzed_metrics_lines_are_kept_or_skipped(tmp_path: Path) -> None:
    rng = random.Random(SEED + 2)
    path = tmp_path / "metrics.jsonl"
    good = {"run_id": "r", "status": "succeeded", "duration_seconds": 1.5}
    with open(path, "wb") as fh:
        for _ in range(CASES):
            fh.write(_render(rng, _mutate_value(rng, good)).replace(b"\n", b" ") + b"\n")
    lines, bad = read_metrics(path)
    assert len(lines) + bad <= CASES and bad > 0
    assert all(isinstance(line, dict) for line in lines)
