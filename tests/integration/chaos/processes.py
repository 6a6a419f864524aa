"""The processes a chaos case kills: the Temporal dev server on its SQLite file, `tocsin worker` and
`tocsin receiver`, each in its own process group so SIGKILL reaches all of it and nothing outlives the test.

Also a TCP proxy in front of Temporal whose answers the test can hold back: the receiver's calls then reach
Temporal (and are applied) while the receiver never hears back, which is the moment to kill it mid-POST.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from tests.support.paths import ROOT
from tests.support.product import TOCSIN, accepts, free_ports
from tocsin.devserver import DevServer
from tocsin.settings import Settings

# Nothing of the developer's environment may point the processes elsewhere (their Temporal, their Slack...).
FOREIGN_PREFIXES = ("TEMPORAL_", "TOCSIN_", "GITHUB_", "KUBE", "OPENAI_")
START_TIMEOUT = 60.0


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_PREFIXES)}
    env.update(extra)
    return env


class Process:
    """A command in its own session (so its process group is exactly it and its children), logging to a file."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = dict(env)
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self.log_path = log_dir / f"{name}.log"

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} is already running"
        self.runs += 1
        self.log_path = self.log_dir / f"{self.name}-{self.runs}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> float:
        """SIGKILL the whole process group: no handler runs, nothing is flushed. Returns when it happened."""
        proc = self.proc
        assert proc is not None and proc.poll() is None, f"{self.name} is not running:\n{self.log()}"
        at = time.time()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        return at

    def stop(self) -> None:
        """Cleanup: whatever state it is in, the group is gone afterwards."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        else:
            # It exited by itself; a child it started may still hold the group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)


class TemporalServer(Process):
    """`temporal server start-dev` exactly as `tocsin up` runs it (tocsin/devserver.py), on `home/temporal.sqlite`."""

    def __init__(self, home: Path) -> None:
        self.port, self.ui_port = free_ports(2)
        settings = Settings(home=home, temporal_port=self.port, ui_port=self.ui_port)
        home.mkdir(parents=True, exist_ok=True)
        super().__init__("temporal", DevServer(settings, headless=True).command(), clean_env({}), home)
        self.address = f"127.0.0.1:{self.port}"

    def start(self) -> None:
        super().start()
        deadline = time.monotonic() + START_TIMEOUT
        while not accepts(self.port):
            assert self.running(), f"the dev server exited:\n{self.log()}"
            assert time.monotonic() < deadline, "the dev server did not listen"
            time.sleep(0.05)


class Tocsin(Process):
    """`tocsin worker` or `tocsin receiver` against `address`, with the chaos policy and the vendors' env."""

    def __init__(self, command: str, home: Path, address: str, env: Mapping[str, str]) -> None:
        variables = clean_env({"TOCSIN_HOME": str(home), "TEMPORAL_ADDRESS": address, **env})
        super().__init__(command, [str(TOCSIN), command], variables, home)
        self.ready_line = {"worker": "tocsin.worker: worker connected", "receiver": "tocsin: receiver connected"}[
            command
        ]
        # The receiver says it is connected to Temporal a moment before uvicorn accepts on its port.
        self.http_port = int(variables["TOCSIN_HTTP_PORT"]) if command == "receiver" else None

    def ready(self) -> bool:
        return self.ready_line in self.log() and (self.http_port is None or accepts(self.http_port))

    def start(self) -> None:
        super().start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.ready():
            assert self.running(), f"`tocsin {self.name}` exited:\n{self.log()}"
            assert time.monotonic() < deadline, f"`tocsin {self.name}` did not connect:\n{self.log()}"
            time.sleep(0.05)


class AnswerHoldingProxy:
    """A TCP proxy to Temporal. While `holding` is set, Temporal's answers stay in the proxy: the requests
    still reach Temporal and are applied, the caller waits. Connections cut on either side are closed."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.holding = threading.Event()
        self._closing = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.address = f"127.0.0.1:{self.port}"
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, answers: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                # Temporal's answers wait here while holding; the caller's requests never do.
                while answers and self.holding.is_set() and not self._closing.is_set():
                    time.sleep(0.01)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def close(self) -> None:
        self._closing.set()
        self._listener.close()
        with self._lock:
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.close()
