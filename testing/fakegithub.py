"""A small GitHub REST server for tests: the endpoints the publisher calls, nothing more.

It serves repositories whose ``clone_url`` is a local bare repository, keeps pull requests in
memory (their head commit read live from the fork's refs, as GitHub does), records every
request, and can be told to answer the next matching requests with a fault (a 502, a
secondary rate limit, a dropped connection), optionally after doing the work.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    times: int = 1
    after_work: bool = False  # do the request's work, then answer with the fault
    drop: bool = False  # close the connection without answering


def ref_sha(bare: Path, ref: str) -> str | None:
    """A ref's commit read from the files, as fast as the server needs to be."""
    loose = bare / ref
    if loose.is_file():
        return loose.read_text().strip()
    packed = bare / "packed-refs"
    if packed.is_file():
        for line in packed.read_text(encoding="utf-8").splitlines():
            if line.endswith(" " + ref):
                return line.split(" ", 1)[0]
    return None


class FakeGitHub:
    def __init__(self, token: str, login: str = "oec-bot") -> None:
        self.token = token
        self.login = login
        self.repos: dict[str, dict[str, Any]] = {}
        self.bare: dict[str, Path] = {}
        self.pulls: dict[int, dict[str, Any]] = {}
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self.reset_at = int(time.time()) + 3600
        self.lock = threading.Lock()
        self._next = 1
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeGitHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- set-up and inspection --------------------------------------------------------------

    def add_repo(self, full_name: str, bare: Path, default_branch: str = "master") -> None:
        owner, name = full_name.split("/")
        self.bare[full_name] = bare
        self.repos[full_name] = {
            "id": len(self.repos) + 1,
            "name": name,
            "full_name": full_name,
            "owner": {"login": owner, "type": "User"},
            "default_branch": default_branch,
            "clone_url": str(bare),
            "html_url": f"https://github.example/{full_name}",
            "url": f"{self.url}/repos/{full_name}",
            "fork": False,
        }

    def fail(
        self,
        method: str,
        pattern: str,
        status: int,
        *,
        headers: dict[str, str] | None = None,
        body: Any = None,
        times: int = 1,
        after_work: bool = False,
        drop: bool = False,
    ) -> None:
        self.faults.append(
            Fault(
                method,
                re.compile(pattern),
                status,
                headers or {},
                body if body is not None else {"message": "Server Error"},
                times,
                after_work,
                drop,
            )
        )

    def close(self, number: int, merged: bool = False) -> None:
        with self.lock:
            pull = self.pulls[number]
            pull["head_sha_at_close"] = self._head_sha(pull)
            pull["state"] = "closed"
            pull["merged"] = merged

    def open_pulls(self) -> list[dict[str, Any]]:
        return [p for p in self.pulls.values() if p["state"] == "open"]

    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.method != "GET"]

    # -- the JSON GitHub would send --------------------------------------------------------

    def _head_sha(self, pull: dict[str, Any]) -> str:
        if pull["state"] == "closed" and "head_sha_at_close" in pull:
            return str(pull["head_sha_at_close"])
        sha = ref_sha(self.bare[pull["head_repo"]], f"refs/heads/{pull['head_ref']}")
        return sha or pull.get("head_sha_at_close", "0" * 40)

    def _pull_json(self, full_name: str, pull: dict[str, Any]) -> dict[str, Any]:
        n = pull["number"]
        head_repo = self.repos[pull["head_repo"]]
        return {
            "id": 1000 + n,
            "number": n,
            "state": pull["state"],
            "title": pull["title"],
            "body": pull["body"],
            "merged": pull["merged"],
            "maintainer_can_modify": pull["maintainer_can_modify"],
            "url": f"{self.url}/repos/{full_name}/pulls/{n}",
            "html_url": f"https://github.example/{full_name}/pull/{n}",
            "user": {"login": self.login},
            "head": {
                "label": f"{head_repo['owner']['login']}:{pull['head_ref']}",
                "ref": pull["head_ref"],
                "sha": self._head_sha(pull),
                "repo": head_repo,
                "user": head_repo["owner"],
            },
            "base": {"label": "base", "ref": pull["base"], "repo": self.repos[full_name]},
        }

    # -- HTTP ------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; with Nagle on, each answer would wait
            # for the client's delayed ACK (~40 ms).
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                fake._serve(self)

            do_GET = do_POST = do_PATCH = do_DELETE = _serve

        return Handler

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        path = unquote(parts.path)
        with self.lock:
            self.calls.append(Call(h.command, path, query, dict(h.headers.items()), body))
            fault = next(
                (f for f in self.faults if f.method == h.command and f.pattern.search(path)),
                None,
            )
            if fault:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
        if fault and fault.drop:
            h.close_connection = True
            h.connection.shutdown(2)
            return
        if fault and not fault.after_work:
            self._send(h, fault.status, fault.body, fault.headers)
            return
        if h.headers.get("Authorization") != f"token {self.token}":
            self._send(h, 401, {"message": "Bad credentials"})
            return
        with self.lock:
            status, answer, headers = self._route(h.command, path, query, body)
        if fault:
            status, answer, headers = fault.status, fault.body, fault.headers
        self._send(h, status, answer, headers)

    def _send(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        answer: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = b"" if answer is None else json.dumps(answer).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(data)))
        sent = {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "4999",
            "x-ratelimit-reset": str(self.reset_at),
        }
        sent.update(headers or {})
        for k, v in sent.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _route(
        self, method: str, path: str, query: dict[str, str], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        if method == "GET" and path == "/user":
            return 200, {"login": self.login, "type": "User"}, {}
        if method == "GET" and path == "/_fake/stats":
            # Not GitHub: lets a benchmark that runs this server in another process count.
            writes = sum(c.method != "GET" for c in self.calls)
            return (
                200,
                {"calls": len(self.calls), "writes": writes, "open": len(self.open_pulls())},
                {},
            )
        if method == "GET" and path == "/rate_limit":
            core = {"limit": 5000, "remaining": 4999, "reset": self.reset_at, "used": 1}
            return 200, {"resources": {"core": core}, "rate": core}, {}
        m = re.fullmatch(r"/repos/([^/]+/[^/]+)(/.*)?", path)
        if not m or m.group(1) not in self.repos:
            return 404, {"message": "Not Found"}, {}
        full_name, rest = m.group(1), m.group(2) or ""
        if method == "GET" and rest == "":
            return 200, self.repos[full_name], {}
        if rest == "/pulls" and method == "GET":
            return self._list(full_name, query)
        if rest == "/pulls" and method == "POST":
            return self._create(full_name, body)
        m = re.fullmatch(r"/pulls/(\d+)", rest)
        if m and int(m.group(1)) in self.pulls:
            pull = self.pulls[int(m.group(1))]
            if method == "PATCH":
                for key in ("title", "body", "state"):
                    if key in body:
                        pull[key] = body[key]
            return 200, self._pull_json(full_name, pull), {}
        m = re.fullmatch(r"/git/refs/(heads/.+)", rest)
        if m and method == "DELETE":
            ref = self.bare[full_name] / "refs" / m.group(1)
            if not ref.is_file():
                return 422, {"message": "Reference does not exist"}, {}
            ref.unlink()
            return 204, None, {}
        return 404, {"message": "Not Found"}, {}

    def _list(self, full_name: str, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        state = query.get("state", "open")
        pulls = [
            p
            for p in sorted(self.pulls.values(), key=lambda p: p["number"])
            if state == "all" or p["state"] == state
        ]
        if "head" in query:
            owner, ref = query["head"].split(":", 1)
            pulls = [
                p
                for p in pulls
                if p["head_ref"] == ref and self.repos[p["head_repo"]]["owner"]["login"] == owner
            ]
        per_page = int(query.get("per_page", 30))
        page = int(query.get("page", 1))
        chunk = pulls[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(pulls):
            others = "&".join(f"{k}={v}" for k, v in query.items() if k != "page")
            link = f"{self.url}/repos/{full_name}/pulls?{others}&page={page + 1}"
            headers["Link"] = f'<{link}>; rel="next"'
        return 200, [self._pull_json(full_name, p) for p in chunk], headers

    def _create(self, full_name: str, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        owner, ref = body["head"].split(":", 1)
        head_repo = next(
            (n for n, r in self.repos.items() if r["owner"]["login"] == owner and n != full_name),
            None,
        )
        if head_repo is None or ref_sha(self.bare[head_repo], f"refs/heads/{ref}") is None:
            return 422, {"message": "Validation Failed", "errors": [{"field": "head"}]}, {}
        for p in self.pulls.values():
            if p["state"] == "open" and p["head_ref"] == ref and p["head_repo"] == head_repo:
                message = f"A pull request already exists for {body['head']}."
                return 422, {"message": "Validation Failed", "errors": [{"message": message}]}, {}
        number = self._next
        self._next += 1
        self.pulls[number] = {
            "number": number,
            "state": "open",
            "title": body["title"],
            "body": body.get("body") or "",
            "merged": False,
            "maintainer_can_modify": body.get("maintainer_can_modify", False),
            "head_ref": ref,
            "head_repo": head_repo,
            "base": body["base"],
        }
        return 201, self._pull_json(full_name, self.pulls[number]), {}
