"""Each repository's effective configuration, fetched from GitHub once and kept in SQLite.

A file is fetched again when a push to its repository's default branch touches it, and at every
sweep. A file that fails validation leaves the last valid configuration in force and says why.
"""

from __future__ import annotations

import json
from dataclasses import asdict, is_dataclass

import structlog

from tbr.github import Gateway
from tbr.repoconfig import PATH, InvalidConfig, RepoConfig, layer, parse
from tbr.store import Store, from_iso, iso

log = structlog.get_logger("tbr.configstore")


class RepoConfigs:
    def __init__(self, settings, store: Store, gateway: Gateway, clock):
        self.settings = settings
        self.store = store
        self.gateway = gateway
        self.clock = clock

    def get(self, inst: int, repo: str) -> RepoConfig:
        org = repo.split("/")[0]
        org_source = f"{org}/.github"
        layers = [] if repo.lower() == org_source.lower() else [(f"{org_source}:{PATH}", self._data(inst, org_source))]
        layers.append((f"{repo}:{PATH}", self._data(inst, repo)))
        return layer(self.settings, *layers)

    def _data(self, inst: int, source: str) -> dict | None:
        row = self.store.db.execute("SELECT data FROM config_files WHERE repo = ? COLLATE NOCASE", [source]).fetchone()
        if row is None:
            self.refresh(inst, source)
            row = self.store.db.execute("SELECT data FROM config_files WHERE repo = ? COLLATE NOCASE",
                                        [source]).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def refresh(self, inst: int, source: str) -> list[str]:
        """Fetch `source`'s file again; returns its problems ([] when valid or absent)."""
        fetched = self.gateway.file_text(inst, source, PATH)
        now = iso(self.clock())
        if fetched is None:
            self._save(source, None, None, None, now)
            return []
        text, sha = fetched
        try:
            data = parse(text)
        except InvalidConfig as e:
            # Keep the last valid configuration in force.
            previous = self.store.db.execute("SELECT data FROM config_files WHERE repo = ? COLLATE NOCASE",
                                             [source]).fetchone()
            self._save(source, previous[0] if previous else None, sha, json.dumps(e.problems), now)
            log.warning("config.invalid", repo=source, problems=e.problems)
            return e.problems
        self._save(source, json.dumps(data), sha, None, now)
        log.info("config.loaded", repo=source, keys=sorted(data))
        return []

    def _save(self, source: str, data: str | None, sha: str | None, problems: str | None, now: str) -> None:
        with self.store.atomic():
            before = self.store.db.execute("SELECT sha, problems FROM config_files WHERE repo = ? COLLATE NOCASE",
                                           [source]).fetchone()
            self.store.db.execute(
                "INSERT INTO config_files (repo, data, sha, problems, fetched_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(repo) DO UPDATE SET data = excluded.data, sha = excluded.sha,"
                " problems = excluded.problems, fetched_at = excluded.fetched_at",
                [source, data, sha, problems, now])
            if (before is None and sha) or (before is not None and tuple(before) != (sha, problems)):
                self.store.audit("config.invalid" if problems else "config.changed", source, None,
                                 from_iso(now), path=PATH, blob=sha, config=json.loads(data) if data else None,
                                 problems=json.loads(problems) if problems else [])

    def problems(self, source: str) -> list[str]:
        row = self.store.db.execute("SELECT problems FROM config_files WHERE repo = ? COLLATE NOCASE",
                                    [source]).fetchone()
        return json.loads(row[0]) if row and row[0] else []


def touches_config(payload_commits: list[dict]) -> bool:
    """Does a push (its payload's commits) add, change or remove `.github/tbr.yml`?"""
    return any(PATH in (c.get("added", []) + c.get("modified", []) + c.get("removed", []))
               for c in payload_commits if isinstance(c, dict))


def describe(config: RepoConfig) -> str:
    """`tbr config show`: each effective value and where it came from."""
    width = max(len(k) for k in config.sources)
    lines = []
    for key, value in config.as_dict().items():
        shown = json.dumps(asdict(value) if is_dataclass(value) else list(value) if isinstance(value, tuple) else value,
                           ensure_ascii=False)
        lines.append(f"{key:<{width}}  {shown}  ({config.sources[key]})")
    return "\n".join(lines)
