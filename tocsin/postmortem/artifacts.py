"""The artifact store: where post-mortem activities put what is too big for a workflow history.

A directory (`$TOCSIN_HOME/artifacts/` by default; a shared volume when workers run on several hosts).
Writes are atomic (temporary file, then rename) and content-addressed in their reference (sha256), so a
retried activity that writes the same bytes again returns an equal ArtifactRef, and a reader can tell a
changed file from the one it was handed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from tocsin.postmortem.contracts import ArtifactRef
from tocsin.state_dir import private_dir, write_private

_SAFE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, relative: str) -> Path:
        parts = relative.split("/")
        if not parts or not all(_SAFE_PART.match(p) and p not in (".", "..") for p in parts):
            raise ValueError(f"not a safe artifact path: {relative!r}")
        return self.root.joinpath(*parts)

    def write_bytes(self, relative: str, data: bytes, media_type: str = "application/octet-stream") -> ArtifactRef:
        path = self._path(relative)
        private_dir(path.parent)  # evidence may hold log lines and names: owner-only
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        write_private(tmp, data)
        tmp.replace(path)
        digest = hashlib.sha256(data).hexdigest()
        return ArtifactRef(path=relative, sha256=digest, size=len(data), media_type=media_type)

    def write_json(self, relative: str, value: Any) -> ArtifactRef:
        data = json.dumps(value, indent=1, sort_keys=True, default=str).encode()
        return self.write_bytes(relative, data, "application/json")

    def write_text(self, relative: str, text: str, media_type: str = "text/plain; charset=utf-8") -> ArtifactRef:
        return self.write_bytes(relative, text.encode(), media_type)

    def read_bytes(self, ref: ArtifactRef) -> bytes:
        data = self._path(ref.path).read_bytes()
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            raise ValueError(f"artifact {ref.path} changed since it was written")
        return data

    def read_json(self, ref: ArtifactRef) -> Any:
        return json.loads(self.read_bytes(ref))

    def read_text(self, ref: ArtifactRef) -> str:
        return self.read_bytes(ref).decode()

    def location(self, ref: ArtifactRef) -> Path:
        return self._path(ref.path)
