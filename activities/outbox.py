"""The outbox: where every delivery lands until a real channel is configured.

One JSON line per delivery in `$TOCSIN_HOME/outbox.jsonl`. Activities are at-least-once, so a write is
keyed by the delivery's idempotency key: a retried or replayed delivery finds its line and writes nothing.
The files themselves are the record of what was sent, so there is no second index to fall out of step.

Rotation: past `max_bytes` the file becomes `outbox.jsonl.1` (the older ones shift up, `.keep` and beyond are
deleted). A delivery whose line sits in a kept rotated file is still never written again: the ids seen are
kept across a rotation, and a process that starts, or finds that others rotated since it last looked, reads
the rotated files too. Only an id older than every kept file can be forgotten, after a restart.

Several processes (workers, `tocsin up`) may share the files. Every append and every rotation happens under
an exclusive flock on `outbox.jsonl.lock`, a file that never rotates; it also holds the number of rotations
so far, which tells a process whether the file it had read up to some offset is still the current one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tocsin.settings import DEFAULT_OUTBOX_KEEP, DEFAULT_OUTBOX_MAX_BYTES
from tocsin.state_dir import PRIVATE_FILE, private_dir, private_opener

log = logging.getLogger("tocsin.outbox")


class Outbox:
    def __init__(self, path: Path, max_bytes: int = DEFAULT_OUTBOX_MAX_BYTES, keep: int = DEFAULT_OUTBOX_KEEP) -> None:
        if max_bytes < 1 or keep < 1:
            raise ValueError("an outbox needs max_bytes >= 1 and keep >= 1 (rotated files hold the ids seen)")
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self.lock_path = path.with_name(f"{path.name}.lock")
        self._seen: set[str] = set()
        self._offset = 0  # how far into the current file we have read
        self._generation: int | None = None  # rotations counted in the lock file when we last looked

    def rotated(self, n: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{n}")

    def files(self) -> list[Path]:
        """Every file that may hold lines, oldest first: `.keep` … `.1`, then the current one."""
        return [*(self.rotated(n) for n in range(self.keep, 0, -1)), self.path]

    @contextlib.contextmanager
    def _locked(self, operation: int) -> Iterator[int]:
        private_dir(self.path.parent)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        try:
            fcntl.flock(fd, operation)
            yield fd
        finally:
            os.close(fd)  # releases the flock

    @staticmethod
    def _generation_in(fd: int) -> int:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        return int(text) if text.isdigit() else 0

    def _read_ids(self, path: Path, start: int = 0) -> int:
        """Add the ids of `path`'s lines from byte `start`; returns where its end is (0 if it is missing)."""
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below; a missing file is an ordinary case
        except FileNotFoundError:
            return 0
        with handle:
            handle.seek(start)
            for raw in handle:
                try:
                    self._seen.add(json.loads(raw)["id"])
                except (ValueError, KeyError, TypeError):
                    log.warning("outbox %s: skipping unreadable line after offset %d", path, start)
            return handle.tell()

    def _catch_up(self, generation: int) -> None:
        """Read what other processes (or an earlier life of this one) appended since we last looked."""
        behind = None if self._generation is None else generation - self._generation
        size = self.path.stat().st_size if self.path.exists() else 0
        if behind == 0 and size >= self._offset:
            self._offset = self._read_ids(self.path, self._offset)
        elif behind is not None and 0 < behind <= self.keep:
            # Rotated `behind` times since: the file we were reading is now `.behind`, newer ones follow it.
            self._read_ids(self.rotated(behind), self._offset)
            for n in range(behind - 1, 0, -1):
                self._read_ids(self.rotated(n))
            self._offset = self._read_ids(self.path)
        else:
            # First look, too far behind, or a counter that does not match the files: read every kept file.
            for path in self.files()[:-1]:
                self._read_ids(path)
            self._offset = self._read_ids(self.path)
        self._generation = generation

    def _rotate(self, fd: int, generation: int) -> None:
        stale = [p for p in self.path.parent.glob(f"{self.path.name}.*") if p.suffix[1:].isdigit()]
        for path in stale:
            if int(path.suffix[1:]) >= self.keep:
                path.unlink(missing_ok=True)
        for n in range(self.keep - 1, 0, -1):
            if self.rotated(n).exists():
                self.rotated(n).replace(self.rotated(n + 1))
        self.path.replace(self.rotated(1))
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{generation + 1}\n".encode(), 0)
        self._generation, self._offset = generation + 1, 0
        log.info("outbox rotated: %s is now %s (keeping %d)", self.path.name, self.rotated(1).name, self.keep)

    def append(self, record: dict[str, Any]) -> bool:
        """Append `record` (which must carry an "id") unless a line with that id exists. True if written."""
        line = (json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n").encode()
        with self._locked(fcntl.LOCK_EX) as fd:
            generation = self._generation_in(fd)
            self._catch_up(generation)
            if record["id"] in self._seen:
                return False
            size = self.path.stat().st_size if self.path.exists() else 0
            if size and size + len(line) > self.max_bytes:
                self._rotate(fd, generation)
            with open(self.path, "ab", opener=private_opener) as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
                self._offset = handle.tell()
            self._seen.add(record["id"])
            return True

    def read(self) -> list[dict[str, Any]]:
        """Every line of the current and the kept rotated files, oldest first."""
        if not any(path.exists() for path in self.files()):
            return []
        records: list[dict[str, Any]] = []
        with self._locked(fcntl.LOCK_SH):  # never halfway through someone's rotation
            for path in self.files():
                if path.exists():
                    with open(path, encoding="utf-8") as handle:
                        records += [json.loads(line) for line in handle if line.strip()]
        return records
