"""The only accessor of bundled assets (schemas, templates), through importlib.resources (schemas through
the package loader, which costs less at start-up).

The top-level `schemas/` and `templates/` folders are the single source; they reach the package as
`codex_orchestrator/_assets/{schemas,templates}` (links in a checkout, real files in a wheel or .pyz).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from functools import cache

from codex_orchestrator._typing import TYPE_CHECKING
from codex_orchestrator.errors import AssetError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable
    from typing import Any

_PACKAGE = "codex_orchestrator"


def assets_root() -> Traversable:
    from importlib import resources

    return resources.files(_PACKAGE).joinpath("_assets")


def schema_file(name: str) -> Traversable:
    return assets_root().joinpath("schemas", name)


def _asset_bytes(*parts: str) -> bytes:
    """A bundled file's bytes straight from the package's loader (a folder, or the `.pyz` through
    zipimport), without importlib.resources: `start` reads its schemas this way, and that import costs
    more than the read."""
    import codex_orchestrator

    loader = getattr(codex_orchestrator.__spec__, "loader", None)
    get_data = getattr(loader, "get_data", None)
    if get_data is None or not codex_orchestrator.__file__:
        return assets_root().joinpath(*parts).read_bytes()
    try:
        data = get_data(os.path.join(os.path.dirname(codex_orchestrator.__file__), "_assets", *parts))
    except OSError as exc:
        raise FileNotFoundError(exc.errno, exc.strerror, "/".join(parts)) from None
    return bytes(data)


@cache
def schema(name: str) -> dict[str, Any]:
    """Load a bundled JSON schema by file name (e.g. 'manifest.schema.json')."""
    try:
        data = json.loads(_asset_bytes("schemas", name).decode("utf-8"))
    except FileNotFoundError as exc:
        raise AssetError(
            f"bundled schema {name!r} is missing",
            hint="reinstall codex-orchestrator or download the release asset again",
        ) from exc
    except ValueError as exc:
        raise AssetError(
            f"bundled schema {name!r} is not valid JSON: {exc}",
            hint="reinstall codex-orchestrator or download the release asset again",
        ) from exc
    if not isinstance(data, dict):
        raise AssetError(f"bundled schema {name!r} is not a JSON object")
    return data


def list_schemas() -> list[str]:
    root = assets_root().joinpath("schemas")
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.name.endswith(".json"))


def templates_root() -> Traversable:
    return assets_root().joinpath("templates")


def iter_template_files(
    base: Traversable | None = None, prefix: str = ""
) -> Iterator[tuple[str, Traversable]]:
    """Yield (relative posix path, node) for every bundled template file, sorted."""
    node = base if base is not None else templates_root()
    if not node.is_dir():
        return
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        rel = f"{prefix}{child.name}"
        if child.is_dir():
            yield from iter_template_files(child, rel + "/")
        elif child.is_file():
            yield rel, child


def template_text(rel: str) -> str:
    node = templates_root()
    for part in rel.split("/"):
        node = node.joinpath(part)
    try:
        return node.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise AssetError(f"bundled template {rel!r} is missing", hint="reinstall codex-orchestrator") from exc


def package_text(package: str, name: str) -> str:
    """A text file shipped inside one of our sub-packages (`scale.patterns`, `index.json`)."""
    from importlib import resources

    try:
        return resources.files(package).joinpath(name).read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise AssetError(
            f"bundled file {package}/{name} is missing", hint="reinstall codex-orchestrator"
        ) from exc
