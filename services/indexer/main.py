"""``oec-sync indexer``: the alias index of OEC, kept current, answering catalogue.downloaded.

The index follows ``OEC_SYNC_OEC_UPSTREAM_REF`` of the checkout at ``OEC_SYNC_OEC_REPO``. It
moves (incrementally: only changed files are re-read) when a new run starts and when GitHub
says upstream moved (``POST /webhooks/github``, a push event), after a ``git fetch`` of
``OEC_SYNC_OEC_FETCH_REMOTE`` when one is set. Every catalogue of one run is matched at the
same commit, even if upstream moves in between: the publisher folds all of a run's patches
onto one base.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections import OrderedDict
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from common import topology
from common.config import Settings
from common.errors import GitError
from common.gitrepo import git
from common.memo import Memo
from common.messages import Message
from common.oec.index import AliasIndex, index_cache, load_index
from common.status import Service
from services.indexer.handler import IndexerHandler
from services.servicebus import service_bus

log = logging.getLogger(__name__)

PINNED_RUNS = 50  # runs whose commit is remembered, so a late catalogue matches the same files
FETCH_TIMEOUT = 120.0  # seconds


class IndexKeeper:
    """The index, the commit each run is pinned to, and the git upkeep; thread-safe."""

    def __init__(self, settings: Settings) -> None:
        self.repo = settings.oec_repo.resolve()
        self.ref = settings.oec_upstream_ref
        self.remote = settings.oec_fetch_remote
        self.lock = threading.RLock()
        self.index: AliasIndex | None = None
        self.updated_at: float | None = None
        self.runs: OrderedDict[str, str] = OrderedDict()
        self.memo = Memo(settings.memo_path, autosave=True)

    # --- git ---

    def fetch(self) -> None:
        """``git fetch`` the upstream remote; a failure is logged and the old commit kept."""
        if not self.remote:
            return
        try:
            git(self.repo, "fetch", "--quiet", self.remote, timeout=FETCH_TIMEOUT)
        except GitError as exc:
            log.warning("git fetch failed; keeping the current commit", extra={"error": str(exc)})

    def upstream_commit(self) -> str:
        return git(self.repo, "rev-parse", "--verify", f"{self.ref}^{{commit}}").strip()

    # --- the index ---

    def load(self) -> AliasIndex:
        """The index at the upstream commit: from the cache, refreshed, or built."""
        with self.lock:
            self.index = load_index(self.repo, self.upstream_commit())
            self.updated_at = time.time()
            log.info("alias index ready", extra={"commit": self.index.commit})
            return self.index

    def update(self, fetch: bool = True) -> str:
        """Move the index to upstream's current commit; returns the commit."""
        if fetch:
            self.fetch()
        commit = self.upstream_commit()
        with self.lock:
            index = self.index or self.load()
            if index.commit != commit:
                started = time.monotonic()
                index.refresh(self.repo, commit)
                self._save(index)
                log.info(
                    "alias index moved",
                    extra={"commit": commit, "seconds": round(time.monotonic() - started, 2)},
                )
            self.updated_at = time.time()
            return index.commit

    def rebuild(self) -> str:
        """A full rebuild from the checkout (``oec-sync sync all``)."""
        self.fetch()
        commit = self.upstream_commit()
        index = AliasIndex.build(self.repo, commit)
        with self.lock:
            self.index = index
            self._save(index)
            self.updated_at = time.time()
        log.info("alias index rebuilt", extra={"commit": commit, "files": index.files})
        return commit

    def _save(self, index: AliasIndex) -> None:
        cache = index_cache(self.repo)
        cache.parent.mkdir(parents=True, exist_ok=True)
        index.save(cache)

    def for_run(self, run_id: str) -> AliasIndex:
        """The index at the run's commit: pinned at the run's first catalogue. Call with the
        lock held."""
        pinned = self.runs.get(run_id)
        if pinned is None:
            self.update()
        index = self.index or self.load()
        if pinned is not None and index.commit != pinned:
            index.refresh(self.repo, pinned)
        self.runs[run_id] = index.commit
        self.runs.move_to_end(run_id)
        while len(self.runs) > PINNED_RUNS:
            self.runs.popitem(last=False)
        return index

    def handler(self, message: Message) -> list[Message]:
        with self.lock:
            return IndexerHandler(self.for_run(message.run_id), self.memo)(message)

    def status(self) -> dict[str, Any]:
        index = self.index
        return {
            "repo": str(self.repo),
            "ref": self.ref,
            "commit": index.commit if index else None,
            "files": index.files if index else None,
            "unreadable_files": len(index.errors) if index else None,
            "updated_at": self.updated_at,
            "pinned_runs": dict(self.runs),
        }


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """GitHub's X-Hub-Signature-256: ``sha256=`` + HMAC-SHA256 of the raw body."""
    if not header:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


def add_routes(app: FastAPI, keeper: IndexKeeper, settings: Settings) -> None:
    secret = settings.github_webhook_secret
    branch = keeper.ref.rpartition("/")[2] if keeper.ref.startswith("refs/") else None

    def update_in_background(full: bool) -> None:
        def work() -> None:
            try:
                keeper.rebuild() if full else keeper.update()
            except Exception:
                log.exception("index update failed")

        threading.Thread(target=work, name="index-update", daemon=True).start()

    # GitHub cannot send our bearer token; it signs the body instead (below).
    app.state.open_paths.add("/webhooks/github")

    @app.post("/webhooks/github", status_code=202)
    async def github_webhook(request: Request) -> JSONResponse:
        """GitHub push events on OEC: fetch and move the index to the new upstream commit."""
        body = await request.body()
        if secret is not None and not signature_ok(
            secret.get_secret_value(), body, request.headers.get("X-Hub-Signature-256")
        ):
            raise HTTPException(401, "bad or missing X-Hub-Signature-256")
        event = request.headers.get("X-GitHub-Event", "")
        if event == "ping":
            return JSONResponse({"pong": True}, status_code=200)
        if event != "push":
            return JSONResponse({"ignored": f"event {event!r}"}, status_code=202)
        try:
            ref = json.loads(body).get("ref", "")
        except (ValueError, AttributeError):
            raise HTTPException(400, "body is not a JSON push event") from None
        if branch is not None and ref != f"refs/heads/{branch}":
            return JSONResponse({"ignored": f"push to {ref}"}, status_code=202)
        update_in_background(full=False)
        return JSONResponse({"accepted": True, "ref": ref}, status_code=202)

    @app.post("/sync", status_code=202)
    def sync(full: bool = False) -> dict[str, Any]:
        """Move the index to upstream now (``full``: rebuild it from scratch); needs the
        status token."""
        update_in_background(full)
        return {"accepted": True, "full": full}


def main(settings: Settings, port: int | None) -> None:
    service = Service.from_settings("indexer", settings)
    keeper = IndexKeeper(settings)
    service.snapshot.provide("index", keeper.status)
    service.snapshot.ready_when(lambda: keeper.index is not None)
    add_routes(service.app, keeper, settings)
    service.serve(settings.status_host, port)
    try:
        keeper.load()
        bus = service_bus(settings, service)
        bus.subscribe(topology.INDEXER, keeper.handler)
        bus.run_forever()
    finally:
        service.close()


def sync_all(settings: Settings) -> str:
    """``oec-sync sync all`` without a running indexer: rebuild the cached index."""
    return IndexKeeper(settings).rebuild()
