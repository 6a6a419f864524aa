"""Which channels are live: every adapter that finds its configuration in the environment.

A channel without configuration is not an error: its deliveries go to the outbox, and the worker says so at
start. A channel configured wrongly is an error at start, naming the variable, never its value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from tocsin.channels.base import Channel
from tocsin.channels.github import GitHubIssues
from tocsin.channels.pagerduty import PagerDutyChannel
from tocsin.channels.slack import SlackChannel
from tocsin.channels.smtp import SmtpEmail
from tocsin.channels.statuspage import Statuspage
from tocsin.channels.twilio import TwilioSms, TwilioVoice
from tocsin.channels.webhook import TeamsChannel, WebhookChannel

# Channel name (as escalation steps and automatic actions use it) -> how to build its adapter.
ADAPTERS: dict[str, Callable[[Mapping[str, str]], Channel | None]] = {
    "pagerduty": PagerDutyChannel.from_env,
    "slack": SlackChannel.from_env,
    "email": SmtpEmail.from_env,
    "sms": TwilioSms.from_env,
    "phone": TwilioVoice.from_env,
    "statuspage": Statuspage.from_env,
    "github": GitHubIssues.from_env,
    "teams": TeamsChannel.from_env,
    "webhook": WebhookChannel.from_env,
}
CHANNEL_NAMES = tuple(ADAPTERS)


def channels_from_env(env: Mapping[str, str]) -> dict[str, Channel]:
    live = {}
    for name, build in ADAPTERS.items():
        channel = build(env)
        if channel is not None:
            live[name] = channel
    return live


def describe(live: Mapping[str, Channel]) -> str:
    """The worker's start-up line: which channels are live, which go to the outbox."""
    on = [name for name in CHANNEL_NAMES if name in live]
    off = [name for name in CHANNEL_NAMES if name not in live]
    return f"channels live: {', '.join(on) or 'none'}; to the outbox: {', '.join(off) or 'none'}"
