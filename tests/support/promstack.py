"""Real Prometheus and Alertmanager for tests: processes on loopback ports, and a scrape target the test drives.

Debian's packages provide the binaries; `make test` installs them when missing.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def system_binary(name: str) -> str:
    found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if not found:
        pytest.fail(f"{name} is missing: `make test` installs Debian's prometheus and prometheus-alertmanager")
    return found


class Target:
    """A scrape target serving the series the test sets."""

    def __init__(self) -> None:
        self.series: dict[str, float] = {}
        self.lock = threading.Lock()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with target.lock:
                    body = "".join(f"{name} {value}\n" for name, value in target.series.items()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def set(self, series: str, value: float) -> None:
        with self.lock:
            self.series[series] = value


class Process:
    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        self.name = Path(args[0]).name
        self._out = log.open("wb")
        self.proc = subprocess.Popen(args, stdout=self._out, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._out.close()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:]


def wait_http(url: str, process: Process, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            pytest.fail(f"{process.name} exited: {process.tail()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{url} not ready after {seconds}s: {process.tail()}")
