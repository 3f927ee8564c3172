"""Where runs get their pipelines from: the configuration on disk now (the CLI), or the configuration an
MCP session pinned when it started.

A model that may write only in the workspace can edit `codex.orchestrator.json`; a server that re-read
it on every call would run whatever the model wrote there. A pinned session loads the configuration
(the repository's and every declared project's) once, hashes the files, runs only what it loaded, and
refuses to start or resume a run once any of those files differs on disk.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from codex_orchestrator import hashing
from codex_orchestrator._typing import TYPE_CHECKING, Protocol
from codex_orchestrator.errors import ConfigChangedError, OrchestratorError

if TYPE_CHECKING:  # the configuration loads only when a command needs it (start-up cost)
    from codex_orchestrator.pipelines import config as cfg

CONFIG_FILE = "codex.orchestrator.json"  # == config.CONFIG_FILE (checked by the tests)
ConfigLoader = Callable[[Path], "cfg.RepoConfig"]
RESTART_HINT = (
    "restart the MCP server to use the new configuration (in Codex: start a new session), "
    "or serve with --reload-config to follow edits"
)


class ConfigSource(Protocol):
    pinned: bool  # whether edits on disk are ignored (and refused) rather than followed

    def load(self, root: Path) -> cfg.RepoConfig:
        """The configuration of `root` (the repository or a project folder)."""
        ...

    def verify(self) -> None:
        """Raise ConfigChangedError when runs may not use this source any more."""
        ...

    def changed(self) -> list[Path]:
        """The configuration files that differ on disk from what this source runs."""
        ...


class LiveConfig:
    """The configuration as it is on disk at each call (the CLI, and `mcp serve --reload-config`)."""

    pinned = False

    def load(self, root: Path) -> cfg.RepoConfig:
        from codex_orchestrator.pipelines import config as cfg

        return cfg.load(root)

    def verify(self) -> None:
        return None

    def changed(self) -> list[Path]:
        return []


LIVE = LiveConfig()


def file_digest(path: Path) -> str | None:
    """sha256 of a file's bytes; None when there is no such file (or it cannot be read)."""
    try:
        return hashing.sha256_file(path)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except OSError as exc:
        return f"unreadable:{exc.errno}"


class PinnedConfig:
    """The configuration of one repository as loaded at a moment: what a session runs, and what it
    watches for changes."""

    pinned = True

    def __init__(
        self,
        repo: Path,
        digests: dict[Path, str | None] | None = None,
        loaded: dict[Path, cfg.RepoConfig | OrchestratorError] | None = None,
    ) -> None:
        self.repo = repo
        self.digests = digests if digests is not None else {}  # config file -> its hash at pin time
        self.loaded = loaded if loaded is not None else {}  # root -> config

    @classmethod
    def pin(cls, repo: Path, *, attempts: int = 3) -> PinnedConfig:
        """Load and hash the repository's configuration and each declared project's. A file edited
        while we read it is read again; an invalid configuration is pinned as that error."""
        repo = repo.resolve()
        pinned = cls(repo)
        for _ in range(attempts):
            pinned = cls._read(repo)
            if all(file_digest(p) == d for p, d in pinned.digests.items()):
                break
        return pinned

    @classmethod
    def _read(cls, repo: Path) -> PinnedConfig:
        pinned = cls(repo)
        pinned._load(repo)
        top = pinned.loaded[repo]
        if not isinstance(top, OrchestratorError):
            for project in top.projects.values():
                folder = (repo / project.path).resolve()
                if folder == repo or repo not in folder.parents:
                    continue  # refused when used (cfg.project_root)
                pinned.digests[folder / CONFIG_FILE] = file_digest(folder / CONFIG_FILE)
                if folder.is_dir():
                    pinned._load(folder)
        return pinned

    def _load(self, root: Path) -> None:
        from codex_orchestrator.pipelines import config as cfg

        path = root / CONFIG_FILE
        self.digests[path] = file_digest(path)
        try:
            self.loaded[root] = loaded = cfg.load(root)
            loaded.pipelines.pipelines  # noqa: B018 - the built-in pipeline as detected now, at pin time
        except OrchestratorError as exc:
            self.loaded[root] = exc

    def load(self, root: Path) -> cfg.RepoConfig:
        found = self.loaded.get(root.resolve())
        if found is None:
            raise ConfigChangedError(
                f"{root} had no configuration when the MCP server started; it runs only what it loaded then",
                hint=RESTART_HINT,
            )
        if isinstance(found, OrchestratorError):
            raise found
        return found

    def changed(self) -> list[Path]:
        """The pinned configuration files whose content (or existence) differs on disk now."""
        return [path for path, digest in self.digests.items() if file_digest(path) != digest]

    def verify(self) -> None:
        changed = self.changed()
        if changed:
            names = ", ".join(_rel(p, self.repo) for p in changed)
            raise ConfigChangedError(
                f"{names} changed on disk since the MCP server started; this session runs only the "
                "pipelines it loaded then, so it starts and resumes no run until it is restarted",
                hint=RESTART_HINT,
            )


def _rel(path: Path, repo: Path) -> str:
    try:
        return str(path.relative_to(repo))
    except ValueError:
        return str(path)
