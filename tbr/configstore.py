"""Each repository's effective configuration, fetched from GitHub once and kept in SQLite.

A file is fetched again when a push to its repository's default branch touches it, and at every
sweep. A file that fails validation leaves the last valid configuration in force and says why.
"""

from __future__ import annotations

import json
from dataclasses import asdict, is_dataclass
from datetime import datetime

import structlog

from tbr.github import Gateway
from tbr.repoconfig import PATH, InvalidConfig, RepoConfig, layer, parse, refusals
from tbr.store import Store, iso

log = structlog.get_logger("tbr.configstore")


class RepoConfigs:
    def __init__(self, settings, store: Store, gateway: Gateway, clock):
        self.settings = settings
        self.store = store
        self.gateway = gateway
        self.clock = clock

    def get(self, inst: int, repo: str, at: datetime | None = None, sha: str | None = None) -> RepoConfig:
        """The configuration in force now, or (with `at`) for judging the change of that time and
        commit: the one in force before it, so a change to the file is judged under the old one."""
        org_source = org_file(repo)
        policy = (f"{org_source}:{PATH}", self._data(inst, org_source, at, sha))
        if repo.lower() == org_source.lower():
            return layer(self.settings, policy)  # the organization's own file is the policy
        return layer(self.settings, policy, (f"{repo}:{PATH}", self._data(inst, repo, at, sha)))

    def _data(self, inst: int, source: str, at: datetime | None = None, sha: str | None = None) -> dict | None:
        row = self._row(source)
        if row is None:
            self.refresh(inst, source)
            row = self._row(source)
        if at is not None:
            known, data = self.store.config_in_force(source, at, sha)
            if known:
                return json.loads(data) if data else None
        return json.loads(row[0]) if row and row[0] else None

    def _row(self, source: str):
        return self.store.db.execute("SELECT data, sha, problems FROM config_files WHERE repo = ? COLLATE NOCASE",
                                     [source]).fetchone()

    def refresh(self, inst: int, source: str, push=None) -> list[str]:
        """Fetch `source`'s file again; returns its problems ([] when valid or absent). `push` (an
        events.ChangeRef) is the push that changed it: who, which commit, from when."""
        fetched = self.gateway.file_text(inst, source, PATH)
        if fetched is None:
            self._save(inst, source, None, None, None, push)
            return []
        text, sha = fetched
        try:
            data = parse(text)
        except InvalidConfig as e:
            # Keep the last valid configuration in force.
            previous = self._row(source)
            self._save(inst, source, previous[0] if previous else None, sha, e.problems, push)
            log.warning("config.invalid", repo=source, problems=e.problems)
            return e.problems
        self._save(inst, source, json.dumps(data), sha, None, push)
        log.info("config.loaded", repo=source, keys=sorted(data))
        return []

    def _save(self, inst: int, source: str, data: str | None, sha: str | None, problems: list[str] | None,
              push) -> None:
        now = self.clock()
        # Judged against the policy as it is now; asked before taking the lock (it may fetch the org's file).
        refused = {} if data is None or source.lower() == org_file(source).lower() else layer(
            self.settings, (org_file(source), self._data(inst, org_file(source))), (source, json.loads(data))).refused
        with self.store.atomic():
            before = self._row(source)
            self.store.db.execute(
                "INSERT INTO config_files (repo, data, sha, problems, fetched_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(repo) DO UPDATE SET data = excluded.data, sha = excluded.sha,"
                " problems = excluded.problems, fetched_at = excluded.fetched_at",
                [source, data, sha, json.dumps(problems) if problems else None, iso(now)])
            stored = (sha, json.dumps(problems) if problems else None)
            changed = bool((before is None and sha) or (before is not None and tuple(before[1:]) != stored))
            previous = before[0] if before else None
            record = {"blob": sha, "changes": diff(previous, data), "refused": refused, "problems": problems}
            if not self.store.config_versions_known(source):
                if push is None:  # the first look at it: taken as in force all along
                    self.store.add_config_version(source, "first" if sha else "baseline", data, now, **record)
                    changed = False
                else:  # in force before this push: the file tbr had, or else the organization's policy alone
                    self.store.add_config_version(source, "baseline", previous, now)
            if changed:
                self.store.add_config_version(
                    source, "invalid" if problems else "removed" if sha is None else "changed", data, now,
                    effective_at=push.happened_at if push else now, commit_sha=push and push.sha,
                    actor=push and push.actor, **record)
            if changed or (before is None and sha):
                self.store.audit("config.invalid" if problems else "config.changed", source, push and push.actor,
                                 now, path=PATH, commit=push and push.sha, config=json.loads(data) if data else None,
                                 **{**record, "problems": problems or []})

    def problems(self, source: str) -> list[str]:
        row = self._row(source)
        return json.loads(row[2]) if row and row[2] else []


def org_file(repo: str) -> str:
    """The repository whose `.github/tbr.yml` is the organization's policy."""
    return f"{repo.split('/')[0]}/.github"


def diff(before: str | None, after: str | None) -> list[dict]:
    """What a file's own values changed: [{key, before, after}] (None: not set)."""
    old, new = json.loads(before) if before else {}, json.loads(after) if after else {}
    return [{"key": k, "before": old.get(k), "after": new.get(k)} for k in sorted({*old, *new})
            if old.get(k) != new.get(k)]


def touches_config(payload_commits: list[dict]) -> bool:
    """Does a push (its payload's commits) add, change or remove `.github/tbr.yml`?"""
    return any(PATH in (c.get("added", []) + c.get("modified", []) + c.get("removed", []))
               for c in payload_commits if isinstance(c, dict))


def describe(config: RepoConfig) -> str:
    """`tbr config show`: each effective value, where it came from, and what of a repository's file was refused."""
    width = max(len(k) for k in config.sources)
    lines = []
    for key, value in config.as_dict().items():
        shown = json.dumps(asdict(value) if is_dataclass(value) else list(value) if isinstance(value, tuple) else value,
                           ensure_ascii=False)
        if key == "branches" and config.default_branches:
            shown += " and the default and protected branches"
        lines.append(f"{key:<{width}}  {shown}  ({config.sources[key]})")
        lines += [f"{'':<{width}}  refused {k}: {why}" for k, why in refusals(config.refused, key).items()]
    return "\n".join(lines)


def check_status(problems: list[str], refused: dict[str, str]) -> tuple[str, str, str]:
    """`tbr/config` on the commit that changed a file: invalid, loosening keys refused, or taken. Pure."""
    if problems:
        return ("failure", f"{PATH} is invalid: the previous configuration stays in force",
                "\n".join(f"- `{p}`" for p in problems))
    if refused:
        return ("failure", f"{PATH}: {', '.join(refused)} refused, the organization's policy stays in force",
                "A repository's file may make the control stricter, never looser, unless the organization's"
                " `.github/tbr.yml` lists the key in `allow_repo_override`. The rest of the file applies.\n\n"
                + "\n".join(f"- `{k}`: {why}" for k, why in refused.items()))
    return "success", f"{PATH} is valid", "tbr uses it from now on."
