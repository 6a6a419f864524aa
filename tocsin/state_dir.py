"""TOCSIN_HOME: one owner at a time, and nothing in it readable by anyone but that owner.

The state dir holds Temporal's SQLite file (roster contacts, incident histories), the outbox (every message
sent), post-mortem inputs and artifacts: all of it owner-only (files 0600, dirs 0700). Processes that write
here set the umask to 0o077 first, so files created by libraries and by the dev server (temporal.sqlite)
are private too; `prepare_home` also tightens what an older version left too open.

`tocsin up` holds an exclusive flock on `$TOCSIN_HOME/tocsin.lock` for its whole life, because two dev
servers on one SQLite file fight over its shards. The kernel drops the lock when the process dies, kill -9
included, so a stale lock never needs cleaning up. `tocsin worker` and `tocsin receiver` take no lock: a
worker may run beside `tocsin up` (the outbox is safe to share), and the receiver keeps no files.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("tocsin.state")

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
PRIVATE_UMASK = 0o077
LOCK_NAME = "tocsin.lock"


class StateDirError(RuntimeError):
    """The state dir cannot be used: held by another `tocsin up`, or not ours to write."""


def private_dir(path: Path) -> None:
    """Create `path` and any missing parents as 0700. Existing directories are left as they are: a parent
    outside the state dir (/tmp, a volume mount) is not ours to change."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it first
            directory.mkdir(mode=PRIVATE_DIR)


def private_opener(path: str, flags: int) -> int:
    """For `open(..., opener=private_opener)`: a file this call creates is 0600 whatever the umask."""
    return os.open(path, flags, PRIVATE_FILE)


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to a new or truncated file that is 0600 (`Path.write_bytes` would make it 0644)."""
    with open(path, "wb", opener=private_opener) as handle:
        handle.write(data)


def restrict_umask() -> None:
    """Everything this process (and any child it starts) creates from now on is owner-only."""
    os.umask(PRIVATE_UMASK)


def _tighten(path: Path) -> bool:
    """Drop group and other bits from `path` (never following a symlink). True if it changed."""
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode) or not mode & PRIVATE_UMASK:
        return False
    path.chmod(stat.S_IMODE(mode) & ~PRIVATE_UMASK)
    return True


def tighten_tree(home: Path) -> int:
    """Make the home and everything under it owner-only; returns how many paths had to change."""
    changed = 0
    candidates = [home]
    for root, dirs, files in os.walk(home):
        candidates += [Path(root, name) for name in (*dirs, *files)]
    for path in candidates:
        try:
            changed += _tighten(path)
        except FileNotFoundError:
            continue  # removed while we walked (a temporary file renamed into place)
        except PermissionError:
            log.warning("cannot make %s owner-only: it belongs to another user", path)
    return changed


def prepare_home(home: Path) -> None:
    """What every process that writes state does first: owner-only umask, the home as 0700, and older
    too-open files tightened (said once in the log, since it changes files an operator may have set)."""
    restrict_umask()
    private_dir(home)
    changed = tighten_tree(home)
    if changed:
        log.info("made %d path(s) under %s owner-only (0600 files, 0700 dirs): state holds contacts", changed, home)


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        return "pid unknown"
    return f"pid {text}" if text.isdigit() else "pid unknown"


@contextlib.contextmanager
def hold_home(home: Path) -> Iterator[Path]:
    """Hold the exclusive lock on `home` for the body of the `with`; StateDirError naming the holder's pid
    if another process has it. The lock file's descriptor is not inherited by children (Python's default),
    so the dev server never keeps the lock after `tocsin up` has gone."""
    private_dir(home)
    path = home / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    except OSError as err:
        raise StateDirError(f"cannot open {path}: {err.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StateDirError(
                f"{home} is in use by another tocsin up ({_holder(fd)}); stop it first or set TOCSIN_HOME"
            ) from None
        # Ours now: say who holds it, for the next one who tries.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)  # a clean stop leaves no pid behind to mislead a reader
    finally:
        os.close(fd)  # closing the only descriptor releases the flock
