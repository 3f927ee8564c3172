"""The engine's manifest writer: every write is the whole manifest, atomic and valid, yet a write during
a run costs the same whatever the number of stages (only what changed is encoded and validated)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from testkit import FakeClock, assert_valid_manifest, write_config

from codex_orchestrator import validation
from codex_orchestrator.clock import iso
from codex_orchestrator.errors import ManifestError
from codex_orchestrator.runs import lifecycle, transitions
from codex_orchestrator.runs import manifest as mf
from codex_orchestrator.runs.layout import Roots


def _created(tmp_path: Path, stages: int) -> tuple[Path, dict[str, Any]]:
    repo = tmp_path / f"repo{stages}"
    repo.mkdir()
    pipeline = {"id": "p", "stages": [{"id": f"s{i}", "command": ["true"]} for i in range(stages)]}
    write_config(repo, {"default_pipeline": "p", "pipelines": [pipeline]})
    paths, manifest, _ = lifecycle.create_run(Roots.resolve(repo), clock=FakeClock())
    return paths.manifest, manifest


def _run_stage(manifest: dict[str, Any], i: int, clock: FakeClock, path: Path) -> None:
    transitions.mark_stage_running(manifest, i, clock.now(), path.parent / f"{i}.log", pgid=4242)


def test_incremental_writes_leave_the_same_document_as_a_full_write(tmp_path: Path) -> None:
    path, manifest = _created(tmp_path, 5)
    clock = FakeClock()
    writer = mf.ManifestWriter(path)
    transitions.mark_started(manifest, clock.now(), runner={"pid": 1, "pgid": 1, "identity": None})
    writer.write(manifest)
    for i in range(5):
        clock.advance(1)
        _run_stage(manifest, i, clock, path)
        manifest["updated_at"] = iso(clock.now())
        writer.write(manifest, changed=(i,))
        on_disk = json.loads(path.read_text())
        assert on_disk == json.loads(json.dumps(manifest))  # every field, every stage, as in memory
        assert_valid_manifest(on_disk)
    assert not list(path.parent.glob(".manifest.json.*.tmp"))


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda m: m["commands"][1].update(status="bogus"), "$.commands[1].status"),
        (lambda m: m.update(status="bogus"), "$.status"),
        (lambda m: m["runner"].update(stage_pgid="not a number"), "$.runner.stage_pgid"),
        (lambda m: m.update(unknown_field=1), "unknown_field"),
    ],
)
def test_an_invalid_change_is_refused_and_the_last_manifest_stays(
    tmp_path: Path, change: Any, where: str
) -> None:
    path, manifest = _created(tmp_path, 3)
    writer = mf.ManifestWriter(path)
    writer.write(manifest)
    before = path.read_bytes()
    bad = copy.deepcopy(manifest)
    change(bad)
    with pytest.raises(ManifestError, match="refusing to write an invalid manifest") as info:
        writer.write(bad, changed=(1,))
    assert where in str(info.value)
    assert path.read_bytes() == before


def test_a_write_during_a_run_costs_the_same_for_1_and_100_stages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counted, not timed: the schema nodes visited and the values encoded by one write mid-run."""
    counts = {"checked": 0, "encoded": 0}
    real_check, real_encode = validation.Validator._check, mf._encode

    def counting(self: validation.Validator, *args: Any) -> None:
        counts["checked"] += 1
        real_check(self, *args)

    def counting_encode(value: Any) -> str:
        counts["encoded"] += 1
        return real_encode(value)

    monkeypatch.setattr(validation.Validator, "_check", counting)
    monkeypatch.setattr(mf, "_encode", counting_encode)
    per_write = []
    for stages in (1, 100):
        path, manifest = _created(tmp_path, stages)
        clock = FakeClock()
        writer = mf.ManifestWriter(path)
        writer.write(manifest)
        clock.advance(1)
        _run_stage(manifest, 0, clock, path)
        counts.update(checked=0, encoded=0)
        writer.write(manifest, changed=(0,))
        per_write.append(dict(counts))
    assert per_write[0] == per_write[1]
    assert per_write[0]["checked"] > 0 and per_write[0]["encoded"] > 0


def test_the_engine_continues_the_writer_of_the_first_manifest(tmp_path: Path) -> None:
    path, manifest = _created(tmp_path, 3)
    continued = mf.ManifestWriter.continuing(path)
    assert continued._fields is not None  # create_run's writer: it knows what it validated
    assert mf.ManifestWriter.continuing(path)._fields is None  # taken once; then a new writer
    _created(tmp_path, 2)
    assert mf.ManifestWriter.continuing(path)._fields is None  # the last write was another run's
    transitions.mark_started(manifest, FakeClock().now(), runner={"pid": 1, "pgid": 1, "identity": None})
    manifest["commands"][2]["summary"] = "changed outside the engine"  # not named by `changed` below
    continued.write(manifest)  # (the engine's first write names no entries: all are compared)
    assert json.loads(path.read_text()) == json.loads(json.dumps(manifest))


def test_errors_names_what_write_would_refuse_without_writing(tmp_path: Path) -> None:
    path, manifest = _created(tmp_path, 2)
    writer = mf.ManifestWriter.continuing(path)
    before = path.read_bytes()
    assert writer.errors(manifest) == []
    manifest["status"] = "bogus"
    assert [str(e) for e in writer.errors(manifest)] == [str(e) for e in mf.validate(manifest)]
    assert path.read_bytes() == before


def test_a_foreground_run_validates_the_whole_manifest_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """create_run checks the whole first manifest; the engine's writes and the end of the run check only
    what changed (counted: whole-manifest validations)."""
    from testkit import FakeRunner

    whole = []
    real = mf.validate
    monkeypatch.setattr(mf, "validate", lambda m: whole.append(1) or real(m))
    repo = tmp_path / "repo"
    repo.mkdir()
    stages = [{"id": f"s{i}", "command": ["true"]} for i in range(5)]
    write_config(repo, {"default_pipeline": "p", "pipelines": [{"id": "p", "stages": stages}]})
    clock = FakeClock()
    view = lifecycle.start_run(Roots.resolve(repo), clock=clock, process_runner=FakeRunner(clock))
    assert view["status"] == "succeeded"
    assert len(whole) == 1
    assert_valid_manifest(json.loads(Path(view["manifest"]).read_text()))


def test_detached_is_a_deep_copy(tmp_path: Path) -> None:
    _, manifest = _created(tmp_path, 2)
    manifest["extra"] = ({"a": [1, {"b": 2}]}, [3])
    copied = mf.detached(manifest)
    assert copied == copy.deepcopy(manifest)
    copied["commands"][0]["status"] = "changed"
    copied["extra"][0]["a"][1]["b"] = 9
    assert manifest["commands"][0]["status"] != "changed" and manifest["extra"][0]["a"][1]["b"] == 2


def test_every_rename_of_a_run_is_durable_before_the_next_step(
    repo: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each file a run writes is renamed into place, and its folder is fsynced, before anything else is
    renamed or the run goes on: the resume token's folder fsync is left to the manifest's first write
    (same folder, next), never skipped."""
    import os

    from testkit import FakeRunner

    from codex_orchestrator.runs import store

    events: list[tuple[str, str]] = []
    folders: dict[int, str] = {}
    real_open, real_replace, real_fsync = os.open, os.replace, os.fsync

    def spy_open(path: Any, flags: int, *args: Any) -> int:
        fd = real_open(path, flags, *args)
        if os.path.isdir(path):
            folders[fd] = str(path)
        return fd

    def spy_replace(src: Any, dst: Any) -> None:
        real_replace(src, dst)
        events.append(("rename", str(Path(dst).parent)))

    def spy_fsync(fd: int) -> None:
        real_fsync(fd)
        if fd in folders:
            events.append(("fsync", folders.pop(fd)))

    monkeypatch.setattr(store.os, "open", spy_open)
    monkeypatch.setattr(store.os, "replace", spy_replace)
    monkeypatch.setattr(store.os, "fsync", spy_fsync)
    view = lifecycle.start_run(Roots.resolve(repo), "quick", clock=clock, process_runner=FakeRunner(clock))  # type: ignore[arg-type]
    assert view["status"] == "succeeded"
    renames = [i for i, (op, _) in enumerate(events) if op == "rename"]
    assert len(renames) >= 7  # token, manifest (created, each stage, final), state
    deferred = []
    for i in renames:
        if events[i + 1] != ("fsync", events[i][1]):  # not made durable at once: only by the next write
            assert events[i + 1 : i + 3] == [("rename", events[i][1]), ("fsync", events[i][1])]
            deferred.append(i)
    assert len(deferred) == 1  # the resume token's, synced with the first manifest's
    assert events[-1][0] == "fsync"
