"""Stateful fakes of the vendors Tocsin talks to, each on a real loopback server (tests/support/vendor_server.py or
aiosmtpd), answering in the vendor's documented shapes. Shared by the adapter tests and the end-to-end
incident test, which configures every channel at once.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.vendor_server import Recorded, Reply, VendorServer
from tocsin.channels.slack import SUMMARY_EVENT, war_room_name


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MailRecorder:
    """An aiosmtpd handler that records what reaches it; `rcpt_reply`/`data_reply` force an answer."""

    def __init__(
        self,
        rcpt_reply: str | None = None,
        data_reply: str | None = None,
        login: tuple[str, str] = ("", ""),
    ) -> None:
        self.login = login
        self.rcpt_reply = rcpt_reply
        self.data_reply = data_reply
        self.mail_commands = 0
        self.delivered: list[tuple[str, list[str], bytes]] = []
        self.logins: list[tuple[str, bool]] = []

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.mail_commands += 1
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        self.delivered.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 Ok: queued as 4711"

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        ok = (auth_data.login, auth_data.password) == (self.login[0].encode(), self.login[1].encode())
        self.logins.append((mechanism, ok))
        return AuthResult(success=ok, handled=False)


@contextmanager
def smtp_server(handler: MailRecorder, **kwargs: Any) -> Iterator[int]:
    port = closed_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


class FakeStatuspage:
    """The incident and component endpoints Tocsin uses, with state, in Statuspage's shapes."""

    def __init__(self, server: VendorServer, page: str, components: dict[str, str]) -> None:
        self.incidents: list[dict[str, Any]] = []
        self.components = dict(components)
        self.fail_create_after_saving = False
        self.page = page
        base = f"/pages/{page}"
        server.on("GET", base, Reply(json={"id": page, "name": "Acme Status", "subdomain": "acme"}))
        server.on("GET", f"{base}/incidents/unresolved", lambda r: Reply(json=self.listed(unresolved=True)))
        server.on("GET", f"{base}/incidents", lambda r: Reply(json=self.listed(unresolved=False)))
        server.on("POST", f"{base}/incidents", self.create)
        server.on("PATCH", f"{base}/incidents/{{incident_id}}", self.update)
        server.on("PATCH", f"{base}/components/{{component_id}}", self.set_component)

    def listed(self, unresolved: bool) -> list[dict[str, Any]]:
        chosen = [i for i in self.incidents if not unresolved or i["status"] != "resolved"]
        return list(reversed(chosen))  # newest first

    def create(self, request: Recorded) -> Reply:
        fields = request.json["incident"]
        incident = {
            "id": f"inc{len(self.incidents) + 1}",
            "page_id": self.page,
            "name": fields["name"],
            "status": fields["status"],
            "impact": "major",
            "metadata": fields.get("metadata", {}),
            "components": [{"id": c, "status": self.components[c]} for c in fields.get("component_ids", [])],
            "incident_updates": [{"status": fields["status"], "body": fields.get("body", "")}],
            "shortlink": "https://stspg.io/x",
        }
        self.incidents.append(incident)
        if self.fail_create_after_saving:  # the write lands, the answer is lost
            return Reply(504, body="gateway timeout")
        return Reply(201, json=incident)

    def update(self, request: Recorded) -> Reply:
        fields = request.json["incident"]
        [incident] = [i for i in self.incidents if i["id"] == request.params["incident_id"]]
        incident["status"] = fields.get("status", incident["status"])
        incident["metadata"] = fields.get("metadata", incident["metadata"])
        incident["incident_updates"].append({"status": incident["status"], "body": fields.get("body", "")})
        return Reply(json=incident)

    def set_component(self, request: Recorded) -> Reply:
        component = request.params["component_id"]
        self.components[component] = request.json["component"]["status"]
        return Reply(json={"id": component, "status": self.components[component]})


class FakeGitHub:
    """The REST endpoints PyGithub calls for get_repo, get_issues and create_issue, in GitHub's shapes."""

    def __init__(self, server: VendorServer, page_size: int | None = None) -> None:
        self.server = server
        self.issues: dict[str, list[dict[str, Any]]] = {}
        self.page_size = page_size
        self.lock = threading.Lock()
        server.on("GET", "/repos/{owner}/{repo}", self.repo)
        server.on("GET", "/repos/{owner}/{repo}/issues", self.list_issues)
        server.on("POST", "/repos/{owner}/{repo}/issues", self.create_issue)

    def repo_json(self, full_name: str) -> dict[str, Any]:
        owner, name = full_name.split("/")
        return {
            "id": 1296269,
            "name": name,
            "full_name": full_name,
            "owner": {"login": owner, "id": 1, "type": "Organization"},
            "private": True,
            "url": f"{self.server.url}/repos/{full_name}",
            "html_url": f"https://github.com/{full_name}",
            "has_issues": True,
            "permissions": {"admin": False, "push": True, "pull": True},
        }

    def repo(self, request: Recorded) -> Reply:
        return Reply(json=self.repo_json(f"{request.params['owner']}/{request.params['repo']}"))

    def list_issues(self, request: Recorded) -> Reply:
        full_name = f"{request.params['owner']}/{request.params['repo']}"
        state = request.query.get("state", ["open"])[0]
        wanted = set(request.query.get("labels", [""])[0].split(",")) - {""}
        found = [
            issue
            for issue in reversed(self.issues.get(full_name, []))
            if (state == "all" or issue["state"] == state) and wanted <= {label["name"] for label in issue["labels"]}
        ]
        if self.page_size is None:
            return Reply(json=found)
        page = int(request.query.get("page", ["1"])[0])
        chunk = found[(page - 1) * self.page_size : page * self.page_size]
        headers = {}
        if page * self.page_size < len(found):
            headers["Link"] = f'<{self.server.url}/repos/{full_name}/issues?state=all&page={page + 1}>; rel="next"'
        return Reply(json=chunk, headers=headers)

    def create_issue(self, request: Recorded) -> Reply:
        full_name = f"{request.params['owner']}/{request.params['repo']}"
        return Reply(201, json=self.add(full_name, request.json))

    def add(self, full_name: str, fields: dict[str, Any], state: str = "open") -> dict[str, Any]:
        issues = self.issues.setdefault(full_name, [])
        number = len(issues) + 1
        issue = {
            "id": 1000 + number,
            "number": number,
            "title": fields["title"],
            "body": fields.get("body"),
            "state": state,
            "labels": [{"name": name} for name in fields.get("labels", [])],
            "url": f"{self.server.url}/repos/{full_name}/issues/{number}",
            "html_url": f"https://github.com/{full_name}/issues/{number}",
            "user": {"login": "tocsin-bot", "id": 7},
        }
        issues.append(issue)
        return issue


class FakeSlack:
    """Just enough of Slack's conversations, chat and pins methods, with Slack's own answer shapes."""

    def __init__(self, server: VendorServer, token: str, *, pins_carry_metadata: bool = True) -> None:
        self.token = token
        self.server = server
        self.pins_carry_metadata = pins_carry_metadata
        self.channels: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.pins: dict[str, list[str]] = {}
        self.members: dict[str, set[str]] = {}
        self.clock = 1711760000
        self.fail_next: dict[str, Reply] = {}
        for method in (
            "conversations.create",
            "conversations.invite",
            "conversations.join",
            "chat.postMessage",
            "chat.update",
            "pins.add",
        ):
            server.on("POST", f"/api/{method}", self.handler(method))
        for method in ("conversations.list", "pins.list", "conversations.history"):
            server.on("GET", f"/api/{method}", self.handler(method))

    def handler(self, method: str):
        def answer(request: Recorded) -> Reply:
            if request.headers.get("authorization") != f"Bearer {self.token}":
                return Reply(200, json={"ok": False, "error": "invalid_auth"})
            if method in self.fail_next:
                return self.fail_next.pop(method)
            args = request.json if request.method == "POST" else {k: v[0] for k, v in request.query.items()}
            result = getattr(self, method.replace(".", "_"))(args)
            return Reply(200, json=result)

        return answer

    def next_ts(self) -> str:
        self.clock += 1
        return f"{self.clock}.000100"

    def conversations_create(self, args: dict[str, Any]) -> dict[str, Any]:
        if any(c["name"] == args["name"] for c in self.channels.values()):
            return {"ok": False, "error": "name_taken"}
        cid = f"C{len(self.channels) + 1:08d}"
        self.channels[cid] = {
            "id": cid,
            "name": args["name"],
            "is_private": args.get("is_private", False),
            "is_archived": False,
            "is_member": True,
        }
        self.messages[cid], self.pins[cid], self.members[cid] = [], [], {"UTOCSIN"}
        return {"ok": True, "channel": self.channels[cid]}

    def conversations_list(self, args: dict[str, Any]) -> dict[str, Any]:
        channels = sorted(self.channels.values(), key=lambda c: c["id"])
        start = int(args.get("cursor") or 0)
        page = channels[start : start + 1]  # one a page, to exercise the cursor
        more = start + 1 < len(channels)
        return {"ok": True, "channels": page, "response_metadata": {"next_cursor": str(start + 1) if more else ""}}

    def conversations_invite(self, args: dict[str, Any]) -> dict[str, Any]:
        users = set(args["users"].split(","))
        if users <= self.members[args["channel"]]:
            return {"ok": False, "error": "already_in_channel"}
        self.members[args["channel"]] |= users
        return {"ok": True, "channel": self.channels[args["channel"]]}

    def conversations_join(self, args: dict[str, Any]) -> dict[str, Any]:
        self.channels[args["channel"]]["is_member"] = True
        return {"ok": True, "channel": self.channels[args["channel"]]}

    def add_channel(self, name: str) -> str:
        """A channel that exists before the incident (#sre-alerts, #leadership)."""
        answer = self.conversations_create({"name": name})
        return str(answer["channel"]["id"])

    def chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        # Slack takes a channel's id or its "#name"; it answers with the id either way.
        named = [cid for cid, c in self.channels.items() if f"#{c['name']}" == args["channel"]]
        if named:
            args = {**args, "channel": named[0]}
        if args["channel"] not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        msg = {"type": "message", "ts": self.next_ts(), "text": args["text"], "user": "UTOCSIN"}
        for kept in ("metadata", "blocks"):
            if kept in args:
                msg[kept] = args[kept]
        self.messages[args["channel"]].append(msg)
        return {"ok": True, "channel": args["channel"], "ts": msg["ts"], "message": msg}

    def chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        for msg in self.messages[args["channel"]]:
            if msg["ts"] == args["ts"]:
                msg["text"] = args["text"]
                for kept in ("metadata", "blocks"):
                    if kept in args:
                        msg[kept] = args[kept]
                return {"ok": True, "channel": args["channel"], "ts": args["ts"], "text": args["text"]}
        return {"ok": False, "error": "message_not_found"}

    def pins_add(self, args: dict[str, Any]) -> dict[str, Any]:
        if args["timestamp"] in self.pins[args["channel"]]:
            return {"ok": False, "error": "already_pinned"}
        self.pins[args["channel"]].append(args["timestamp"])
        return {"ok": True}

    def pins_list(self, args: dict[str, Any]) -> dict[str, Any]:
        items = []
        for msg in self.messages[args["channel"]]:
            if msg["ts"] in self.pins[args["channel"]]:
                shown = {k: v for k, v in msg.items() if k != "metadata" or self.pins_carry_metadata}
                items.append({"type": "message", "channel": args["channel"], "created": 1, "message": shown})
        return {"ok": True, "items": items}

    def conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        with_metadata = args.get("include_all_metadata") == "true"
        messages = [
            {k: v for k, v in msg.items() if k != "metadata" or with_metadata}
            for msg in reversed(self.messages[args["channel"]])
        ]
        return {"ok": True, "messages": messages, "has_more": False}

    # what a test asserts on

    def room(self, incident: str) -> str:
        [cid] = [str(c["id"]) for c in self.channels.values() if c["name"] == war_room_name(incident)]
        return cid

    def summaries(self, cid: str) -> list[dict[str, Any]]:
        return [m for m in self.messages[cid] if (m.get("metadata") or {}).get("event_type") == SUMMARY_EVENT]
