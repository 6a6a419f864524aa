"""How an incident reaches people and places: each delivery an activity, each outcome on the timeline.

Targets go through the roster at workflow time; deliveries that leave state behind (a PagerDuty incident, a
war-room post, a status-page incident) are followed and kept in step with the incident
(tocsin.policy.following). A channel that fails is recorded and skipped: it never stalls the escalation.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.delivery import DeliveryActivities
    from tocsin.incident.contracts import PAGING_TASK_QUEUE, Delivery, Follower
    from tocsin.policy import following
    from tocsin.policy.actions import Route
    from tocsin.policy.priority import delivery_priority, incident_priority
    from tocsin.roster import ResolvedTarget
    from tocsin.roster import resolve as resolve_target
    from workflows.idempotency import idempotency_key
    from workflows.incident.core import IncidentCore
    from workflows.incident.options import activity_options
    from workflows.incident.targets import addresses, stakeholder_channel


class Deliveries:
    def __init__(self, core: IncidentCore) -> None:
        self._core = core

    async def deliver(self, step: str, route: Route, resolved: ResolvedTarget | None = None) -> bool:
        """Deliver to whoever the target is now (through the roster, unless the caller already resolved it),
        each as its own activity."""
        core = self._core
        resolved = resolved or resolve_target(core.policy.roster, route.target, workflow.now())
        pairs = addresses(resolved, route.channel)
        if not pairs:
            core.record("delivery_failed", f"{route.channel} → {route.target}: nobody to reach ({resolved.reason})")
            return False
        sends = [
            self.deliver_one(step if len(pairs) == 1 else f"{step}/{who}", route._replace(target=address))
            for who, address in pairs
        ]
        return any(await asyncio.gather(*sends))

    async def deliver_one(self, step: str, route: Route, status: str | None = None, follow_up: bool = False) -> bool:
        """One delivery as an activity. A channel that keeps failing is recorded and skipped, never a stall.

        On the paging queue, whose worker has slots of its own, at the incident's priority (bookkeeping after
        every page): the incidents queue's bursts never hold a page back."""
        core, state = self._core, self._core.state
        delivery = Delivery(
            idempotency_key=idempotency_key(step),
            incident=state.key,
            channel=route.channel,
            target=route.target,
            message=route.message,
            at=workflow.now(),
            title=state.title,
            severity=state.severity,
            service=state.service,
            status=status or state.status,
        )
        # At the severity's own key even for a storm incident: its workflow tasks are background work, but
        # its page stands for every incident it holds and must not queue behind a sev3's.
        paging = incident_priority(core.policy, state.severity)
        priority = delivery_priority(paging, route.channel, follow_up)
        options = activity_options(core.policy, f"{route.channel} → {route.target}", priority)
        try:
            receipt = await workflow.execute_activity_method(
                DeliveryActivities.deliver,
                delivery,
                **workflow.ActivityConfig(**options, task_queue=PAGING_TASK_QUEUE),
            )
        except ActivityError as err:
            core.record("delivery_failed", f"{route.channel} → {route.target}: {err.cause or err}", step=step)
            return False
        # The receipt is the provider's word that it has the message (or the outbox line's id).
        again = " (already there: a retry)" if receipt.duplicate else ""
        core.record("delivered", f"{route.channel} → {route.target}: {receipt.provider_id}{again}", step=step)
        following.follow(state.followers, route.channel, route.target, state)
        return True

    async def tell_stakeholders(self, step: str, text: str) -> None:
        core, state = self._core, self._core.state
        stakeholders = core.policy.severity(state.severity).stakeholders
        held = state.maintenance.held
        if held is not None:
            # A maintenance window holds every message, not only pages: nobody hears of what it holds.
            core.record("notify", f"stakeholders not told (held by maintenance window {held.id}): {text}")
            return
        message = f"[{state.severity}] {state.title} ({state.service}): {text}"
        # Each stakeholder on their own channel: a team's Slack channel, else each member's email.
        now = workflow.now()
        resolved = [resolve_target(core.policy.roster, who, now) for who in stakeholders]
        sends = [
            self.deliver(f"{step}/{r.target}", Route(stakeholder_channel(r), r.target, message), r) for r in resolved
        ]
        await asyncio.gather(*sends)
        core.record("notify", f"stakeholders told ({', '.join(stakeholders) or 'none defined'}): {text}")

    async def sync_followers(self) -> None:
        """Bring every followed channel in step with the incident: PagerDuty acknowledged or resolved, the
        war room's pinned summary rewritten, the status page's incident moved on."""
        state = self._core.state
        stale = following.stale(state.followers, state)
        if not stale:
            return
        state.syncs += 1
        await asyncio.gather(*(self._sync_one(state.syncs, f) for f in stale))

    async def _sync_one(self, n: int, follower: Follower) -> None:
        state = self._core.state
        showing = following.shown(follower.channel, state)
        route = Route(follower.channel, follower.target, following.sync_text(follower.channel, state))
        status = following.delivery_status(follower.channel, state)
        self._core.record("sync", f"{follower.channel} {follower.target}: {follower.synced} → {showing}")
        # Marked as synced even when it fails: the failure is on the timeline, and the next change tries again
        # instead of the loop retrying a dead channel on every pass.
        follower.synced = showing
        await self.deliver_one(f"sync/{n}/{follower.channel}", route, status=status, follow_up=True)
