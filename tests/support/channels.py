"""What the channel adapters' tests share: one message, the credentials they use, and the checks that none of
those credentials reaches an exception or a log record."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tocsin.channels.base import Message

AT = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)

SMTP_USER = "smtp-user-5f1c"
SMTP_PASSWORD = "smtp-pass-9a7e/+x"
TWILIO_SID = "AC0123456789abcdef0123456789abcdef"
TWILIO_TOKEN = "twilio-token-3e8b1d"
STATUSPAGE_KEY = "statuspage-key-77c2e4"
GITHUB_TOKEN = "ghp_testtoken4d9a2c81"
SECRETS = (SMTP_USER, SMTP_PASSWORD, TWILIO_TOKEN, STATUSPAGE_KEY, GITHUB_TOKEN)


def message(**overrides: Any) -> Message:
    fields: dict[str, Any] = {
        "idempotency_key": "inc-checkout-1/page/0",
        "incident": "inc-checkout-1",
        "channel": "email",
        "target": "oncall@example.com",
        "text": "checkout is down: 5xx at 40%",
        "title": "Checkout down <prod>",
        "severity": "sev1",
        "service": "checkout",
        "status": "triggered",
        "at": AT,
    }
    fields.update(overrides)
    return Message(**fields)


def assert_secret_free(err: BaseException) -> None:
    for secret in SECRETS:
        assert secret not in str(err), f"a secret is in the error: {err}"
        assert secret not in repr(err.args)


@pytest.fixture(autouse=True)
def no_secret_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Everything is logged at DEBUG (httpx, urllib3, PyGithub, the adapters); none of it may hold a secret.
    aiosmtpd's own server log (`mail.*`) is the test server's, not Tocsin's, so it is left out. Imported into a
    test module, it checks every test there."""
    caplog.set_level(logging.DEBUG)
    yield
    for record in caplog.records:
        if record.name.startswith("mail."):
            continue
        text = record.getMessage()
        for secret in SECRETS:
            assert secret not in text, f"{record.name} logged a secret: {text}"
