"""The HTML reports in a real browser: headless Chromium (Debian's `chromium`, installed by
scripts/install-chromium) renders a real run's report; its text is checked through the DOM and a
screenshot's size is checked. Skipped only when no chromium is installed.

With UPDATE_DOCS_SCREENSHOT=1 the screenshot of the run report is also saved as docs/run-report.png,
the picture in the README.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from clikit import invoke
from reportkit import HOSTILE_LOG, PROVENANCE, REVIEW
from testkit import ROOT, py, write_config

from codex_orchestrator.reports import collect, html
from codex_orchestrator.runs import manifest as mf

CHROMIUM = os.environ.get("CHROMIUM_BIN") or shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (scripts/install-chromium)"
)

DOCS_SHOT = ROOT / "docs" / "run-report.png"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
]


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    profile = tmp_path / "chromium-profile"
    env = {**os.environ, "HOME": str(tmp_path)}
    done = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def screenshot(tmp_path: Path, page: Path, name: str, size: tuple[int, int]) -> Path:
    shot = tmp_path / name
    chromium(tmp_path, f"--screenshot={shot}", f"--window-size={size[0]},{size[1]}", page.as_uri())
    assert png_size(shot) == size
    return shot


@pytest.fixture
def real_run(tmp_path: Path) -> tuple[Path, str]:
    """A repository and a finished, failed run of a real pipeline whose test stage prints a hostile log."""
    repo = tmp_path / "repo"
    repo.mkdir()
    write_config(
        repo,
        {
            "pipelines": [
                {
                    "id": "ci",
                    "title": "CI checks",
                    "stages": [
                        {"id": "build", "title": "Build", "command": py("import time; time.sleep(0.6)")},
                        {
                            "id": "lint",
                            "title": "Lint",
                            "command": py(
                                "import sys, time; time.sleep(0.2); print('2 warnings'); sys.exit(1)"
                            ),
                            "allow_failure": True,
                        },
                        {
                            "id": "test",
                            "title": "Unit tests",
                            "command": py(
                                "import sys, time; time.sleep(0.9); "
                                f"sys.stdout.buffer.write({HOSTILE_LOG!r}); sys.exit(3)"
                            ),
                        },
                        {"id": "docs", "title": "Docs", "command": py("print('docs')")},
                    ],
                }
            ]
        },
    )
    result = invoke("start", "ci", "--json", "--repo", str(repo))
    assert result.exit_code == 1, result.stderr
    return repo, json.loads(result.stdout)["run_id"]


def test_run_report_in_chromium_shows_the_hostile_log_as_text(
    real_run: tuple[Path, str], tmp_path: Path
) -> None:
    repo, run_id = real_run
    page = tmp_path / "run.html"
    assert invoke("report", "--run", run_id, "-o", str(page), "--repo", str(repo)).exit_code == 0
    dom = chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
    # the browser built no element from the log or the config (the stage's command holds the same text):
    # the only markup is ours
    assert "<script" not in dom and "<img" not in dom and "<b>bold" not in dom
    tails = [part.split("</pre>", 1)[0] for part in dom.split("<pre>")[1:]]
    assert len(tails) == 2  # lint's (allowed) and test's: the log's "</pre>" closed nothing
    test_tail = tails[1]
    assert test_tail.startswith("FAILED test_login \n&lt;script&gt;alert('x')&lt;/script&gt;&lt;/pre&gt;")
    assert "&lt;b&gt;bold&lt;/b&gt;&lt;img src=http://127.0.0.1/x&gt;" in test_tail
    assert (
        "\ufffd\ufffd not utf-8 \ufffd" in test_tail and "::error title=forged::fake annotation" in test_tail
    )
    assert "\x1b" not in dom and "[31m" not in test_tail and "pwned" not in test_tail
    for text in (
        "CI checks",
        "✖ failed",
        f"run <code>{run_id}</code>",
        "✔ succeeded",
        "✖ failed (allowed)",
        "○ not run",
        "exited with code 3",
        "AssertionError: expected 200, got 500",
        "Output of failed stages",
    ):
        assert text in dom, text
    shot = screenshot(tmp_path, page, "run.png", (1200, 900))
    assert shot.stat().st_size > 30_000  # a page with text and colour, not a blank one (about 4 KB)


# A small project as a user would have it: the README's picture is a real run of it.
README_PROJECT = {
    "src/shop/cart.py": "def total(items):\n    return sum(p * q for p, q in items)\n",
    "tools/lint.py": (
        "import sys, time\ntime.sleep(0.4)\n"
        "print('src/shop/cart.py:1:1: D103 missing docstring in public function')\n"
        "print('1 warning')\nsys.exit(1)\n"
    ),
    "tools/tests.py": (
        "import sys, time\ntime.sleep(1.6)\n"
        "print('\\x1b[1m============ test session starts ============\\x1b[0m')\n"
        "print('tests/test_cart.py \\x1b[32m.....\\x1b[31mF\\x1b[0m')\n"
        "print('\\x1b[31m___________ test_total_with_discount ___________\\x1b[0m')\n"
        "print('>       assert total([(10, 2)], discount=0.1) == 18')\n"
        "print(\"E       TypeError: total() got an unexpected keyword argument 'discount'\")\n"
        "print('\\x1b[31m======= 1 failed, 5 passed in 0.12s =======\\x1b[0m')\n"
        "sys.exit(1)\n"
    ),
}


def test_run_report_screenshot_with_evidence_for_the_readme(tmp_path: Path) -> None:
    """The README's picture: a real run of a small project, with provenance and a review verdict as newer
    manifests carry them (kept when the manifest already has its own)."""
    repo = tmp_path / "shop"
    for rel, text in README_PROJECT.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    stages = [
        {"id": "build", "title": "Byte-compile", "command": "python3 -m compileall -q src && sleep 0.5"},
        {"id": "lint", "title": "Lint", "command": "python3 tools/lint.py src", "allow_failure": True},
        {"id": "test", "title": "Unit tests", "command": "python3 tools/tests.py -q"},
        {"id": "package", "title": "Build the wheel", "command": "python3 -m build --wheel"},
    ]
    write_config(repo, {"pipelines": [{"id": "ci", "title": "Shop CI", "stages": stages}]})
    result = invoke("start", "ci", "--json", "--repo", str(repo))
    assert result.exit_code == 1, result.stderr
    run_id = json.loads(result.stdout)["run_id"]
    path = repo / ".runs" / "default" / "cli" / run_id / "manifest.json"
    manifest = mf.read(path)
    manifest.setdefault("provenance", PROVENANCE)
    manifest.setdefault("review", REVIEW)
    page = tmp_path / "evidence.html"
    page.write_text(html.run_page(collect.run_report(manifest, path)), encoding="utf-8")
    dom = chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
    assert "Provenance" in dom and "Guardrails" in dom and "Review" in dom
    assert "changes requested" in dom or "approved" in dom
    assert "TypeError: total() got an unexpected keyword argument 'discount'" in dom and "[31m" not in dom
    shot = screenshot(tmp_path, page, "evidence.png", (1200, 1300))
    assert shot.stat().st_size > 40_000
    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
        DOCS_SHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, DOCS_SHOT)
    # the README shows this picture: it is there, and it is a screenshot of this page's size
    assert png_size(DOCS_SHOT) == (1200, 1300)


def test_metrics_page_in_chromium(real_run: tuple[Path, str], tmp_path: Path) -> None:
    repo, _ = real_run
    page = tmp_path / "metrics.html"
    result = invoke("report", "--metrics", "-o", str(page), "--repo", str(repo))
    assert result.exit_code == 0, result.stderr
    dom = chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
    assert "Run metrics" in dom and "Success rate" in dom and "p95 run duration" in dom
    assert dom.count("<svg") == 2 and "<script" not in dom
    shot = screenshot(tmp_path, page, "metrics.png", (1200, 900))
    assert shot.stat().st_size > 20_000


def test_install_script_is_idempotent_when_chromium_is_there() -> None:
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "install-chromium")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.strip() == shutil.which("chromium")
    assert done.stderr == ""  # nothing was installed or updated
    assert sys.executable  # (the script needs no Python)
