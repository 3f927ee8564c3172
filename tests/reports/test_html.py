"""The HTML pages: self-contained, every log and config text escaped, a timeline to scale, statuses in
words and icons, and the metrics page's charts over time."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from reportkit import stage, write_run

from codex_orchestrator.reports import collect, html


class Parsed(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def assert_self_contained(page: str) -> Parsed:
    parsed = Parsed(page)
    tags = {tag for tag, _ in parsed.tags}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed", "base", "form", "image"}
    for tag, attrs in parsed.tags:
        assert not {"src", "href", "xlink:href", "srcset", "action"} & set(attrs), (tag, attrs)
        assert not any(k.startswith("on") for k in attrs), (tag, attrs)
    assert "url(" not in page and "@import" not in page
    assert "default-src 'none'" in page  # the CSP meta tag: nothing may load even if something slipped in
    return parsed


@pytest.fixture
def page(tmp_path: Path) -> str:
    return html.run_page(collect.load(write_run(tmp_path)), generated_at="2026-11-30T11:00:00Z")


def test_run_page_is_self_contained_and_escapes_the_hostile_log(page: str) -> None:
    parsed = assert_self_contained(page)
    text = "".join(parsed.text)
    # the log's markup is text on the page, not markup
    assert "<script>alert('x')</script></pre><b>bold</b><img src=http://127.0.0.1/x>" in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&lt;/pre&gt;&lt;b&gt;" in page
    assert page.count("<pre>") == page.count("</pre>") == 2  # lint's and test's tails, nothing closes early
    assert "\x1b" not in page and "\x00" not in page and "\x07" not in page and "\r" not in page
    assert "\ufffd not utf-8" in text and "\\x07 bell" in text and "FAILED test_login" in text
    assert "pwned" not in text  # the terminal title escape is stripped, not shown


def test_run_page_shows_evidence_and_statuses_in_words(page: str) -> None:
    text = " ".join(" ".join(Parsed(page).text).split())
    assert "CI checks ✖ failed" in text
    assert "Provenance ! commit 3f2a9c1d4b5e on main, uncommitted changes" in text
    assert "Guardrails ✖ failed (required); failed: test; missing: spec-guard" in text
    assert "Review ✖ changes requested (completed" in text
    for label in ("✔ succeeded", "✖ failed (allowed)", "✖ failed", "⤼ skipped", "○ not run"):
        assert label in text, label
    assert "manifest " in text and "report generated 2026-11-30T11:00:00Z" in text


def test_timeline_bars_are_drawn_to_scale(page: str) -> None:
    rects = {
        m.group("title").split(":")[0]: (float(m.group("x")), float(m.group("w")))
        for m in re.finditer(
            r'<rect x="(?P<x>[\d.]+)" y="[\d.]+" width="(?P<w>[\d.]+)"[^>]*><title>(?P<title>[^<]+)</title>',
            page,
        )
    }
    assert set(rects) == {"build", "lint", "test"}  # stages that did not run have no bar
    label_w, plot_w, total = 190, 1000 - 190 - 150, 47.0
    for stage_id, start, duration in (("build", 0.0, 12.0), ("lint", 12.5, 4.0), ("test", 17.0, 30.0)):
        x, w = rects[stage_id]
        assert x == pytest.approx(label_w + plot_w * start / total, abs=0.1)
        assert w == pytest.approx(plot_w * duration / total, abs=0.1)
    assert rects["test"][1] / rects["build"][1] == pytest.approx(30 / 12, rel=0.01)


def test_a_minimal_old_manifest_renders(tmp_path: Path) -> None:
    path = write_run(tmp_path, provenance=False, review=False, stages=[])
    page = html.run_page(collect.load(path))
    text = " ".join(" ".join(Parsed(page).text).split())
    assert "not recorded (this manifest predates provenance)" in text and "no review recorded" in text
    assert_self_contained(page)


def _entry(day: int, hour: int, status: str, duration: float) -> dict[str, Any]:
    return {
        "run_id": f"r{day}{hour}{status}{duration}",
        "status": status,
        "completed_at": f"2026-11-{day:02d}T{hour:02d}:00:00Z",
        "duration_seconds": duration,
    }


def test_buckets_by_day_then_hour() -> None:
    days = [_entry(1, 9, "succeeded", 10), _entry(1, 10, "failed", 30), _entry(2, 9, "succeeded", 20)]
    grain, groups = html.buckets(days)
    assert grain == "day"
    assert [(g["bucket"], g["runs"], g["success_rate"], g["p95_seconds"]) for g in groups] == [
        ("2026-11-01", 2, 0.5, 30.0),
        ("2026-11-02", 1, 1.0, 20.0),
    ]
    grain, groups = html.buckets(days[:2])
    assert grain == "hour" and [g["bucket"] for g in groups] == ["2026-11-01 09:00", "2026-11-01 10:00"]
    assert html.buckets([]) == ("day", [])


def test_metrics_page_plots_success_rate_and_p95_over_time() -> None:
    entries = [
        _entry(1, 9, "succeeded", 10),
        _entry(1, 10, "failed", 30),
        _entry(2, 9, "succeeded", 20),
        _entry(3, 9, "succeeded", 40),
    ]
    summary = {
        "runs": 4,
        "success_rate": 0.75,
        "duration_p95_seconds": 40.0,
        "guardrail_coverage": 0.5,
        "reviewer_readiness": 0.5,
        "reviewer_ready": False,
        "roots": ["/r/.runs"],
        "by_pipeline": {"<b>ci</b>": {"runs": 4, "succeeded": 3}},
    }
    page = html.metrics_page(summary, entries, generated_at="2026-11-30T11:00:00Z")
    parsed = assert_self_contained(page)
    assert page.count("<svg") == 2 and page.count("<polyline") == 2
    titles = re.findall(r"<circle [^>]*><title>([^<]+)</title>", page)
    assert titles == [
        "2026-11-01: 50%",
        "2026-11-02: 100%",
        "2026-11-03: 100%",
        "2026-11-01: 30s",
        "2026-11-02: 20s",
        "2026-11-03: 40s",
    ]
    text = " ".join(" ".join(parsed.text).split())
    assert "Success rate 75.0%" in text and "p95 duration 40s" in text and "✖ 50.0% (below 95%)" in text
    assert "<b>ci</b>" in text and "&lt;b&gt;ci&lt;/b&gt;" in page


def test_metrics_page_without_runs() -> None:
    page = html.metrics_page({"runs": 0, "roots": []}, [])
    assert "No finished runs recorded yet." in page and "<svg" not in page


def test_a_run_still_going_renders_its_running_stage(tmp_path: Path) -> None:
    stages = [
        stage(1, "build", "succeeded", start=0.0, duration=2.0, exit_code=0),
        stage(2, "test", "running", start=2.0),
        stage(3, "docs", "pending"),
    ]
    path = write_run(tmp_path, status="in_progress", stages=stages, completed_at=None)
    page = html.run_page(collect.load(path))
    text = " ".join(" ".join(Parsed(page).text).split())
    assert "CI checks ▶ in progress" in text and "▶ running" in text and "○ pending" in text
    assert "Output of failed stages" not in text
