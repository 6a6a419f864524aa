"""What the escalation plan says is due, done: pages level by level, the chain's end, missed targets,
management escalation, the severity's automatic actions and auto-resolution on quiet alerts.

What is due and when is decided by tocsin.policy.escalation (pure functions); this part records each step on
the timeline and hands every message to the incident's deliveries.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from tocsin.durations import format_duration, format_elapsed
    from tocsin.incident.contracts import IncidentState
    from tocsin.policy import escalation as plan
    from tocsin.policy.actions import Route, automatic_action_route
    from tocsin.responders.codes import short_code
    from tocsin.roster import resolve as resolve_target
    from tocsin.storm import consolidation as storm
    from workflows.incident.core import IncidentCore
    from workflows.incident.deliveries import Deliveries
    from workflows.incident.targets import addresses

# Paged people remembered per incident (IncidentState.paged_people holds at most 50).
PAGED_KEPT = 20


def page_text(state: IncidentState) -> str:
    """A page says what is wrong and how to answer it from where it lands: the short code names this incident
    in an SMS reply ("ACK 4821"), where a key would be hard to type."""
    return (
        f"[{state.severity}] {state.title} ({state.service}) — please acknowledge (reply ACK {short_code(state.key)})"
    )


def remember_paged(state: IncidentState, people: list[str]) -> None:
    """Who has been paged, most recent last, bounded: a reply from one of them finds this incident."""
    for person in people:
        if person in state.paged_people:
            state.paged_people.remove(person)
        state.paged_people.append(person)
    del state.paged_people[:-PAGED_KEPT]


class Escalation:
    def __init__(self, core: IncidentCore, deliveries: Deliveries) -> None:
        self._core = core
        self._deliveries = deliveries

    def next_wakeup(self) -> datetime | None:
        """When the loop must look again on its own: the plan's next step, or the end of a storm's burst."""
        state = self._core.state
        wake_at = plan.next_wakeup(state, self._core.policy, workflow.now())
        storm_over = storm.over_at(state.storm) if state.storm else None
        if storm_over is not None:
            wake_at = min(wake_at, storm_over) if wake_at else storm_over
        return wake_at

    async def run_due(self) -> None:
        core = self._core
        for item in plan.due(core.state, core.policy, workflow.now()):
            if core.resolved():
                return
            if isinstance(item, plan.AutoResolve):
                self._resolve_quietly(item)
            elif isinstance(item, plan.Page):
                await self._page(item)
            elif isinstance(item, plan.ChainExhausted):
                await self._exhausted(item)
            elif isinstance(item, plan.Breach):
                await self._breach(item)
            elif isinstance(item, plan.AckTimeout):
                await self._ack_timeout(item)
            else:
                await self._management(item)
        # After paging, so nobody waits on a status page to be woken; set_severity adds new ones later.
        if core.state.paging_held or core.state.maintenance.held is not None:
            return  # the storm incident acts for it; a maintenance window holds them until it ends
        for action in core.policy.severity(core.state.severity).automatic_actions:
            if action not in core.state.automatic_actions_done and not core.resolved():
                core.state.automatic_actions_done.append(action)
                await self.automatic_action(action)

    def _resolve_quietly(self, item: plan.AutoResolve) -> None:
        core, state = self._core, self._core.state
        quiet = format_elapsed(workflow.now() - item.quiet_since)
        state.status = "resolved"
        state.resolved_by = "tocsin"
        state.resolved_at = workflow.now()
        state.resolution_summary = f"all {len(state.alerts)} alerts resolved and stayed quiet for {quiet}"
        state.next_escalation_at = None
        core.record("resolved", f"auto-resolved: {state.resolution_summary}")

    async def _page(self, page: plan.Page) -> None:
        core, state = self._core, self._core.state
        step = core.policy.escalation_policies.primary_oncall[page.step]
        how = "manual escalation" if page.manual else f"attempt {page.attempt}/{step.retry_count}"
        plan.record_page(state, core.policy, page)
        route = Route(step.type, step.target, page_text(state))
        resolved = resolve_target(core.policy.roster, step.target, workflow.now())
        remember_paged(state, [person.id for person in resolved.people])
        who = f" ({resolved.reason})" if resolved.kind != "unknown" else ""
        if not addresses(resolved, step.type):
            # Nobody to page here (an empty rotation, nobody with a phone): say so and move on at once.
            core.record("page", f"level {page.step + 1}: nobody to page via {step.type}{who}; next level now")
            state.escalation.attempt = step.retry_count
            state.escalation.next_at = workflow.now()
            core.publish()
            return
        core.record("page", f"level {page.step + 1}: paging {step.target} via {step.type} ({how}){who}")
        delivered = await self._deliveries.deliver(f"page/{page.step}/{page.attempt}", route, resolved)
        if delivered and state.first_paged_at is None:
            # Once the provider has the page, not when it is scheduled: a page that failed reached nobody, and
            # time to page is what the responder lived through.
            state.first_paged_at = workflow.now()
        core.publish()

    async def _ack_timeout(self, item: plan.AckTimeout) -> None:
        """The owner acknowledged and then went quiet: page them again, on the channel of the level the chain
        had reached, and let the chain resume after that level's delay."""
        core, state = self._core, self._core.state
        steps = core.policy.escalation_policies.primary_oncall
        step = steps[max(state.escalation.step, 0)]
        timeout = core.policy.severity(state.severity).ack_timeout
        plan.record_ack_timeout(state, core.policy, workflow.now())
        state.ack_timeouts += 1
        lapsed = f" within {format_duration(timeout)}" if timeout else ""
        core.record(
            "ack_timeout",
            f"acknowledged by {item.owner} but neither mitigated nor resolved{lapsed}: paging {item.owner} again, "
            "then the chain resumes",
        )
        resolved = resolve_target(core.policy.roster, item.owner, workflow.now())
        route = Route(step.type, item.owner, page_text(state))
        await self._deliveries.deliver(f"ack-timeout/{state.ack_timeouts}", route, resolved)
        core.publish()

    async def _exhausted(self, item: plan.ChainExhausted) -> None:
        plan.record_exhausted(self._core.state, item.manual)
        self._core.record("chain_exhausted", "primary on-call chain exhausted without acknowledgement")
        await self._deliveries.tell_stakeholders(
            "exhausted", "nobody acknowledged after the whole on-call chain was paged"
        )

    async def _breach(self, item: plan.Breach) -> None:
        self._core.state.escalation.breaches.append(item.kind)
        what = "acknowledged" if item.kind == "response" else "mitigated"
        text = f"not {what} within {format_duration(item.target)} ({item.kind} target missed)"
        self._core.record("breach", text)
        await self._deliveries.tell_stakeholders(f"breach/{item.kind}", text)

    async def _management(self, item: plan.Management) -> None:
        core, state = self._core, self._core.state
        step = core.policy.escalation_policies.management_escalation[item.index]
        state.escalation.management_fired.append(item.index)
        core.record("management", f"management escalation via {step.type} to {step.target}")
        open_for = format_elapsed(workflow.now() - state.opened_at)
        message = f"[{state.severity}] {state.title} has been open for {open_for}"
        await self._deliveries.deliver(f"management/{item.index}", Route(step.type, step.target, message))

    async def automatic_action(self, action: str) -> None:
        route = automatic_action_route(action, self._core.state)
        if route.channel == "stakeholders":
            await self._deliveries.tell_stakeholders(f"action/{action}", route.message)
            return
        ok = await self._deliveries.deliver(f"action/{action}", route)
        self._core.record("action", f"{action}: {route.channel} {route.target}" + ("" if ok else " (failed)"))
