"""What every responder route reads: the `Responders` it is given, the settings that switch each vendor on, and
the one 404 a vendor answers while its setting is unset.

The routes of each vendor (slack_routes, twilio_routes, pagerduty_routes, link_routes) import this module, and
tocsin.receiver.app imports them: so this module imports no route module, or the import graph would loop.

A `Responders` is the secrets that verify the vendor's signature, the roster that maps the vendor's user to a
person, and `act`, the way into the incidents (tocsin.responders.dispatch; tests pass a fake). A vendor whose
secret is not configured answers 404 naming the variable to set: nothing is ever acted on unverified. These
endpoints take no bearer token: the vendor's signature is the credential.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx
from fastapi.responses import JSONResponse
from pydantic import SecretStr

from tocsin.addresses import is_http_url
from tocsin.policy.roster_schema import Roster
from tocsin.responders.dispatch import Act
from tocsin.secret_settings import SecretSettingError, read_setting

SLACK_SECRET = "TOCSIN_SLACK_SIGNING_SECRET"  # noqa: S105 - the variable's name
TWILIO_TOKEN = "TOCSIN_TWILIO_AUTH_TOKEN"  # noqa: S105 - the variable's name
PAGERDUTY_SECRET = "TOCSIN_PAGERDUTY_WEBHOOK_SECRET"  # noqa: S105 - the variable's name
LINK_SECRET = "TOCSIN_ACTION_LINK_SECRET"  # noqa: S105 - the variable's name
PUBLIC_URL = "TOCSIN_PUBLIC_URL"
# Not a secret: where the Slack channel calls Slack, read here for the response URLs a click may name.
SLACK_API_URL = "TOCSIN_SLACK_API_URL"


class ResponderConfigError(ValueError):
    """A responder setting that cannot be used; the message names the variable, never a value."""


@dataclass(frozen=True)
class ResponderSecrets:
    slack_signing_secret: SecretStr | None = None
    twilio_auth_token: SecretStr | None = None
    # Several during a rotation: PagerDuty signs with each secret of the subscription.
    pagerduty_webhook_secrets: tuple[SecretStr, ...] = ()
    action_link_secret: SecretStr | None = None
    # The base URL the vendors see (Twilio signs it; email links point at it), without a trailing slash.
    public_url: str | None = None
    # Set when Slack is not https://slack.com/api (a local fake in tests): its origin may be a response URL too.
    slack_api_url: str | None = None


@dataclass(frozen=True)
class Responders:
    act: Act
    roster: Roster
    secrets: ResponderSecrets
    clock: Callable[[], float] = field(default=time.time)


def _secret(env: Mapping[str, str], name: str) -> SecretStr | None:
    try:
        value = read_setting(env, name)
    except SecretSettingError as err:
        raise ResponderConfigError(str(err)) from None
    return SecretStr(value) if value else None


def _parses(url: str) -> bool:
    """An http(s) URL by the product's check, and by httpx's, which parses the response URLs compared to it."""
    try:
        httpx.URL(url)
    except httpx.InvalidURL:
        return False
    return is_http_url(url)


def load_responder_secrets(env: Mapping[str, str]) -> ResponderSecrets:
    """The responder settings from the environment (`NAME` or `NAME_FILE`); ResponderConfigError names a bad one."""
    public = (env.get(PUBLIC_URL) or "").strip().rstrip("/") or None
    if public is not None and not is_http_url(public):
        raise ResponderConfigError(f"{PUBLIC_URL} must be an http(s) URL, the receiver's address as vendors see it")
    slack_api = (env.get(SLACK_API_URL) or "").strip() or None
    if slack_api is not None and not _parses(slack_api):
        raise ResponderConfigError(f"{SLACK_API_URL} must be an http(s) URL, where Slack's Web API answers")
    pagerduty = _secret(env, PAGERDUTY_SECRET)
    rotated = (
        tuple(SecretStr(s.strip()) for s in pagerduty.get_secret_value().split(",") if s.strip()) if pagerduty else ()
    )
    return ResponderSecrets(
        slack_signing_secret=_secret(env, SLACK_SECRET),
        twilio_auth_token=_secret(env, TWILIO_TOKEN),
        pagerduty_webhook_secrets=rotated,
        action_link_secret=_secret(env, LINK_SECRET),
        public_url=public,
        slack_api_url=slack_api,
    )


def not_configured(
    vendor: str, variable: str, *, from_file: bool = True, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """404: this receiver takes no callbacks from `vendor` until `variable` is set. A setting that is not a
    secret (the public URL) is read from its variable only, so its answer names no `_FILE`; `headers` are the
    route's own (the email links' no-store and no-referrer)."""
    also = f" (or {variable}_FILE)" if from_file else ""
    return JSONResponse(
        {"error": "not_configured", "detail": f"{vendor} callbacks are off: set {variable}{also}"},
        status_code=404,
        headers=dict(headers) if headers else None,
    )
