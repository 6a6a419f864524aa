"""The outbox: where every delivery lands until a real channel is configured.

One JSON line per delivery in `$TOCSIN_HOME/outbox.jsonl`. Activities are at-least-once, so a write is
keyed by the delivery's idempotency key: a retried or replayed delivery finds its line and writes nothing.
The file itself is the record of what was sent, so there is no second index to fall out of step with it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger("tocsin.outbox")


class Outbox:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: set[str] = set()
        self._offset = 0

    def _catch_up(self, handle: Any) -> None:
        """Read lines other processes (or an earlier life of this one) appended since we last looked."""
        handle.seek(self._offset)
        for raw in handle:
            try:
                self._seen.add(json.loads(raw)["id"])
            except (ValueError, KeyError, TypeError):
                log.warning("outbox %s: skipping unreadable line at offset %d", self.path, self._offset)
        self._offset = handle.tell()

    def append(self, record: dict[str, Any]) -> bool:
        """Append `record` (which must carry an "id") unless a line with that id exists. True if written."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n"
        with open(self.path, "a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                self._catch_up(handle)
                if record["id"] in self._seen:
                    return False
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
                self._offset = handle.tell()
                self._seen.add(record["id"])
                return True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with open(self.path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
