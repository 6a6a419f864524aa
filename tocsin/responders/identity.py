"""The roster person behind a vendor's identity. Only the roster says who someone is: a vendor vouches for its
user (a signed callback), and the roster maps that user to a person; a name typed anywhere is never trusted."""

from __future__ import annotations

import re
from typing import Literal

from tocsin.policy.roster_schema import Roster

Field = Literal["slack", "phone", "pagerduty", "email"]


def normalized_phone(value: str) -> str:
    """E.164 as the roster keeps it: '+' and digits, separators dropped ('+49 151 1234-5678' -> '+4915112345678')."""
    digits = re.sub(r"[^\d]", "", value)
    return f"+{digits}" if digits else ""


def person_for(roster: Roster, field: Field, value: str) -> str | None:
    """The roster id whose `field` is `value`, or None. Emails compare case-insensitively, phones as E.164."""
    if not value:
        return None
    wanted = value.strip()
    if field == "phone":
        wanted = normalized_phone(wanted)
    elif field == "email":
        wanted = wanted.lower()
    for person_id, person in roster.people.items():
        known = getattr(person, field)
        if known is None:
            continue
        if field == "phone":
            known = normalized_phone(known)
        elif field == "email":
            known = known.lower()
        if known == wanted:
            return person_id
    return None
