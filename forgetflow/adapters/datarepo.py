"""The data registry: a git + DVC repo inside the workspace, one tag per data version.

This module is the only one that runs git or DVC. Files in a version:
  manifest.csv      DVC  ids, labels, split, subject of every row in the version
  exclusions.csv    DVC  every id ever forgotten, with the request and batch that dropped it
  poison/train.npz  DVC  project-owned poisoned training rows (backdoor studies), if any
  version.json      git  what the version is: number, parent, source params, digests, batch
Versions only move forward; writers hold a file lock so DVC never runs twice at once.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
import shutil
import subprocess
import sys
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

from forgetflow.adapters.stack import ensure_bucket
from forgetflow.adapters.workspace import S3Settings, Workspace, s3_settings
from forgetflow.core.data.manifest import Manifest
from forgetflow.core.faults import fault_point

MANIFEST, EXCLUSIONS, INFO = "manifest.csv", "exclusions.csv", "version.json"
OVERLAY = "poison/train.npz"
EXCLUSION_COLUMNS = ("id", "request_id", "batch_id", "data_version")


class DataRepoError(RuntimeError):
    """The data registry is missing, inconsistent, or a git/DVC command failed."""


class DataPruned(DataRepoError):
    """A file of an older data version whose objects `data gc` purged (its .dvc pointer and
    version.json, with the digests, stay in git)."""


@dataclass(frozen=True)
class DataVersion:
    """A data version: `tag` (vN) and `rev` (commit) in the repo at `repo`."""

    tag: str
    rev: str
    repo: str
    info: dict[str, Any]

    @property
    def number(self) -> int:
        return int(self.tag.lstrip("v"))


@dataclass(frozen=True)
class Exclusions:
    """The accumulated exclusion manifest: one row per forgotten id."""

    rows: list[tuple[str, str, str, str]]

    @property
    def ids(self) -> set[str]:
        return {r[0] for r in self.rows}

    def to_csv(self) -> str:
        """Through the csv module: ids may hold commas, quotes and any printable letter."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(EXCLUSION_COLUMNS)
        writer.writerows(self.rows)
        return out.getvalue()

    @classmethod
    def from_csv(cls, text: str) -> Exclusions:
        rows = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
        if not rows or tuple(rows[0]) != EXCLUSION_COLUMNS:
            raise DataRepoError("exclusions.csv has an unexpected header")
        bad = [n for n, r in enumerate(rows[1:], start=2) if len(r) != len(EXCLUSION_COLUMNS)]
        if bad:
            raise DataRepoError(f"exclusions.csv rows {bad[:3]} do not have "
                                f"{len(EXCLUSION_COLUMNS)} fields")
        return cls([tuple(r) for r in rows[1:]])  # type: ignore[misc]


@dataclass(frozen=True)
class Overlay:
    """Project-owned training rows that replace the source's pixels/labels (poisoned data)."""

    ids: np.ndarray
    images: np.ndarray
    labels: np.ndarray

    def keep(self, ids: set[str]) -> Overlay:
        wanted = set(map(str, ids))
        mask = np.fromiter((str(i) in wanted for i in self.ids), dtype=bool,
                           count=len(self.ids))
        return Overlay(self.ids[mask], self.images[mask], self.labels[mask])


def _quiet_dvc() -> None:
    """DVC logs its hints ("Initialized DVC repository", "To track the changes…") at INFO on
    stdout; stdout belongs to --json output, so only warnings pass."""
    logging.getLogger("dvc").setLevel(logging.WARNING)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def _git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if proc.returncode:
        raise DataRepoError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


class DataRepo:
    """Reads and writes data versions in the workspace's data registry."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.path = ws.data_repo

    def exists(self) -> bool:
        return (self.path / ".dvc").is_dir() and bool(self.tags())

    @contextmanager
    def locked(self):
        """Serialize writers (processes and threads) on one lock file in the workspace."""
        self.ws.ensure()
        with FileLock(str(self.ws.lock_path), timeout=600):
            yield

    @contextmanager
    def _dvc(self):
        """A DVC Repo handle; DVC's console output goes to stderr so stdout stays JSON."""
        from dvc.repo import Repo

        _quiet_dvc()
        with redirect_stdout(sys.stderr), Repo(str(self.path)) as repo:
            yield repo

    def init(self) -> None:
        """git init + dvc init + the default remote (local folder, or S3 when switched on)."""
        from dvc.repo import Repo

        self.path.mkdir(parents=True, exist_ok=True)
        _git(self.path, "init", "-q", "-b", "main")
        _git(self.path, "config", "user.name", "forgetflow pipeline")
        _git(self.path, "config", "user.email", "pipeline@forgetflow.local")
        _quiet_dvc()
        with redirect_stdout(sys.stderr):
            repo = Repo.init(str(self.path))
        remote = self.ws.dvc_remote_url
        s3 = s3_settings()
        if remote.startswith("s3://") and s3 is not None:
            ensure_bucket(S3Settings(remote[5:].split("/", 1)[0], "", s3.endpoint_url))
        if "://" not in remote:
            Path(remote).mkdir(parents=True, exist_ok=True)
        with repo.config.edit() as conf:
            conf["core"]["remote"] = "storage"
            conf["core"]["analytics"] = False
            conf["remote"]["storage"] = {"url": remote}
            if remote.startswith("s3://") and s3 and s3.endpoint_url:
                conf["remote"]["storage"]["endpointurl"] = s3.endpoint_url
        repo.close()
        (self.path / "README.md").write_text(
            "forgetflow data registry: one git tag per data version (see version.json).\n")
        _git(self.path, "add", "-A")
        _git(self.path, "commit", "-q", "-m", "data registry: dvc init")

    def tags(self) -> list[str]:
        if not (self.path / ".git").is_dir():
            return []
        out = _git(self.path, "tag", "--list", "v*")
        return sorted(out.split(), key=lambda t: int(t[1:])) if out else []

    def version(self, tag: str | None = None) -> DataVersion:
        """A named version (default: the newest)."""
        tags = self.tags()
        if not tags:
            raise DataRepoError(f"no data version in {self.path}: run `forgetflow data prepare`")
        tag = tag or tags[-1]
        if tag not in tags:
            raise DataRepoError(f"unknown data version {tag!r}; known: {', '.join(tags)}")
        rev = _git(self.path, "rev-list", "-n", "1", tag)
        info = json.loads(_git(self.path, "show", f"{rev}:{INFO}"))
        return DataVersion(tag, rev, str(self.path), info)

    def _checked_out(self, path: str, version: DataVersion) -> Path | None:
        """The working-tree copy when it is exactly the version's file (md5 as its .dvc file
        records it at that rev): reading it skips opening a DVC repo, a second per file."""
        local = self.path / path
        if not local.is_file() or _git(self.path, "rev-parse", "HEAD") != version.rev:
            return None
        recorded = re.search(r"md5: ([0-9a-f]{32})",
                             _git(self.path, "show", f"{version.rev}:{path}.dvc"))
        return local if recorded and recorded.group(1) == _md5(local) else None

    def read_bytes(self, path: str, version: DataVersion) -> bytes:
        """A file of a version: the verified working copy, else through dvc.api (the way
        users read it back)."""
        local = self._checked_out(path, version)
        if local is not None:
            return local.read_bytes()
        import dvc.api  # 0.5 s of imports: only when the working copy is not the version
        from dvc.exceptions import FileMissingError, PathMissingError

        try:
            return dvc.api.read(path, repo=str(self.path), rev=version.rev, mode="rb")
        except (PathMissingError, FileMissingError) as exc:
            raise DataPruned(f"{path} of data version {version.tag} is no longer stored "
                             "(purged by `forgetflow data gc`)") from exc

    def read_text(self, path: str, version: DataVersion) -> str:
        return self.read_bytes(path, version).decode()

    def manifest(self, version: DataVersion) -> Manifest:
        return Manifest.read_csv(io.StringIO(self.read_text(MANIFEST, version)))

    def exclusions(self, version: DataVersion) -> Exclusions:
        return Exclusions.from_csv(self.read_text(EXCLUSIONS, version))

    def overlay(self, version: DataVersion) -> Overlay | None:
        if not version.info.get("poison"):
            return None
        blob = np.load(io.BytesIO(self.read_bytes(OVERLAY, version)), allow_pickle=False)
        return Overlay(blob["ids"].astype(object), blob["images"], blob["labels"])

    def commit(self, manifest: Manifest, exclusions: Exclusions, overlay: Overlay | None,
               info: dict[str, Any], message: str) -> DataVersion:
        """Write, dvc add, git commit + tag vN, dvc push; on failure the repo is restored.
        Callers hold `locked()`."""
        if not (self.path / ".dvc").is_dir():
            self.init()
        tags = self.tags()
        tag = f"v{int(tags[-1][1:]) + 1 if tags else 1}"
        info = {**info, "version": int(tag[1:]), "tag": tag, "parent": tags[-1] if tags else None,
                "manifest_sha256": manifest.digest(), "poison": info.get("poison")
                if overlay is not None and len(overlay.ids) else None}
        try:
            manifest.write_csv(self.path / MANIFEST)
            (self.path / EXCLUSIONS).write_text(exclusions.to_csv())
            targets = [MANIFEST, EXCLUSIONS]
            if info["poison"]:
                (self.path / "poison").mkdir(exist_ok=True)
                np.savez_compressed(self.path / OVERLAY, ids=overlay.ids.astype(str),
                                    images=overlay.images, labels=overlay.labels)
                targets.append(OVERLAY)
            else:
                self._drop_overlay()
            (self.path / INFO).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
            fault_point("data-files-written")
            with self._dvc() as repo:
                repo.add([str(self.path / t) for t in targets])
            fault_point("data-dvc-added")
            for t in targets:  # DVC caches hashes by file stat: never trust a stale one
                recorded = re.search(r"md5: ([0-9a-f]{32})", (self.path / f"{t}.dvc").read_text())
                if not recorded or recorded.group(1) != _md5(self.path / t):
                    raise DataRepoError(f"dvc add recorded a stale hash for {t}")
            # restage from scratch: DVC may rewrite the git index with stale stat data, and
            # a same-size version.json written in the same second then looks unchanged
            _git(self.path, "rm", "-r", "-q", "--cached", ".")
            _git(self.path, "add", "-A")
            _git(self.path, "commit", "-q", "-m", message)
            fault_point("data-git-committed")
            _git(self.path, "tag", "-a", tag, "-m", message)
            fault_point("data-tagged")
        except Exception:
            self._restore()
            raise
        self.push()
        fault_point("data-pushed")
        return self.version(tag)

    def push(self) -> None:
        """Upload the checked-out version's files to the DVC remote (a no-op when there)."""
        with self._dvc() as repo:
            repo.push()

    def version_of_batch(self, batch_id: str) -> DataVersion | None:
        """The version a deletion batch committed, if it got that far (tag messages start
        with `batch <id>:`): what makes a rerun of the batch commit nothing twice."""
        if not (self.path / ".git").is_dir():
            return None
        out = _git(self.path, "for-each-ref", "refs/tags/v*",
                   "--format=%(refname:short) %(contents:subject)")
        for line in out.splitlines():
            tag, _, subject = line.partition(" ")
            if subject.startswith(f"batch {batch_id}:"):
                return self.version(tag)
        return None

    def recover(self) -> None:
        """Undo what a writer killed mid-commit left behind (files written, a commit without
        its tag): back to the newest tagged version. Callers hold `locked()`."""
        tags = self.tags()
        if not tags:
            return
        tagged = _git(self.path, "rev-list", "-n", "1", tags[-1])
        dirty = _git(self.path, "status", "--porcelain")
        if _git(self.path, "rev-parse", "HEAD") != tagged or dirty:
            _git(self.path, "reset", "-q", "--hard", tagged)
            _git(self.path, "clean", "-q", "-fd")
            with self._dvc() as repo:
                repo.checkout(force=True)

    def _drop_overlay(self) -> None:
        for p in (self.path / OVERLAY, self.path / f"{OVERLAY}.dvc"):
            p.unlink(missing_ok=True)
        (self.path / "poison" / ".gitignore").unlink(missing_ok=True)
        if (self.path / "poison").is_dir() and not any((self.path / "poison").iterdir()):
            shutil.rmtree(self.path / "poison")

    def _restore(self) -> None:
        """Put the working tree back to the last committed version."""
        if _git(self.path, "rev-parse", "--verify", "-q", "HEAD"):
            _git(self.path, "reset", "-q", "--hard", "HEAD")
            _git(self.path, "clean", "-q", "-fd")
            with self._dvc() as repo:
                repo.checkout(force=True)

    def gc(self, keep_from: str | None = None) -> list[str]:
        """Purge every object no kept version uses, locally and in the remote: forgotten
        project-owned rows (poisoned images) are then physically gone. Kept: the newest
        version, and every version from `keep_from` on (the data a model that may still
        parent a batch was built on). Returns the kept tags."""
        with self.locked():
            newest = self.version()  # DataRepoError before anything is touched
            first = self.version(keep_from).number if keep_from else newest.number
            count = max(1, newest.number - min(first, newest.number) + 1)
            with self._dvc() as repo:
                repo.gc(workspace=True, cloud=True, force=True, rev=newest.rev, num=count)
            return [f"v{n}" for n in range(newest.number - count + 1, newest.number + 1)]
