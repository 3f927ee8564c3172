"""Run manifests as MCP resources: `orchestrator://runs/<task_id>/<run_id>/manifest`.

Every path is built from validated ids and resolved (symlinks too) inside the runs root before it is
read; a URI that does not name a manifest there is "not found", never a read elsewhere.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from codex_orchestrator.errors import OrchestratorError
from codex_orchestrator.ids import validate_id, validate_run_id
from codex_orchestrator.runs import manifest as mf
from codex_orchestrator.runs.layout import Roots

SCHEME = "orchestrator"
URI_TEMPLATE = "orchestrator://runs/{task_id}/{run_id}/manifest"
MIME = "application/json"
PAGE_SIZE = 50
_URI_RE = re.compile(r"^orchestrator://runs/([^/]{1,128})/([^/]{1,128})/manifest$")


class ResourceNotFoundError(Exception):
    """The URI names no readable manifest; the message says why."""


@dataclass(frozen=True)
class ManifestResource:
    uri: str
    name: str
    title: str
    description: str
    size: int | None

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "uri": self.uri,
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "mimeType": MIME,
        }
        if self.size is not None:
            out["size"] = self.size
        return out


def uri_for(task_id: str, run_id: str) -> str:
    return f"{SCHEME}://runs/{task_id}/{run_id}/manifest"


def list_page(roots: Roots, cursor: str | None) -> tuple[list[ManifestResource], str | None]:
    """One page of manifests, newest first, and the cursor of the next page (None at the end)."""
    try:
        offset = int(cursor) if cursor else 0
    except ValueError:
        raise ResourceNotFoundError(
            f"invalid cursor {cursor!r}; pass the nextCursor of a previous page"
        ) from None
    if offset < 0:
        raise ResourceNotFoundError(f"invalid cursor {cursor!r}")
    runs = roots.iter_runs()
    page = runs[offset : offset + PAGE_SIZE]
    items = []
    for paths in page:
        task_id, run_id = paths.task_id, paths.run_id
        path = paths.manifest
        try:
            path = roots.contain(path)
            size = path.stat().st_size
        except (OrchestratorError, OSError):
            continue  # missing, or leading out of the runs root: not ours to show
        try:
            data = mf.read(path)
        except OrchestratorError as exc:
            items.append(
                ManifestResource(
                    uri=uri_for(task_id, run_id),
                    name=f"{task_id}/{run_id}",
                    title=f"run {run_id} (damaged)",
                    description=f"Damaged run {run_id} of task {task_id} at {paths.dir}: {exc.message}",
                    size=size,
                )
            )
            continue
        items.append(
            ManifestResource(
                uri=uri_for(task_id, run_id),
                name=f"{task_id}/{run_id}",
                title=f"{data.get('pipeline_id')} run {run_id} ({data.get('status')})",
                description=f"Manifest of run {run_id}: pipeline {data.get('pipeline_id')}, task {task_id}, "
                f"status {data.get('status')}",
                size=size,
            )
        )
    following = offset + PAGE_SIZE
    return items, (str(following) if following < len(runs) else None)


def read(roots: Roots, uri: str) -> str:
    """The manifest text behind `uri`, or ResourceNotFoundError."""
    match = _URI_RE.match(uri)
    if match is None:
        raise ResourceNotFoundError(f"unknown resource {uri!r}; manifests look like {URI_TEMPLATE}")
    task_id, run_id = match.groups()
    try:
        validate_id("task", task_id)
        validate_run_id(run_id)
        path = roots.contain(roots.run(task_id, run_id).manifest)
        text = path.read_text(encoding="utf-8")
        json.loads(text)
    except OrchestratorError as exc:
        raise ResourceNotFoundError(f"resource {uri!r}: {exc.message}") from None
    except (OSError, ValueError):
        raise ResourceNotFoundError(
            f"no readable manifest for run {run_id!r} of task {task_id!r}; resources/list shows the runs"
        ) from None
    return text
