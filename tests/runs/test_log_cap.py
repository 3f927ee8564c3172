"""Stage logs have a size cap: the head and the tail are kept, with a marker of what was cut; memory
stays flat (the copier holds one chunk at most) and nothing is lost under the cap."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from clikit import invoke
from testkit import py, write_config

from codex_orchestrator import capped_log
from codex_orchestrator.capped_log import CappedLogCopier, marker


def _copy(tmp_path: Path, data: bytes, cap: int, chunks: int = 7) -> bytes:
    read_fd, write_fd = os.pipe()
    log = tmp_path / "x.log"
    copier = CappedLogCopier(read_fd, log, cap)
    step = max(1, len(data) // chunks)
    for i in range(0, len(data), step):
        os.write(write_fd, data[i : i + step])
    os.close(write_fd)
    assert copier.finish(10)
    return log.read_bytes()


@pytest.mark.parametrize("splice", [True, False])
@pytest.mark.parametrize("size", [0, 1, 99, 100, 101, 250, 1000, 12345])
def test_head_and_tail_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, splice: bool, size: int
) -> None:
    monkeypatch.setattr(capped_log, "_SPLICE", splice and hasattr(os, "splice"))
    monkeypatch.setattr(capped_log, "CHUNK", 16)  # many wraps of the ring
    data = bytes(i % 251 for i in range(size))
    out = _copy(tmp_path, data, 100)
    if size <= 100:
        assert out == data  # under the cap: everything, unchanged
    else:
        assert out == data[:25] + marker(size - 100, 100) + data[-75:]
        assert not (tmp_path / "x.log.cap").exists()


def test_a_capped_stage_through_the_cli(tmp_path: Path) -> None:
    code = "import sys\nfor i in range(20000): print(f'line {i:05d}')\nsys.exit(2)"
    write_config(
        tmp_path,
        {
            "log_max_bytes": 4096,
            "pipelines": [{"id": "loud", "stages": [{"id": "spam", "command": py(code)}]}],
        },
    )
    view = json.loads(invoke("start", "loud", "--json", "--repo", str(tmp_path)).stdout)
    stage = view["commands"][0]
    text = Path(stage["log_path"]).read_text()
    assert text.startswith("line 00000\n")
    assert "bytes cut from the middle of this log (log_max_bytes is 4096)" in text
    assert text.endswith("line 19999\n")
    assert len(text) < 4096 + 200
    assert stage["output_tail"].splitlines()[-1] == "line 19999"  # the tail is what a failure shows


def test_memory_stays_flat_for_a_large_output(tmp_path: Path) -> None:
    """64 MiB through a 1 MiB cap in a child interpreter: its peak RSS grows by far less than the output."""
    script = f"""
import os, resource, sys
sys.path[:0] = {sys.path!r}
from pathlib import Path
from codex_orchestrator.process import PosixProcessRunner
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
proc = PosixProcessRunner(1 << 20).start(
    ["sh", "-c", "head -c 67108864 /dev/zero"], cwd=Path("."), env=dict(os.environ),
    log_path=Path({str(tmp_path / "big.log")!r}))
assert proc.wait(120) == 0
proc.close()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""
    import subprocess

    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    grown_kib = int(done.stdout.strip())
    assert grown_kib < 16 * 1024  # KiB on Linux: far below the 64 MiB that went through
    size = (tmp_path / "big.log").stat().st_size
    assert (1 << 20) <= size < (1 << 20) + 200


def test_no_cap_means_the_child_writes_the_file(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        {
            "log_max_bytes": 0,
            "pipelines": [{"id": "p", "stages": [{"id": "s", "command": py("print('x' * 9000)")}]}],
        },
    )
    view = json.loads(invoke("start", "p", "--json", "--repo", str(tmp_path)).stdout)
    assert Path(view["commands"][0]["log_path"]).read_text() == "x" * 9000 + "\n"
