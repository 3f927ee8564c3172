"""self-check: verify the running artifact, from the inside.

Every bundled schema and template is read afresh through importlib.resources (so it works the same
from a checkout, a wheel and the .pyz), a sample manifest built by the real manifest code is validated
with both the built-in validator and jsonschema, and the build facts are reported.
"""

from __future__ import annotations

import importlib.util
import json
import platform
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from codex_orchestrator import __version__, hashing, resources, runtime
from codex_orchestrator import validation as schemacheck
from codex_orchestrator.checks import specguard
from codex_orchestrator.codex import init as init_codex
from codex_orchestrator.errors import AssetError, OrchestratorError
from codex_orchestrator.ids import new_run_id
from codex_orchestrator.pipelines.model import Pipeline, Stage, spec_guard_stage
from codex_orchestrator.runs.manifest import new_manifest

DIST_NAME = "codex-orchestrator"
REQUIRED_SCHEMAS = ("config.schema.json", "manifest.schema.json")
BUILD_INFO = "build-info.json"
LIBS = "libs.zip"  # the .pyz's stored archive of the libraries the plain CLI does not import
ENVIRONMENT = "environment.json"
SAMPLE_REPO = Path("/sample/repo")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": "ok" if self.ok else "failed", "detail": self.detail}


def _jsonschema_check(schema: dict[str, Any]) -> Any:
    """A jsonschema validator for `schema` (checked to be a valid 2020-12 schema)."""
    import jsonschema  # lazy: ~100 ms, only self-check and tests need it

    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _official_errors(schema: dict[str, Any], instance: Any) -> list[str]:
    validator = _jsonschema_check(schema)
    return [
        f"$.{'.'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    ]


def load_schema(name: str) -> dict[str, Any]:
    """Read a bundled schema afresh (no cache) and check both validators accept it."""
    node = resources.schema_file(name)
    if not node.is_file():
        raise AssetError(f"bundled schema {name} is missing")
    try:
        data = json.loads(node.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise AssetError(f"bundled schema {name} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise AssetError(f"bundled schema {name} is not a JSON object")
    schemacheck.check_schema_keywords(data)
    try:
        _jsonschema_check(data)
    except ImportError as exc:  # the library, not the schema: e.g. an extraction root that takes no writes
        raise AssetError(f"cannot check {name}: jsonschema does not load: {exc}".split("\n")[0]) from None
    except Exception as exc:  # jsonschema.SchemaError, or anything the library raises on a bad schema
        raise AssetError(f"bundled schema {name} is not a valid JSON Schema: {exc}".split("\n")[0]) from None
    return data


def _check_schemas(checks: list[Check]) -> dict[str, dict[str, Any]]:
    loaded: dict[str, dict[str, Any]] = {}
    for name in sorted(set(resources.list_schemas()) | set(REQUIRED_SCHEMAS)):
        try:
            loaded[name] = load_schema(name)
            checks.append(Check(f"schema {name}", True, "present, valid JSON Schema 2020-12"))
        except OrchestratorError as exc:
            checks.append(Check(f"schema {name}", False, exc.message))
    return loaded


def _check_rendered(entry: init_codex.TemplateEntry, text: str, config_schema: dict[str, Any] | None) -> str:
    """Parse a rendered template by kind; return a detail line or raise ValueError."""
    if init_codex.PLACEHOLDER_RE.search(text):
        raise ValueError("a placeholder was left unrendered")
    if entry.kind in ("json", "config"):
        data = json.loads(text)
        if entry.kind == "config":
            if config_schema is None:
                raise ValueError("cannot validate: config.schema.json failed its own check (above)")
            errors = [str(e) for e in schemacheck.Validator(config_schema).errors(data)]
            errors += _official_errors(config_schema, data)
            if errors:
                raise ValueError(f"does not match config.schema.json: {errors[0]}")
            return "valid JSON, matches config.schema.json"
        return "valid JSON"
    if entry.kind == "toml":
        data = tomllib.loads(text)
        server = data.get("mcp_servers", {}).get("orchestrator", {})
        if not isinstance(server.get("command"), str) or not isinstance(server.get("args"), list):
            raise ValueError("has no [mcp_servers.orchestrator] with command and args")
        return "valid TOML with command and args"
    fm = specguard.front_matter(text)
    if entry.path.startswith(specguard.SPECS_DIR + "/") and (fm is None or "last_review" not in fm):
        raise ValueError("has no last_review front-matter")
    return "Markdown" + (" with last_review front-matter" if fm else "")


def _check_templates(checks: list[Check], config_schema: dict[str, Any] | None) -> None:
    ctx = init_codex.RenderContext(
        repo=SAMPLE_REPO,
        project="sample",
        today="2000-01-01",
        mcp_command="python3",
        mcp_args=("/sample/codex-orchestrator.pyz", "mcp", "serve", "--repo", str(SAMPLE_REPO)),
        codex_mcp_add="codex mcp add orchestrator -- python3 /sample/codex-orchestrator.pyz mcp serve",
    )
    listed = set()
    for entry in init_codex.CATALOG:
        listed.add(entry.path)
        name = f"template {entry.path}"
        try:
            raw = resources.template_text(entry.path)
            version = init_codex.template_version(raw)
            if version is None:
                raise ValueError("has no templateVersion marker")
            content, _ = init_codex.render(entry, ctx, which=lambda _name: None)
            detail = _check_rendered(entry, content.decode("utf-8"), config_schema)
            checks.append(Check(name, True, f"templateVersion {version}, {detail}"))
        except (OrchestratorError, ValueError, UnicodeDecodeError) as exc:
            message = exc.message if isinstance(exc, OrchestratorError) else str(exc)
            checks.append(Check(name, False, message))
    for rel, node in resources.iter_template_files():
        if rel in listed:
            continue
        try:
            ok = init_codex.template_version(node.read_text(encoding="utf-8")) is not None
        except (OSError, UnicodeDecodeError):
            ok = False
        checks.append(Check(f"template {rel}", ok, "extra file" + ("" if ok else ": no templateVersion")))


def sample_manifest() -> dict[str, Any]:
    """A manifest built in memory by the real manifest code, for a small real-looking pipeline."""
    now = datetime.now(UTC)
    pipeline = Pipeline(
        id="self-check",
        title="Self-check sample",
        stages=(
            Stage(id="build", title="Build", command=("python3", "-m", "compileall", "-q", "src")),
            spec_guard_stage(),
        ),
        guardrails_required=True,
        source="builtin",
    )
    run_id = new_run_id(now)
    return new_manifest(
        task_id="self-check",
        run_id=run_id,
        pipeline=pipeline,
        repo_root=SAMPLE_REPO,
        run_dir=SAMPLE_REPO / ".runs" / "self-check" / "cli" / run_id,
        now=now,
        token_sha256=hashing.sha256_hex(b"self-check"),
    )


def _check_manifest(checks: list[Check], schema: dict[str, Any] | None) -> None:
    if schema is None:
        checks.append(Check("sample manifest", False, "cannot validate: manifest.schema.json failed (above)"))
        return
    manifest = sample_manifest()
    ours = [str(v) for v in schemacheck.Validator(schema).errors(manifest)]
    checks.append(Check("sample manifest (built-in validator)", not ours, ours[0] if ours else "valid"))
    official = _official_errors(schema, manifest)
    checks.append(Check("sample manifest (jsonschema)", not official, official[0] if official else "valid"))


def _check_version(checks: list[Check]) -> str | None:
    from importlib import metadata

    try:
        installed = metadata.version(DIST_NAME)
    except metadata.PackageNotFoundError:
        checks.append(Check("version", True, f"{__version__} (no distribution metadata: source checkout)"))
        return None
    same = installed == __version__
    detail = f"{__version__}" if same else f"package says {__version__}, distribution metadata {installed}"
    checks.append(Check("version", same, detail))
    return installed


def _read_build(checks: list[Check], archive: Path) -> dict[str, Any]:
    build: dict[str, Any] = {"environment": None, "build_info": None}
    try:
        with zipfile.ZipFile(archive) as zf:
            names = set(zf.namelist())
            for key, member in (("environment", ENVIRONMENT), ("build_info", BUILD_INFO)):
                if member not in names:
                    continue
                try:
                    build[key] = json.loads(zf.read(member))
                except ValueError as exc:
                    checks.append(Check(f"build metadata {member}", False, f"not valid JSON: {exc}"))
                    continue
                checks.append(Check(f"build metadata {member}", True, "present, valid JSON"))
    except (OSError, zipfile.BadZipFile) as exc:
        checks.append(Check("build metadata", False, f"cannot read {archive}: {exc}"))
    return build


def _member_sha256(zf: zipfile.ZipFile, member: str) -> str:
    with zf.open(member) as fh:
        return hashing.sha256_stream(fh)


def _check_extracted(checks: list[Check], archive: Path, folder: Path | None) -> None:
    """What the launcher copied out of the archive (`libs.zip`, compiled modules) is, byte for byte,
    what the archive holds: imports trust those files once they exist."""
    if folder is None or not folder.is_dir():
        return
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".tmp"))
    if not files:
        return
    differ: list[str] = []
    try:
        with zipfile.ZipFile(archive) as outer:
            inner = zipfile.ZipFile(outer.open(LIBS)) if LIBS in outer.namelist() else None
            inner_names = set(inner.namelist()) if inner is not None else set()
            for path in files:
                member = path.relative_to(folder).as_posix()
                source = outer if member == LIBS else inner
                if source is None or (source is inner and member not in inner_names):
                    differ.append(f"{member} (not in the archive)")
                elif hashing.sha256_file(path) != _member_sha256(source, member):
                    differ.append(member)
    except (OSError, zipfile.BadZipFile) as exc:
        checks.append(Check("extracted files", False, f"cannot compare {folder} with {archive}: {exc}"))
        return
    if differ:
        shown = ", ".join(differ[:3]) + (f" and {len(differ) - 3} more" if len(differ) > 3 else "")
        detail = (
            f"{shown} in {folder} differ from the archive; remove that folder (the next run extracts again)"
        )
    else:
        detail = f"{len(files)} file(s) in {folder}, each equal to the archive's"
    checks.append(Check("extracted files", not differ, detail))


def _package_dir() -> str | None:
    spec = importlib.util.find_spec("codex_orchestrator")
    locations = list(spec.submodule_search_locations or []) if spec else []
    return locations[0] if locations else None


REINSTALL = "reinstall codex-orchestrator or download the release asset again"
UNLOADABLE = (
    "the bundled libraries do not load (the reason is above): set SHIV_ROOT to an absolute, writable folder "
    "on a file system that allows executing, then run self-check again"
)


def _hint(failed: list[str]) -> str | None:
    """The fix for what failed: a damaged artifact is replaced; libraries that do not load (an unusable
    extraction folder) need another folder, not another download."""
    if not failed:
        return None
    try:
        import jsonschema  # noqa: F401 - (what the failed checks needed)
    except ImportError:
        return UNLOADABLE
    return REINSTALL


def _libc() -> str | None:
    """glibc as the platform module reads it; musl as the .pyz's launcher read it (on musl the platform
    module finds only a bare "libc", with no version)."""
    name, version = platform.libc_ver()
    if name and version:
        return f"{name} {version}"
    return (runtime.launcher_info() or {}).get("libc") or None


def run() -> dict[str, Any]:
    """Run every check; the report names each failure."""
    checks: list[Check] = []
    dist_version = _check_version(checks)
    schemas = _check_schemas(checks)
    _check_templates(checks, schemas.get("config.schema.json"))
    _check_manifest(checks, schemas.get("manifest.schema.json"))
    archive = runtime.pyz_path()
    artifact: dict[str, Any]
    build: dict[str, Any] = {"environment": None, "build_info": None}
    launcher = runtime.launcher_info()
    if archive is not None:
        artifact = {
            "kind": "pyz",
            "path": str(archive),
            "sha256": hashing.sha256_file(archive),
            "size": archive.stat().st_size,
        }
        build = _read_build(checks, archive)
        extracted = (launcher or {}).get("extracted")
        _check_extracted(checks, archive, Path(extracted) if extracted else None)
    else:
        artifact = {"kind": "package", "path": _package_dir(), "sha256": None, "size": None}
    build["launcher"] = launcher
    failed = [c.name for c in checks if not c.ok]
    return {
        "hint": _hint(failed),
        "status": "failed" if failed else "ok",
        "version": __version__,
        "distribution_version": dist_version,
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "platform": {
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
            "libc": _libc(),
            "platform": platform.platform(),
        },
        "artifact": artifact,
        "build": build,
        "checks": [c.to_dict() for c in checks],
        "failed": failed,
        "exit_code": 1 if failed else 0,
    }
