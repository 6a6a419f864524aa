"""Post-mortem activities. The full pipeline is its own issue; this one keeps the hand-off on disk."""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio import activity

from tocsin.incident.contracts import PostMortemInput, PostMortemResult
from tocsin.state_dir import private_dir, write_private


class PostMortemActivities:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _write(self, data: PostMortemInput) -> Path:
        private_dir(self.directory)  # the hand-off names responders: owner-only
        path = self.directory / f"{data.incident.key}.input.json"
        tmp = path.with_suffix(".tmp")
        write_private(tmp, data.model_dump_json(indent=2).encode())
        tmp.replace(path)  # atomic: a retried attempt never leaves half a file behind
        return path

    @activity.defn(name="record_postmortem_input")
    async def record_input(self, data: PostMortemInput) -> PostMortemResult:
        path = await asyncio.to_thread(self._write, data)
        return PostMortemResult(key=data.incident.key, input_ref=str(path))
