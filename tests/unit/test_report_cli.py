"""`tocsin report`'s command line without a server: bad input is exit 2 before anything connects, an
unwritable --out is one line and exit 1, and the summary prints one row per service and severity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tocsin.cli.common import CliError
from tocsin.cli.main import main
from tocsin.cli.report import print_summary, write_files
from tocsin.policy.schema import Policy
from tocsin.reporting.model import IncidentFacts, Report
from tocsin.reporting.summary import build_report

START = datetime(2025, 6, 2, 10, 0, tzinfo=UTC)


def _report(policy: Policy) -> Report:
    incidents = [
        IncidentFacts(
            key=f"{service}-{n}",
            title="t",
            service=service,
            severity="sev1",
            status="resolved",
            clock_start=START + timedelta(hours=n),
            acknowledged_at=START + timedelta(hours=n, seconds=mtta),
            resolved_at=START + timedelta(hours=n, seconds=600),
            mtta_seconds=mtta,
            mttr_seconds=600.0,
            escalation_depth=1,
            pages=[],
        )
        for n, (service, mtta) in enumerate([("checkout", 30.0), ("checkout", 90.0), ("api", 45.0)])
    ]
    return build_report(
        incidents, policy, since=START, until=START + timedelta(days=1), generated_at=START, limit=3, truncated=True
    )


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["report", "--since", "lately"], "--since: invalid duration 'lately'"),
        (["report", "--since", "0s"], "--since '0s': give a positive duration"),
    ],
)
def test_a_bad_window_is_exit_2_before_connecting(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The window is checked before the command connects: no server is needed to hear about a typo.
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("tocsin: ") and error in err, err


def test_a_limit_below_one_is_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--limit", "0"]) == 2
    assert "Invalid value for '--limit'" in capsys.readouterr().err


def test_an_unwritable_out_is_one_clear_error(tmp_path: Path, default_policy: Policy) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("a file, not a directory", encoding="utf-8")
    with pytest.raises(CliError, match="--out"):
        write_files(_report(default_policy), blocker, tmp_path)


def test_the_files_are_written(tmp_path: Path, default_policy: Policy) -> None:
    written = write_files(_report(default_policy), tmp_path / "new" / "dir", tmp_path)
    assert [p.name for p in written] == ["report.html", "report.csv", "report.json"]
    assert all(p.stat().st_size > 0 for p in written)


def test_the_summary_has_a_row_per_service_and_severity_and_one_for_all(
    default_policy: Policy, capsys: pytest.CaptureFixture[str]
) -> None:
    print_summary(_report(default_policy))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "3 incidents from 2025-06-02 10:00Z to 2025-06-03 10:00Z (the newest 3 only)"
    rows = [line.split() for line in lines if line.split()[:1] in (["api"], ["checkout"], ["*"])]
    # checkout: MTTA median of 30 s and 90 s is 1m 00s; p90 (2nd of 2) 1m 30s. All three: 45 s and 90 s.
    assert rows == [
        ["api", "sev1", "1", "45s", "45s", "10m", "00s", "10m", "00s"],
        ["checkout", "sev1", "2", "1m", "00s", "1m", "30s", "10m", "00s", "10m", "00s"],
        ["*", "*", "3", "45s", "1m", "30s", "10m", "00s", "10m", "00s"],
    ]
