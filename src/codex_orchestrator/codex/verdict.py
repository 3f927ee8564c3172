"""Reading Codex's answer: the review verdict, and the signs that Codex cannot reach its model."""

from __future__ import annotations

import re

# Codex cannot reach its model: its stream errors and reconnect notices. A second such line, or one
# followed by UNREACHABLE_GRACE_SECONDS without an answer, ends the review at once (Codex would otherwise
# retry with back-off until the timeout).
UNREACHABLE_RE = re.compile(
    r"(stream error|stream disconnected|error sending request|connection refused|"
    r"tcp connect error|dns error|failed to lookup address|network is unreachable|"
    r"reconnecting\.\.\.|waiting for network|retrying \d+/\d+|could not connect|connection reset|"
    r"timed out connecting)",
    re.IGNORECASE,
)
UNREACHABLE_LINES = 2
UNREACHABLE_GRACE_SECONDS = 5.0
# The verdict: a line of its own (markdown decoration allowed); the last one in Codex's answer counts.
VERDICT_RE = re.compile(r"^[\s>*_`#-]*VERDICT\s*:\s*[*_`]*\s*(APPROVE|REQUEST[ _-]CHANGES)\b", re.IGNORECASE)


def parse_verdict(text: str, prompt_lines: set[str] | None = None) -> str:
    """approve | request_changes | none: the last verdict line of Codex's output (lines that only echo
    the prompt are ignored)."""
    verdict = "none"
    for line in text.splitlines():
        match = VERDICT_RE.match(line)
        if match is None or (prompt_lines and line.strip() in prompt_lines):
            continue
        verdict = "approve" if match.group(1).upper() == "APPROVE" else "request_changes"
    return verdict


def unreachable_lines(text: str, prompt_lines: set[str] | None = None) -> list[str]:
    """Lines of `text` saying Codex cannot reach its model (lines echoing the prompt are ignored)."""
    return [
        line.strip()
        for line in text.splitlines()
        if UNREACHABLE_RE.search(line) and not (prompt_lines and line.strip() in prompt_lines)
    ]
