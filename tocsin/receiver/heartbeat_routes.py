"""`POST /api/v1/heartbeats/<name>`: a ping of a heartbeat the policy declares (tocsin/policy/heartbeats.py).

Same credentials and gate as the generic alert endpoint (a sender that may post alerts may ping); the body is
any JSON (Alertmanager's Watchdog payload, or `{}`) and is not kept: the ping itself is the message. An
undeclared name is a 404, so a typo in a sender's URL is seen at once rather than as a missed heartbeat later.
A ping is one signal-with-start of `heartbeat-<name>`; 202 once Temporal has it, 503 (Retry-After) when
Temporal is unreachable, so Alertmanager sends it again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from temporalio.client import Client

from tocsin.heartbeat.contracts import HEARTBEAT_WORKFLOW, HeartbeatInput, Ping, heartbeat_workflow_id
from tocsin.incident.contracts import INCIDENT_TASK_QUEUE
from tocsin.intake.contracts import TemporalUnavailable
from tocsin.intake.ingest import classify
from tocsin.policy.heartbeats import Heartbeat
from tocsin.receiver.gate import RETRY_AFTER_SECONDS, Gate, Problem, Reject

log = logging.getLogger("tocsin.receiver")

HEARTBEAT_ENDPOINT = "/api/v1/heartbeats/{name}"
# Raises TemporalUnavailable when Temporal does not answer; anything else is the receiver's own trouble.
SendPing = Callable[[str, Heartbeat], Awaitable[None]]


@dataclass(frozen=True)
class HeartbeatReceiver:
    declared: Mapping[str, Heartbeat]
    ping: SendPing


def temporal_ping(client: Client) -> SendPing:
    async def ping(name: str, beat: Heartbeat) -> None:
        # The declaration travels with the start: the first ping starts the workflow with it; later ones only
        # signal the running workflow (its declaration changes when it continues as new or is restarted).
        inp = HeartbeatInput(
            name=name, interval=beat.interval, grace=beat.grace, service=beat.service, severity=beat.severity
        )
        try:
            await client.start_workflow(
                HEARTBEAT_WORKFLOW,
                inp,
                id=heartbeat_workflow_id(name),
                task_queue=INCIDENT_TASK_QUEUE,
                start_signal="ping",
                start_signal_args=[Ping()],
                static_summary=f"Heartbeat {name}: an incident for {beat.service} when pings stop",
            )
        except Exception as err:
            if classify(err) == "unavailable":
                raise TemporalUnavailable(f"Temporal did not accept the ping: {err}") from err
            raise

    return ping


def add_heartbeat_routes(app: FastAPI, gate: Gate, heartbeats: HeartbeatReceiver) -> None:
    config = gate.config

    @app.post(
        HEARTBEAT_ENDPOINT,
        status_code=202,
        summary="Ping a heartbeat declared in the policy; its incident opens when pings stop",
        operation_id="post_heartbeat",
        responses={
            401: {"model": Problem, "description": "Missing or wrong credentials (those of /api/v1/alerts)"},
            404: {"model": Problem, "description": "No heartbeat of this name in the policy"},
            503: {"model": Problem, "description": "Temporal is unreachable; retry (Retry-After)"},
        },
    )
    async def heartbeat(name: str, request: Request) -> Response:
        try:
            await gate.read_body(request, None if config.open else config.credentials("generic"))
            beat = heartbeats.declared.get(name)
            if beat is None:
                raise Reject(404, "unknown_heartbeat", f"no heartbeat {name!r} in the policy's heartbeats")
            try:
                await heartbeats.ping(name, beat)
            except TemporalUnavailable as err:
                headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
                raise Reject(503, "temporal_unavailable", str(err), headers=headers) from None
            except Exception:
                log.exception("heartbeat %s: the ping failed", name)
                raise Reject(500, "internal_error", "the receiver failed to send the ping; see its log") from None
        except Reject as reject:
            # Not counted among the alert endpoints' rejections: a ping carries no alerts.
            log.log(logging.WARNING if reject.status >= 500 else logging.INFO, "heartbeat %s: %s", name, reject.message)
            return JSONResponse(reject.problem(), status_code=reject.status, headers=reject.headers)
        return JSONResponse({"heartbeat": name, "accepted": True}, status_code=202)
