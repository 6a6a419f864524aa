"""One Policy object per distinct policy snapshot in a worker, however many workflows carry it.

Every incident carries the policy it opened under (about 14 KB of JSON, about 85 KB once parsed into
pydantic objects), and a worker keeps up to its workflow cache of incidents in memory: 1,000 open
incidents held 1,000 equal copies. Workflows never mutate their policy, so equal snapshots can share one
parsed object. The key is the snapshot's content, so the result is the same whichever workflow decoded
it first: deterministic, and replay-safe.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from typing import Annotated, Any

from pydantic import BeforeValidator

from tocsin.policy.models import Policy

# Distinct policies alive at once: one per policy change since the oldest open incident opened.
KEPT = 32

_parsed: OrderedDict[bytes, Policy] = OrderedDict()
# Workflow tasks decode their inputs on several threads.
_lock = threading.Lock()


def shared_policy(value: Any) -> Any:
    """Before-validator: a snapshot (a dict decoded from JSON) becomes the one parsed Policy for its content.
    Anything else (a Policy already, or something invalid) goes on to normal validation unchanged."""
    if not isinstance(value, dict):
        return value
    key = hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()).digest()
    with _lock:
        found = _parsed.get(key)
        if found is not None:
            _parsed.move_to_end(key)
            return found
    policy = Policy.model_validate(value)  # raises the same ValidationError as the field would
    with _lock:
        _parsed[key] = policy
        while len(_parsed) > KEPT:
            _parsed.popitem(last=False)
    return policy


SharedPolicy = Annotated[Policy, BeforeValidator(shared_policy)]
