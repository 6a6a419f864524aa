"""The vendors a chaos case's worker talks to, on one loopback VendorServer, each writing what it received into
one ledger with the time it arrived.

Built from the suite's fakes (tests/support/: vendor_fakes.py, postmortem_fakes.py, fake_kubernetes.py) plus a
stateful PagerDuty Events API v2 and Twilio. Each request that asks a vendor to do something becomes an
`Effect`: which channel, which delivery (the idempotency key the request carries, as the vendor sees it), when,
and whether it changed anything at the vendor. A request the vendor's own idempotency absorbs (a PagerDuty
trigger repeating a delivery already on the alert with that dedup_key, a scale write whose 409 finds the count
already written) is recorded as not applied; a Twilio call or a Slack post has no such key, so every one applies.

`Hold` makes a vendor apply a request and then keep its answer back, so the test can SIGKILL the worker while
that request is in flight: the worst moment for a duplicate, because the effect happened and the worker never
heard of it.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.fake_kubernetes import FakeKubernetes
from tests.support.postmortem_fakes import FakeChanges, FakeGitHubRepo
from tests.support.vendor_fakes import FakeSlack, FakeStatuspage
from tests.support.vendor_server import Recorded, Reply, VendorServer

PD_ROUTING_KEY = "CHA0SR0UT1NGk3y0123456789abcdefA"
SLACK_TOKEN = "xoxb-chaos-slack-token"
TWILIO_SID = "AC00001111222233334444555566667777"
TWILIO_TOKEN = "twilio-chaos-token"
STATUSPAGE_KEY = "statuspage-chaos-key"
STATUSPAGE_PAGE = "chaospage01"
GITHUB_TOKEN = "ghp_chaosToken0123456789"
GITHUB_REPO = "acme/ops"
KUBE_TOKEN = "k8s-chaos-token"
COMPONENTS = ("payments", "checkout", "search")  # the chaos policy's status_page.components
# Long enough that a held answer is never sent while the worker that asked still lives: the test kills it first.
HOLD_SECONDS = 120.0


def step_of(key: str) -> str:
    """`incident-<key>/<run>/page/0/2` -> `page/0/2`: the step an idempotency key names (workflows/_idempotency)."""
    parts = key.split("/", 2)
    return parts[2] if len(parts) == 3 else key


@dataclass(frozen=True)
class Effect:
    """One request that asked a vendor to do something, as the vendor received it."""

    at: float  # time.time() on arrival
    channel: str  # pagerduty, phone, sms, slack, statuspage, github, kubernetes
    key: str  # the delivery's idempotency key the request carries ("" when it carries none)
    what: str  # the vendor operation: "trigger", "Calls.json", "chat.postMessage", "scale 3 -> 6", ...
    applied: bool  # False: the vendor's own idempotency absorbed it (nothing new happened there)


class Ledger:
    """Every effect, in arrival order. Appended on the vendor server's threads, read by the test."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._effects: list[Effect] = []

    def add(self, channel: str, key: str, what: str, *, applied: bool = True) -> Effect:
        effect = Effect(at=time.time(), channel=channel, key=key, what=what, applied=applied)
        with self._lock:
            self._effects.append(effect)
        return effect

    def effects(self, channel: str | None = None) -> list[Effect]:
        with self._lock:
            return [e for e in self._effects if channel is None or e.channel == channel]

    def for_step(self, step: str, workflow_id: str = "") -> list[Effect]:
        """Effects of the delivery whose key names `step` (e.g. `page/0/2`), of one workflow when given, in
        arrival order."""
        prefix = f"{workflow_id}/" if workflow_id else ""
        return [e for e in self.effects() if e.key.startswith(prefix) and step_of(e.key) == step]

    def first_at(self, step: str, workflow_id: str = "") -> float | None:
        found = self.for_step(step, workflow_id)
        return found[0].at if found else None

    def requests_per_key(self) -> Counter[tuple[str, str]]:
        """(channel, key) -> requests received, applied or not."""
        return Counter((e.channel, e.key) for e in self.effects() if e.key)

    def duplicated(self) -> dict[tuple[str, str], int]:
        """(channel, key) -> effects applied beyond the first: what a person would see twice."""
        applied = Counter((e.channel, e.key) for e in self.effects() if e.key and e.applied)
        return {k: n - 1 for k, n in applied.items() if n > 1}

    def absorbed(self) -> list[Effect]:
        """Repeated requests the vendor's idempotency absorbed (a retry after a kill, typically)."""
        return [e for e in self.effects() if not e.applied]


class Hold:
    """Keeps back the answer to the first request whose delivery key ends with `suffix` (after applying it).

    `reached` is set when that request arrives, so the test knows the request is in flight and kills the worker."""

    def __init__(self) -> None:
        self.suffix: str | None = None
        self.reached = threading.Event()
        self.at = 0.0
        self.key = ""

    def arm(self, suffix: str) -> None:
        self.suffix = suffix

    def __call__(self, key: str, reply: Reply) -> Reply:
        if self.suffix is None or self.reached.is_set() or not key.endswith(self.suffix):
            return reply
        self.at, self.key = time.time(), key
        self.reached.set()
        return dataclasses.replace(reply, delay=HOLD_SECONDS)


class FakePagerDuty:
    """Events API v2 with PagerDuty's dedup semantics: a trigger with a dedup_key whose alert is open adds to
    that alert instead of opening another; acknowledge and resolve move it. A trigger repeating a delivery the
    alert already has (the same `custom_details.delivery`) is absorbed: no new alert, nobody notified again."""

    def __init__(self, server: VendorServer, ledger: Ledger) -> None:
        self.ledger = ledger
        self.hold = Hold()
        self.alerts: dict[str, dict[str, Any]] = {}  # dedup_key -> {"status", "deliveries"}
        self.opened = 0
        server.on("POST", "/v2/enqueue", self.enqueue)

    def enqueue(self, request: Recorded) -> Reply:
        event = request.json or {}
        if event.get("routing_key") != PD_ROUTING_KEY:
            return Reply(400, json={"status": "invalid event", "errors": ["routing_key is invalid"]})
        action, dedup = str(event["event_action"]), str(event["dedup_key"])
        reply = Reply(202, json={"status": "success", "message": "Event processed", "dedup_key": dedup})
        alert = self.alerts.get(dedup)
        if action != "trigger":
            if alert is not None and alert["status"] != "resolved":
                alert["status"] = {"acknowledge": "acknowledged", "resolve": "resolved"}[action]
            self.ledger.add("pagerduty", "", f"{action} {dedup}")
            return reply
        delivery = str(event["payload"]["custom_details"].get("delivery", ""))
        if alert is None or alert["status"] == "resolved":
            alert = {"status": "triggered", "deliveries": []}
            self.alerts[dedup] = alert
            self.opened += 1
        fresh = delivery not in alert["deliveries"]
        alert["deliveries"].append(delivery)
        self.ledger.add("pagerduty", delivery, "trigger", applied=fresh)
        return self.hold(delivery, reply)


class FakeTwilio:
    """Calls and Messages: each request places a call or sends a text (Twilio has no idempotency key)."""

    def __init__(self, server: VendorServer, ledger: Ledger) -> None:
        self.ledger = ledger
        self.hold = Hold()
        self.sids = 0
        for resource in ("Calls", "Messages"):
            server.on("POST", f"/2010-04-01/Accounts/{TWILIO_SID}/{resource}.json", self.create)

    def create(self, request: Recorded) -> Reply:
        self.sids += 1
        resource = request.path.rsplit("/", 1)[1]
        key = request.headers.get("i-twilio-idempotency-token", "")
        self.ledger.add("phone" if resource == "Calls.json" else "sms", key, resource)
        return self.hold(key, Reply(201, json={"sid": f"SM{self.sids:032d}", "status": "queued"}))


class LedgerSlack(FakeSlack):
    """FakeSlack, with every post and channel creation in the ledger."""

    def __init__(self, server: VendorServer, ledger: Ledger) -> None:
        super().__init__(server, SLACK_TOKEN)
        self.ledger = ledger

    def chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        answer = super().chat_postMessage(args)
        payload = (args.get("metadata") or {}).get("event_payload") or {}
        self.ledger.add("slack", str(payload.get("delivery", "")), f"chat.postMessage {args['channel']}")
        return answer

    def conversations_create(self, args: dict[str, Any]) -> dict[str, Any]:
        answer = super().conversations_create(args)
        self.ledger.add("slack", "", f"conversations.create {args['name']}", applied=bool(answer["ok"]))
        return answer


class LedgerGitHub(FakeGitHubRepo):
    """FakeGitHubRepo, with every commit and issue in the ledger; `hold` can keep back a commit's answer
    (its key is the file's path: GitHub's contents API carries no idempotency key of Tocsin's)."""

    def __init__(self, server: VendorServer, ledger: Ledger) -> None:
        super().__init__(server)
        self.ledger = ledger
        self.hold = Hold()

    def put_contents(self, request: Recorded) -> Reply:
        reply = super().put_contents(request)
        path = f"postmortems/{request.params['name']}"
        self.ledger.add("github", "", f"commit {path} ({reply.status})", applied=reply.status in (200, 201))
        return self.hold(path, reply)

    def create_issue(self, request: Recorded) -> Reply:
        reply = super().create_issue(request)
        self.ledger.add("github", "", f"issue {request.json['title']}")
        return self.hold("issue", reply)


class LedgerKubernetes(FakeKubernetes):
    """FakeKubernetes, with every write in the ledger as applied or not (a 409 changes nothing), and `hold`
    on the scale subresource (its key is `scale`: the Kubernetes API carries no idempotency key of Tocsin's)."""

    def __init__(self, server: VendorServer, ledger: Ledger) -> None:
        self.ledger = ledger
        self.hold = Hold()
        super().__init__(server, token=KUBE_TOKEN)

    def _scale(self, request: Recorded) -> Reply:
        if request.method != "PATCH":
            return super()._scale(request)
        before = self.deployments[(request.params["namespace"], request.params["name"])]["spec"]["replicas"]
        reply = super()._scale(request)
        after = self.deployments[(request.params["namespace"], request.params["name"])]["spec"]["replicas"]
        what = f"scale {before} -> {after} ({reply.status})"
        self.ledger.add("kubernetes", "", what, applied=reply.status == 200 and after != before)
        return self.hold("scale", reply)

    def _deployment(self, request: Recorded) -> Reply:
        if request.method == "GET":
            return super()._deployment(request)
        revision_before = self.revision(request.params["namespace"], request.params["name"])
        reply = super()._deployment(request)
        changed = self.revision(request.params["namespace"], request.params["name"]) != revision_before
        self.ledger.add("kubernetes", "", f"{request.method} deployment ({reply.status})", applied=changed)
        return reply

    def replicas(self, name: str) -> int:
        return int(self.deployment("production", name)["spec"]["replicas"])


class Vendors:
    """Every live channel of a chaos case on one loopback server, and the worker environment pointing at it."""

    def __init__(self, server: VendorServer) -> None:
        self.server = server
        self.ledger = Ledger()
        self.pagerduty = FakePagerDuty(server, self.ledger)
        self.twilio = FakeTwilio(server, self.ledger)
        self.slack = LedgerSlack(server, self.ledger)
        for name in ("sre-alerts", "leadership", "incidents"):
            self.slack.add_channel(name)
        components = {f"cmp_{service}": "operational" for service in COMPONENTS}
        self.statuspage = FakeStatuspage(server, STATUSPAGE_PAGE, components)
        self.github = LedgerGitHub(server, self.ledger)
        # The post-mortem's changes source reads the same repository: no deploys, pulls or commits in it.
        self.changes = FakeChanges(server, repo=GITHUB_REPO, github=self.github)
        self.kubernetes = LedgerKubernetes(server, self.ledger)
        self.kubernetes.add_deployment("production", "checkout", replicas=3)

    def env(self, home: Path) -> dict[str, str]:
        """The live-channel variables (tocsin/channels/registry.py) and a kubeconfig, all pointing here."""
        url = self.server.url
        kubeconfig = home.parent / "kubeconfig.yaml"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "chaos",
                    "clusters": [{"name": "chaos", "cluster": {"server": url}}],
                    "users": [{"name": "tocsin", "user": {"token": KUBE_TOKEN}}],
                    "contexts": [{"name": "chaos", "context": {"cluster": "chaos", "user": "tocsin"}}],
                }
            )
        )
        return {
            "TOCSIN_PAGERDUTY_ROUTING_KEY": PD_ROUTING_KEY,
            "TOCSIN_PAGERDUTY_EVENTS_URL": url,
            "TOCSIN_SLACK_TOKEN": SLACK_TOKEN,
            "TOCSIN_SLACK_API_URL": f"{url}/api",
            "TOCSIN_TWILIO_ACCOUNT_SID": TWILIO_SID,
            "TOCSIN_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "TOCSIN_TWILIO_FROM": "+15005550006",
            "TOCSIN_TWILIO_API_URL": url,
            "TOCSIN_STATUSPAGE_API_KEY": STATUSPAGE_KEY,
            "TOCSIN_STATUSPAGE_PAGE_ID": STATUSPAGE_PAGE,
            "TOCSIN_STATUSPAGE_API_URL": url,
            "TOCSIN_STATUSPAGE_COMPONENTS": ",".join(f"{service}=cmp_{service}" for service in COMPONENTS),
            "GITHUB_TOKEN": GITHUB_TOKEN,
            "TOCSIN_GITHUB_REPO": GITHUB_REPO,
            "TOCSIN_GITHUB_API_URL": url,
            "KUBECONFIG": str(kubeconfig),
        }
