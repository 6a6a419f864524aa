"""The short code a page carries ("reply ACK 4821"), so an SMS reply can name its incident without its key.

Four digits from a hash of the incident key: the same key always gives the same code, on every worker and on
replay. Two open incidents may share a code; the receiver then prefers the one that paged the replying person.
"""

from __future__ import annotations

import hashlib


def short_code(key: str) -> str:
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return f"{int.from_bytes(digest[:4], 'big') % 10_000:04d}"
