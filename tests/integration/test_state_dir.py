"""One owner per TOCSIN_HOME, and nothing in it readable by anyone else.

The first test runs the real product (`tocsin up`, the embedded dev server, a `tocsin worker` beside it) as
subprocesses with test_cli_end_to_end's helpers; the others use the state_dir module directly.
"""

from __future__ import annotations

import logging
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from activities.postmortem_report import write_atomically
from tests.support.paths import ROOT
from tests.support.product import TOCSIN, Product, one_line_error, trigger_checkout_outage, wait_for
from tocsin.postmortem.artifacts import ArtifactStore
from tocsin.state_dir import LOCK_NAME, StateDirError, hold_home, prepare_home


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def keep_umask() -> Iterator[None]:
    """prepare_home sets this process's umask, as `tocsin up` does for its own: put pytest's back."""
    old = os.umask(0o022)
    os.umask(old)
    yield
    os.umask(old)


def test_a_second_tocsin_up_is_refused_naming_the_holder_and_state_is_owner_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    (home / "notes.txt").write_text("left world-readable by an older version")
    (home / "notes.txt").chmod(0o644)
    first = Product(home)
    worker: subprocess.Popen[bytes] | None = None
    try:
        first.start()
        assert first.proc is not None
        second = Product(home)  # its own free ports: only the lock can refuse it
        line = one_line_error(second.tocsin("up"))
        assert line == (
            f"tocsin: {home} is in use by another tocsin up (pid {first.proc.pid}); stop it first or set TOCSIN_HOME"
        )
        assert "made" in first.log() and "owner-only" in first.log(), "tightening is said in the log"

        # `tocsin worker` takes no lock: it runs beside `tocsin up` on the same home.
        worker_log = home / "worker.stderr"
        with open(worker_log, "wb") as err:
            worker = subprocess.Popen([str(TOCSIN), "worker"], cwd=ROOT, env=first.env, stderr=err)
        wait_for("`tocsin worker` to connect", lambda: "worker connected" in worker_log.read_text())
        assert worker.poll() is None

        key = trigger_checkout_outage(first)
        wait_for(f"a page for {key} in the outbox", lambda: first.pages(key))
        assert mode(home) == 0o700
        for name in ("temporal.sqlite", "outbox.jsonl", "outbox.jsonl.lock", LOCK_NAME, "temporal.log", "notes.txt"):
            assert mode(home / name) == 0o600, name
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
        first.stop_cleanly(signal.SIGTERM)
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
            worker.wait()
        first.kill()


HOLD = """
import sys, time
from pathlib import Path
from tocsin.state_dir import hold_home
with hold_home(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_lock_left_by_a_killed_process_is_released_by_the_kernel(tmp_path: Path) -> None:
    home = tmp_path / "home"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(home)], cwd=ROOT, stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        with pytest.raises(StateDirError, match=rf"in use by another tocsin up \(pid {holder.pid}\)"), hold_home(home):
            pass
    finally:
        holder.kill()  # SIGKILL: no cleanup of its own runs
        holder.wait()
    with hold_home(home) as lock:  # a third start succeeds, and names itself for the next one
        assert lock.read_text() == f"{os.getpid()}\n"
        assert mode(home) == 0o700 and mode(lock) == 0o600


def test_prepare_home_tightens_what_is_too_open_and_says_so_once(
    tmp_path: Path, keep_umask: None, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "home"
    (home / "postmortems").mkdir(parents=True, mode=0o755)
    home.chmod(0o755)
    (home / "outbox.jsonl").write_text("{}\n")
    (home / "outbox.jsonl").chmod(0o644)
    (home / "postmortems" / "k.md").write_text("# k\n")
    (home / "postmortems" / "k.md").chmod(0o664)
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours")
    outside.chmod(0o644)
    (home / "link").symlink_to(outside)

    with caplog.at_level(logging.INFO, logger="tocsin.state"):
        prepare_home(home)
        prepare_home(home)  # nothing left to change: nothing said
    assert [r.getMessage() for r in caplog.records] == [
        f"made 4 path(s) under {home} owner-only (0600 files, 0700 dirs): state holds contacts"
    ]
    assert (mode(home), mode(home / "postmortems")) == (0o700, 0o700)
    assert (mode(home / "outbox.jsonl"), mode(home / "postmortems" / "k.md")) == (0o600, 0o600)
    assert mode(outside) == 0o644, "a symlink is not followed out of the state dir"
    assert os.umask(0o077) == 0o077, "files created after this are owner-only"


def test_post_mortem_files_are_owner_only_whatever_the_umask(tmp_path: Path, keep_umask: None) -> None:
    os.umask(0o022)
    ref = ArtifactStore(tmp_path / "artifacts").write_text("k/evidence/logs.json", "[]")
    written = tmp_path / "artifacts" / ref.path
    assert mode(written) == 0o600
    assert {mode(p) for p in (tmp_path / "artifacts", written.parent, written.parent.parent)} == {0o700}
    write_atomically(tmp_path / "postmortems" / "k.md", "# k")
    assert (mode(tmp_path / "postmortems"), mode(tmp_path / "postmortems" / "k.md")) == (0o700, 0o600)
