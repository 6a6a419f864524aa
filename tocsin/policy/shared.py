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
from typing import Annotated, Any, cast

from pydantic import ValidatorFunctionWrapHandler, WrapValidator

from tocsin.policy.schema import Policy

# Distinct policies alive at once: one per policy change since the oldest open incident opened.
KEPT = 32

_parsed: OrderedDict[bytes, Policy] = OrderedDict()
# Workflow tasks decode their inputs on several threads.
_lock = threading.Lock()


def shared_policy(value: Any, handler: ValidatorFunctionWrapHandler) -> Policy:
    """Wrap-validator: a snapshot (a dict decoded from JSON) becomes the one parsed Policy for its content; a
    Policy is taken as it is (policies are frozen and were validated when built). Skipping the inner
    validation for both matters too: Policy's cross-reference check would otherwise run again on every
    incident input built or decoded (about 0.3 ms each)."""
    if isinstance(value, Policy):
        return value
    if not isinstance(value, dict):
        return cast(Policy, handler(value))  # the field's own error for what is not a policy at all
    key = hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()).digest()
    with _lock:
        found = _parsed.get(key)
        if found is not None:
            _parsed.move_to_end(key)
            return found
    policy = cast(Policy, handler(value))  # raises the field's ValidationError for an invalid snapshot
    with _lock:
        _parsed[key] = policy
        while len(_parsed) > KEPT:
            _parsed.popitem(last=False)
    return policy


SharedPolicy = Annotated[Policy, WrapValidator(shared_policy)]
