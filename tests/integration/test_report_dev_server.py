"""`tocsin report` against the real product: a few incidents triggered, acknowledged and resolved through the
CLI on a dev server, then the report's MTTA and MTTR checked against each incident's own timestamps (as
`tocsin incidents show KEY --json` gives them), its files written, and its HTML viewed in Chromium."""

from __future__ import annotations

import csv
import json
import math
import signal
import statistics
import time
from collections import Counter
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from tests.integration.test_report_browser import view_in_browser
from tests.support.paths import ROOT
from tests.support.product import Product, ok, wait_for
from tocsin.policy.loader import load_policy
from tocsin.reporting.charts import duration_text

CHECKOUT = ("--service", "checkout", "--label", "alertname=ServiceAvailabilityLow", "--label", "environment=prod")


def _seconds(state: dict[str, Any], field: str) -> float:
    """`field` - the incident's clock start (its first alert), from the incident's own record."""
    start = datetime.fromisoformat(state["first_alert_at"] or state["opened_at"])
    return (datetime.fromisoformat(state[field]) - start).total_seconds()


def _nearest_rank_p90(values: list[float]) -> float:
    return sorted(values)[math.ceil(round(0.9 * len(values), 9)) - 1]


def test_report_matches_the_incidents_own_timestamps(tmp_path: Path) -> None:
    product = Product(tmp_path / "home")
    try:
        product.start()
        keys = [
            product.trigger(*CHECKOUT, "--key", "report-checkout-1"),
            product.trigger(*CHECKOUT, "--key", "report-checkout-2"),
            product.trigger(
                "--service", "search", "--severity", "sev3", "--title", "Search slow", "--key", "report-search-1"
            ),
        ]
        for key in keys[:2]:
            wait_for(f"the first page of {key}", partial(product.pages, key))
        # Acknowledged and resolved a second apart each: every incident has its own MTTA and MTTR.
        for key in keys:
            ok(product.tocsin("ack", key, "--by", "bob"))
            time.sleep(1.0)
        for key in keys:
            ok(product.tocsin("resolve", key, "--by", "carol", "--summary", "fixed"))

        out = tmp_path / "report"

        def report() -> dict[str, Any] | None:
            done = ok(product.tocsin("report", "--since", "1h", "--out", str(out), "--json"))
            found: dict[str, Any] = json.loads(done.stdout)
            return found if len(found["incidents"]) == len(keys) else None

        found = wait_for("all three incidents in `tocsin report`", report)
        by_key = {i["key"]: i for i in found["incidents"]}
        expected: dict[str, tuple[float, float]] = {}
        for key in keys:
            state = product.show(key)
            expected[key] = (_seconds(state, "acknowledged_at"), _seconds(state, "resolved_at"))
            assert (by_key[key]["mtta_seconds"], by_key[key]["mttr_seconds"]) == expected[key], (key, state)
            assert by_key[key]["clock_start"].startswith(state["first_alert_at"][:19]), (key, state)

        mttas = [expected[k][0] for k in keys]
        mttrs = [expected[k][1] for k in keys]
        overall = found["overall"]
        assert overall["mtta"] == {"count": 3, "median_seconds": statistics.median(mttas), "p90_seconds": max(mttas)}
        assert overall["mttr"]["median_seconds"] == statistics.median(mttrs)
        assert overall["mttr"]["p90_seconds"] == _nearest_rank_p90(mttrs) == max(mttrs)
        rows = {(r["service"], r["severity"]): r for r in found["by_service_severity"]}
        checkout = rows[("checkout", "sev1")]
        assert checkout["incidents"] == 2
        assert checkout["mtta"]["median_seconds"] == statistics.median(mttas[:2])
        assert rows[("search", "sev3")]["mttr"]["median_seconds"] == mttrs[2]
        # Pages per person against what the channels were handed (the outbox): every PagerDuty, phone or SMS
        # delivery to a person except follow-ups of a page already sent, by the roster's owner of the address.
        roster = load_policy(ROOT / "policies" / "default.yaml").roster.people
        owner = {p.pagerduty: pid for pid, p in roster.items()} | {p.phone: pid for pid, p in roster.items()}
        handed = Counter(
            owner.get(line["target"], line["target"])
            for line in product.outbox()
            if line["channel"] in ("pagerduty", "phone", "sms") and "/sync/" not in line["id"]
        )
        assert {p["person"]: p["pages"] for p in found["people"]} == dict(handed)
        assert all(p["timezone"] == roster[p["person"]].timezone for p in found["people"])

        html = (out / "report.html").read_text(encoding="utf-8")
        assert html.count("<svg") >= 2
        assert [r["key"] for r in csv.DictReader((out / "report.csv").open(encoding="utf-8"))] == keys
        assert json.loads((out / "report.json").read_text(encoding="utf-8")) == found
        figures = [duration_text(overall["mtta"]["median_seconds"]), duration_text(overall["mtta"]["p90_seconds"])]
        view_in_browser(out / "report.html", figures)

        table = ok(product.tocsin("report", "--since", "1h")).stdout
        lines = {tuple(line.split()[:3]) for line in table.splitlines()}
        assert {("checkout", "sev1", "2"), ("search", "sev3", "1"), ("*", "*", "3")} <= lines, table
        assert duration_text(overall["mtta"]["median_seconds"]) in table, table
        product.stop_cleanly(signal.SIGTERM)
    finally:
        product.kill()
