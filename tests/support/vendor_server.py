"""A tiny real HTTP server on a loopback port that plays a vendor's API for the channel adapters' tests.

It is a genuine socket server (``http.server`` in a thread), so any client works against it: httpx (sync
or async), requests/PyGithub, urllib. A test registers what each method + path answers, runs the adapter,
then reads back every request the server received, in order.

    @pytest.fixture
    def server() -> Iterator[VendorServer]:
        with VendorServer() as running:
            yield running

    def test_x(server):
        server.on("POST", "/v2/enqueue", Reply(202, json={"status": "success"}))
        server.on("GET", "/repos/{owner}/{repo}/issues", Reply(200, json=[]))
        server.on("POST", "/api/chat.postMessage", lambda request: Reply(json={"ok": True, "ts": "1.2"}))
        ... adapter pointed at server.url ...
        [request] = server.requests
        assert request.path == "/v2/enqueue" and request.json["routing_key"] == ...
        assert request.headers["authorization"] == "Bearer ..."   # header names are lower-case

Answers, per route:
- ``server.on(method, path, reply1, reply2, ...)``: scripted replies are used in order, the last one
  repeats (``Reply(429, headers={"Retry-After": "7"}), Reply(202, ...)`` = rate-limited once, then fine);
- a reply may be a callable ``(Recorded) -> Reply`` for stateful fakes (it runs on the server's thread;
  ``server.lock`` is held while it runs, so plain dicts/lists are safe to share with the test);
- ``Reply(delay=...)`` holds the answer back (for client timeouts; the wait ends early when the server stops);
- paths match exactly, or with ``{name}`` segments captured into ``request.params``; the query string is
  not part of the match (it is in ``request.query``). Registering the same method + path again replaces it.

Anything unregistered answers 404 ``{"error": "no route"}`` and is recorded in ``server.unmatched`` as well
as in ``server.requests``, so a test can assert ``server.unmatched == []``.
"""

from __future__ import annotations

import json as jsonlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["Recorded", "Reply", "VendorServer"]


@dataclass
class Reply:
    """One scripted answer. ``json`` wins over ``body``; ``headers`` are sent as given (e.g. Retry-After)."""

    status: int = 200
    json: Any = None
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Recorded:
    """One request as received. ``headers`` keys are lower-case; ``params`` are the path's ``{name}`` parts."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def json(self) -> Any:
        """The body parsed as JSON (None when empty or not JSON)."""
        if not self.body:
            return None
        try:
            return jsonlib.loads(self.body)
        except ValueError:
            return None

    @property
    def form(self) -> dict[str, list[str]]:
        """The body parsed as application/x-www-form-urlencoded (Twilio, Slack's form posts)."""
        return parse_qs(self.text, keep_blank_values=True)

    def form_value(self, name: str) -> str | None:
        values = self.form.get(name)
        return values[0] if values else None


Responder = Reply | Callable[[Recorded], Reply]


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    replies: list[Responder]
    used: int = 0

    def next(self) -> Responder:
        reply = self.replies[min(self.used, len(self.replies) - 1)]
        self.used += 1
        return reply


def _compile(path: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[A-Za-z_][A-Za-z0-9_]*\})", path)
    regex = "".join(f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") else re.escape(part) for part in parts)
    return re.compile(f"^{regex}$")


class VendorServer:
    """Start with ``with VendorServer() as server`` (or ``start()``/``stop()``); ``server.url`` has no trailing /."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.requests: list[Recorded] = []
        self.unmatched: list[Recorded] = []
        self.lock = threading.RLock()
        self._routes: list[_Route] = []
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("VendorServer is not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> VendorServer:
        server = self

        class Handler(_Handler):
            vendor = server

        httpd = ThreadingHTTPServer((self.host, 0), Handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> VendorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- scripting -------------------------------------------------------------------------------------

    def on(self, method: str, path: str, *replies: Responder) -> None:
        """What ``method path`` answers: replies in order, the last repeating (default: 200, empty body)."""
        route = _Route(method.upper(), _compile(path), list(replies) or [Reply()])
        with self.lock:
            self._routes = [r for r in self._routes if not (r.method == route.method and r.pattern == route.pattern)]
            self._routes.append(route)

    def reset(self) -> None:
        """Forget the recorded requests (routes stay)."""
        with self.lock:
            self.requests.clear()
            self.unmatched.clear()

    # -- reading back ----------------------------------------------------------------------------------

    def received(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        """The requests received, in order, optionally only those of one method and/or exact path."""
        with self.lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method.upper()) and (path is None or r.path == path)
            ]

    def calls(self) -> list[str]:
        """``"METHOD /path"`` of every request, in order: the short form for asserting a sequence."""
        with self.lock:
            return [f"{r.method} {r.path}" for r in self.requests]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Recorded]:
        """Block until at least ``count`` requests have arrived (for clients running elsewhere, e.g. a worker)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.01)
        raise AssertionError(f"expected {count} requests, got {len(self.requests)}: {self.calls()}")

    # -- serving (server thread) -----------------------------------------------------------------------

    def _answer(self, recorded: Recorded) -> Reply:
        with self.lock:
            self.requests.append(recorded)
            for route in reversed(self._routes):
                if route.method != recorded.method:
                    continue
                match = route.pattern.match(recorded.path)
                if match:
                    recorded.params = match.groupdict()
                    responder = route.next()
                    return responder(recorded) if callable(responder) else responder
            self.unmatched.append(recorded)
        return Reply(404, json={"error": "no route"})


class _Handler(BaseHTTPRequestHandler):
    vendor: VendorServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms delayed-ACK stall

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        split = urlsplit(self.path)
        recorded = Recorded(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self._read_body(),
        )
        try:
            reply = self.vendor._answer(recorded)
        except Exception as err:  # a broken test handler: make it loud, not a hang
            reply = Reply(599, json={"error": f"vendor server handler failed: {err!r}"})
        if reply.delay and self.vendor._stopping.wait(reply.delay):
            self.close_connection = True
            return
        if reply.json is not None:
            payload = jsonlib.dumps(reply.json).encode()
            content_type = "application/json; charset=utf-8"
        else:
            payload = reply.body.encode() if isinstance(reply.body, str) else reply.body
            content_type = "text/plain; charset=utf-8"
        try:
            self.send_response(reply.status)
            headers = {"Content-Type": content_type, **reply.headers, "Content-Length": str(len(payload))}
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


def serve(*routes: tuple[str, str, Responder]) -> Iterator[VendorServer]:
    """A generator for a pytest fixture: ``yield from serve(("POST", "/x", Reply(202)))``."""
    with VendorServer() as server:
        for method, path, reply in routes:
            server.on(method, path, reply)
        yield server
