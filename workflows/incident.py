"""IncidentWorkflow: one durable workflow per incident, from the first page to the post-mortem hand-off.

Pure orchestration. What is due and when is decided by tocsin.policy.escalation (pure functions); every
side effect is an activity; handlers only change state and wake the main loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from tocsin import incident_bounds as bounds
    from tocsin import search_attributes as sa
    from tocsin import storm
    from tocsin.durations import format_duration, format_elapsed
    from tocsin.models import (
        IncidentInput,
        IncidentState,
        TimelineEntry,
    )
    from tocsin.policy import escalation as plan
    from tocsin.policy.actions import Route, automatic_action_route
    from tocsin.policy.priority import incident_priority
    from tocsin.roster import resolve as resolve_target
    from tocsin.storm_models import AdmitAnswer
    from workflows._incident_closing import close_incident
    from workflows._incident_delivery import IncidentDelivery
    from workflows._incident_handlers import IncidentHandlers
    from workflows._incident_response import IncidentResponse
    from workflows._incident_runbooks import IncidentRunbooks
    from workflows._incident_storm import IncidentStorm
    from workflows._incident_targets import addresses
    from workflows._incident_view import details_markdown

# Continue-as-new before the history nears Temporal's warnings (10 MB), whatever the event count says: a few
# large alert payloads weigh more than thousands of small events.
HISTORY_BYTES = 4 * 1024 * 1024
# What continue-as-new may carry at most; far under the 2 MiB payload limit, and what a `status` query returns.
CARRIED_BYTES = 768 * 1024


@workflow.defn(name="IncidentWorkflow")
class IncidentWorkflow(IncidentHandlers, IncidentDelivery, IncidentRunbooks, IncidentStorm, IncidentResponse):
    @workflow.init
    def __init__(self, inp: IncidentInput) -> None:
        self._input = inp
        self._policy = inp.policy
        self._state = inp.carried or IncidentState(
            key=inp.key,
            title=inp.title,
            service=inp.service,
            severity=inp.severity,
            labels=inp.labels,
            response_workflow=inp.response_workflow,
            opened_at=workflow.now(),
        )
        self._wake = False
        self._auto_resolve = False
        self._wake_on_every_alert = True
        self._roster_targets = False
        self._follow_channels = False
        self._runbooks_enabled = False
        self._bounded = False
        self._storm_answer: AdmitAnswer | None = None
        self._published: dict[str, object] = {}
        if inp.carried is None:
            # Here, not in run: a signal or update in the first workflow task runs its handler before the run
            # method starts, and the timeline must still begin with the opening.
            flow = f", response workflow {inp.response_workflow}" if inp.response_workflow else ""
            self._record("opened", f"{inp.title} (from {inp.source})")
            self._record("triaged", f"severity {inp.severity}{flow}")

    @workflow.run
    async def run(self, inp: IncidentInput) -> IncidentState:
        state = self._state
        # Incidents recorded before auto-resolution existed replay without it (no marker in their history).
        self._auto_resolve = workflow.patched("auto-resolve-on-quiet-alerts")
        self._wake_on_every_alert = not workflow.patched("alerts-wake-on-change")
        self._roster_targets = workflow.patched("resolve-targets-via-roster")
        self._follow_channels = workflow.patched("channels-follow-incident")
        self._runbooks_enabled = workflow.patched("runbooks-as-children")
        # Byte-measured continue-as-new, storm admission and the storm summary (histories before replay without).
        self._bounded = workflow.patched("bounded-state-and-storms")
        if inp.carried is None and self._bounded and not inp.storm and self._policy.intake.storm.enabled:
            await self._admit_to_storm()
        while state.status != "resolved":
            await self._run_due()
            if self._bounded:
                await self._summarize_storm()
            if self._follow_channels and not self._resolved():
                await self._sync_followers()
            if self._runbooks_enabled:
                await self._start_runbooks()
            if self._resolved():
                # Resolved by the plan (quiet alerts) or by an update that landed while an activity ran.
                break
            if not state.responded and not state.paging_held:
                state.responded = True
                if workflow.patched("link-previous-incident"):
                    await self._link_previous()
                await self._respond()
                continue
            state.next_escalation_at = plan.next_page_at(state, self._policy)
            self._publish()
            if self._roll_over_due():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._bounded:
                    bounds.shrink(state, CARRIED_BYTES)
                workflow.continue_as_new(inp.model_copy(update={"carried": state}))
            await self._sleep_until_due()
        await close_incident(self)
        self._publish()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return state

    def _roll_over_due(self) -> bool:
        info = workflow.info()
        if info.is_continue_as_new_suggested():
            return True
        return self._bounded and info.get_current_history_size() > HISTORY_BYTES

    def _priority(self) -> int:
        # From the severity now, not at the start: a sev3 raised to sev1 pages as a sev1 from then on.
        return incident_priority(self._policy, self._state.severity, self._input.storm)

    def _resolved(self) -> bool:
        # A method, not an inline test: handlers change the status while the loop awaits.
        return self._state.status == "resolved"

    async def _sleep_until_due(self) -> None:
        now = workflow.now()
        wake_at = plan.next_wakeup(self._state, self._policy, now, self._auto_resolve)
        storm_over = storm.over_at(self._state.storm) if self._bounded and self._state.storm else None
        if storm_over is not None:
            wake_at = min(wake_at, storm_over) if wake_at else storm_over
        # A floor of one second: if the plan ever said "now" for something it then did not do,
        # the incident would spin; it waits a second instead and says so in the next pass.
        timeout = max(wake_at - now, timedelta(seconds=1)) if wake_at else None
        self._wake = False
        summary = f"until {wake_at:%H:%M:%S}Z or a human acts" if wake_at else "until a human acts"
        with contextlib.suppress(asyncio.TimeoutError):
            # Also wake when the server suggests continue-as-new: a flood of alert signals alone must be
            # able to roll the history over, even while the plan has nothing due for hours.
            await workflow.wait_condition(
                lambda: self._wake or self._roll_over_due(),
                timeout=timeout,
                timeout_summary=summary,
            )

    # --- what the plan says is due -------------------------------------------------------------------

    async def _run_due(self) -> None:
        for item in plan.due(self._state, self._policy, workflow.now(), self._auto_resolve):
            if self._state.status == "resolved":
                return
            if isinstance(item, plan.AutoResolve):
                self._resolve_quietly(item)
            elif isinstance(item, plan.Page):
                await self._page(item)
            elif isinstance(item, plan.ChainExhausted):
                await self._exhausted(item)
            elif isinstance(item, plan.Breach):
                await self._breach(item)
            else:
                await self._management(item)
        # After paging, so nobody waits on a status page to be woken; set_severity adds new ones later.
        if self._state.paging_held:
            return  # the storm incident acts for it
        for action in self._policy.severity(self._state.severity).automatic_actions:
            if action not in self._state.automatic_actions_done and self._state.status != "resolved":
                self._state.automatic_actions_done.append(action)
                await self._automatic_action(action)

    def _resolve_quietly(self, item: plan.AutoResolve) -> None:
        state = self._state
        quiet = format_elapsed(workflow.now() - item.quiet_since)
        state.status = "resolved"
        state.resolved_by = "tocsin"
        state.resolved_at = workflow.now()
        state.resolution_summary = f"all {len(state.alerts)} alerts resolved and stayed quiet for {quiet}"
        state.next_escalation_at = None
        self._record("resolved", f"auto-resolved: {state.resolution_summary}")

    async def _page(self, page: plan.Page) -> None:
        step = self._policy.escalation_policies.primary_oncall[page.step]
        how = "manual escalation" if page.manual else f"attempt {page.attempt}/{step.retry_count}"
        plan.record_page(self._state, self._policy, page)
        message = f"[{self._state.severity}] {self._state.title} ({self._state.service}) — please acknowledge"
        route = Route(step.type, step.target, message)
        who = ""
        resolved = None
        if self._roster_targets:
            resolved = resolve_target(self._policy.roster, step.target, workflow.now())
            who = f" ({resolved.reason})" if resolved.kind != "unknown" else ""
            if not addresses(resolved, step.type):
                # Nobody to page here (an empty rotation, nobody with a phone): say so and move on at once.
                self._record("page", f"level {page.step + 1}: nobody to page via {step.type}{who}; next level now")
                self._state.escalation.attempt = step.retry_count
                self._state.escalation.next_at = workflow.now()
                self._publish()
                return
        self._record("page", f"level {page.step + 1}: paging {step.target} via {step.type} ({how}){who}")
        await self._deliver(f"page/{page.step}/{page.attempt}", route, resolved)
        self._publish()

    async def _exhausted(self, item: plan.ChainExhausted) -> None:
        plan.record_exhausted(self._state, item.manual)
        self._record("chain_exhausted", "primary on-call chain exhausted without acknowledgement")
        await self._tell_stakeholders("exhausted", "nobody acknowledged after the whole on-call chain was paged")

    async def _breach(self, item: plan.Breach) -> None:
        self._state.escalation.breaches.append(item.kind)
        what = "acknowledged" if item.kind == "response" else "mitigated"
        text = f"not {what} within {format_duration(item.target)} ({item.kind} target missed)"
        self._record("breach", text)
        await self._tell_stakeholders(f"breach/{item.kind}", text)

    async def _management(self, item: plan.Management) -> None:
        step = self._policy.escalation_policies.management_escalation[item.index]
        self._state.escalation.management_fired.append(item.index)
        self._record("management", f"management escalation via {step.type} to {step.target}")
        open_for = format_elapsed(workflow.now() - self._state.opened_at)
        message = f"[{self._state.severity}] {self._state.title} has been open for {open_for}"
        await self._deliver(f"management/{item.index}", Route(step.type, step.target, message))

    async def _automatic_action(self, action: str) -> None:
        route = automatic_action_route(action, self._state)
        if route.channel == "stakeholders":
            await self._tell_stakeholders(f"action/{action}", route.message)
            return
        ok = await self._deliver(f"action/{action}", route)
        self._record("action", f"{action}: {route.channel} {route.target}" + ("" if ok else " (failed)"))

    # --- visibility ------------------------------------------------------------------------------------

    def _record(self, kind: str, text: str, by: str | None = None) -> None:
        entry = TimelineEntry(at=workflow.now(), kind=kind, text=text, by=by)
        bounds.append_entry(self._state, entry, self._policy.limits.timeline_entries)
        workflow.set_current_details(details_markdown(self._state, self._policy))

    def _publish(self) -> None:
        """Keep the search attributes operators filter on in step with the state; upsert only changes."""
        state = self._state
        wanted: dict[str, object] = {
            sa.SEVERITY.name: state.severity,
            sa.STATUS.name: state.status,
            sa.SERVICE.name: state.service,
            sa.LEVEL.name: state.escalation_level,
        }
        if wanted != self._published:
            workflow.upsert_search_attributes(
                [
                    sa.SEVERITY.value_set(state.severity),
                    sa.STATUS.value_set(state.status),
                    sa.SERVICE.value_set(state.service),
                    sa.LEVEL.value_set(state.escalation_level),
                ]
            )
            self._published = wanted
