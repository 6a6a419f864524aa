"""Which gathered metric series the responders' words name, so the series can agree (or not) with their cause. Pure.

Two kinds of series answer a stated cause:

- the service's SLIs, named as people say them: "error rate" / "5xx" (error_rate), "latency" / "p95"
  (latency_p95), "availability" / "outage" (availability), or a series' own name spaced ("index capacity");
- saturation: a resource running out is what most causes are about ("exhausted CPU", "connection pool
  exhausted", "queue backed up"). A series belongs to a saturation family when a token of its name (split at
  '_', '-', ':' and '.') is one of the family's name tokens, and the words name the family when they contain one
  of its words. The families: CPU; memory; pool/connection usage; queue depth; disk; capacity (hosts or
  instances in service against those required).

The rule is a pairing, not a guess: the words must name the family AND the series' name must be of it; a CPU
series never agrees with "the pool ran out", and words naming no family leave saturation series out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tocsin.postmortem.contracts import SeriesSummary

# What people call an SLI: its name, spaced ("error rate"), and its usual synonyms.
SLI_WORDS: dict[str, tuple[str, ...]] = {
    "error_rate": ("error rate", "errors", "5xx", "error_rate"),
    "latency_p95": ("latency", "p95", "response time"),
    "availability": ("availability", "outage", "unavailable"),
}


@dataclass(frozen=True)
class Family:
    name: str
    words: re.Pattern[str]  # what the responders' words say
    tokens: frozenset[str]  # what a series' name is made of


SATURATION: tuple[Family, ...] = (
    Family("cpu", re.compile(r"\bcpus?\b|\bprocessor", re.I), frozenset({"cpu", "cpus", "processor"})),
    Family(
        "memory",
        re.compile(r"\bmemory\b|\bout of memory\b|\boom\w*|\bheap\b|\brss\b", re.I),
        frozenset({"memory", "mem", "heap", "rss", "oom"}),
    ),
    Family(
        "pool",
        re.compile(r"\bpool\b|\bconnections\b|\bconnection (limit|count|slots?)\b|\bmax_connections\b", re.I),
        frozenset({"pool", "connections", "connection", "conns", "conn"}),
    ),
    Family(
        "queue",
        re.compile(r"\bqueue\w*|\bbacklog\w*|\bconsumer lag\b", re.I),
        frozenset({"queue", "queued", "backlog", "depth"}),
    ),
    Family(
        "disk",
        re.compile(r"\bdisks?\b|\bstorage\b|\binodes?\b|\bfilesystem\b|\bvolume full\b", re.I),
        frozenset({"disk", "disks", "storage", "inodes", "filesystem", "fs"}),
    ),
    Family("capacity", re.compile(r"\bcapacity\b", re.I), frozenset({"capacity", "hosts", "instances"})),
)

_NAME_SPLIT = re.compile(r"[_\-:.]+")


def saturation_family(series_name: str) -> Family | None:
    """The saturation family a series' name belongs to ('cpu_utilization' → cpu), or None."""
    tokens = {t for t in _NAME_SPLIT.split(series_name.lower()) if t}
    return next((f for f in SATURATION if f.tokens & tokens), None)


def series_named(words: str, series: list[SeriesSummary]) -> list[SeriesSummary]:
    """The series the words name: SLIs by their words or spaced names, saturation series by their family."""
    lowered = words.lower()
    named = {n for n, synonyms in SLI_WORDS.items() if any(s in lowered for s in synonyms)}
    named |= {s.name for s in series if s.name.replace("_", " ") in lowered}
    for s in series:
        family = saturation_family(s.name)
        if family is not None and family.words.search(words):
            named.add(s.name)
    return [s for s in series if s.name in named]
