"""The product's layers, held against its imports: configuration < policy schema < history contracts < domain
logic < adapters < orchestration < entry points. A module imports its own layer or lower, never higher, and
no import cycle exists, even one within a layer. docs/architecture.md draws the same picture.

The graph is read from the source (every `import`/`from` statement, at any depth, including those inside
functions and `TYPE_CHECKING` blocks), so a lazy import cannot hide an upward dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.paths import ROOT

PACKAGES = ("tocsin", "workflows", "activities", "worker")
LAYERS = ("config", "policy", "contracts", "domain", "adapters", "orchestration", "entry")

# Longest prefix wins. A module not matched is a test failure: every new module is placed on purpose.
PLACES: dict[str, str] = {
    "tocsin": "config",  # the package itself: its version and nothing else
    "tocsin.settings": "config",
    "tocsin.secret_settings": "config",
    "tocsin.state_dir": "config",
    "tocsin.addresses": "config",
    "tocsin.durations": "config",
    "tocsin.search_attributes": "config",
    "tocsin.sandboxed_templates": "config",
    "tocsin.bundled": "config",
    "tocsin.policy": "policy",
    "tocsin.runbook.schema": "policy",
    "tocsin.runbook.steps": "policy",
    "tocsin.runbook.registry": "policy",
    "tocsin.runbook.thresholds": "policy",
    "tocsin.runbook.errors": "policy",
    "tocsin.incident": "contracts",
    "tocsin.incident.contracts": "contracts",
    "tocsin.incident.updates": "contracts",
    "tocsin.heartbeat": "contracts",
    # Pure: reads an incident's timeline against the roster (`tocsin why`).
    "tocsin.incident.why": "domain",
    "tocsin.responders": "domain",
    "tocsin.responders.contracts": "contracts",
    "tocsin.storm.contracts": "contracts",
    "tocsin.maintenance.contracts": "contracts",
    # Pure: which window holds an incident now.
    "tocsin.maintenance": "domain",
    "tocsin.maintenance.client": "adapters",
    "tocsin.intake.contracts": "contracts",
    # Pure: the alerts file, the pages read back and their differences, the export's lines.
    "tocsin.simulate": "domain",
    # Starts the time-skipping server and the real workers: an entry point like worker/main.py.
    "tocsin.simulate.engine": "entry",
    "tocsin.runbook.contracts": "contracts",
    "tocsin.runbook.plan_contracts": "contracts",
    "tocsin.runbook.guard_contracts": "contracts",
    "tocsin.runbook.kubernetes": "contracts",
    "tocsin.postmortem.contracts": "contracts",
    "tocsin.postmortem.state": "contracts",
    # Pure decisions on contracts: escalation, triage and following are the policy applied to an incident.
    "tocsin.policy.escalation": "domain",
    "tocsin.policy.triage": "domain",
    "tocsin.policy.following": "domain",
    "tocsin.policy.actions": "domain",
    "tocsin.storm": "domain",
    "tocsin.storm.consolidation": "domain",
    "tocsin.incident.bounds": "domain",
    "tocsin.roster": "domain",
    "tocsin.detection": "domain",
    "tocsin.detection.contracts": "contracts",
    "tocsin.detection.prometheus_rules": "domain",
    "tocsin.intake": "domain",
    "tocsin.runbook": "domain",
    "tocsin.postmortem": "domain",
    # `tocsin report`: pure figures from incidents' records; only `gather` talks to Temporal.
    "tocsin.reporting": "domain",
    "tocsin.reporting.gather": "adapters",
    # Adapters: everything that talks to the world (Temporal's client included).
    "tocsin.client": "adapters",
    "tocsin.devserver": "adapters",
    "tocsin.incident.client": "adapters",
    "tocsin.responders.dispatch": "adapters",
    "tocsin.detection.schedule": "adapters",
    "tocsin.prometheus": "adapters",
    "tocsin.channels": "adapters",
    "tocsin.intake.coalesce": "adapters",
    "tocsin.intake.sender": "adapters",
    "tocsin.intake.ingest": "adapters",
    "tocsin.runbook.kubernetes_api": "adapters",
    "tocsin.runbook.kubeconfig": "adapters",
    "tocsin.runbook.http_action": "adapters",
    "tocsin.runbook.verify_query": "adapters",
    "tocsin.postmortem.llm": "adapters",
    "tocsin.postmortem.publish": "adapters",
    "tocsin.postmortem.artifacts": "adapters",
    "tocsin.postmortem.sources": "adapters",
    "activities": "adapters",
    "workflows": "orchestration",
    "worker": "entry",
    "tocsin.cli": "entry",
    "tocsin.receiver": "entry",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The product modules this one imports (a `from pkg import mod` names the submodule when there is one)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return {m for m in found if m in known and m != name}


def _layer(module: str) -> str:
    matches = [prefix for prefix in PLACES if module == prefix or module.startswith(prefix + ".")]
    if not matches:
        raise LookupError(f"{module} has no layer: place it in PLACES (tests/unit/test_layers.py)")
    return PLACES[max(matches, key=len)]


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def test_every_module_has_a_layer() -> None:
    unplaced = []
    for module in _modules():
        try:
            _layer(module)
        except LookupError as err:
            unplaced.append(str(err))
    assert unplaced == []


def test_no_module_imports_a_higher_layer() -> None:
    upward = [
        f"{module} ({_layer(module)}) imports {target} ({_layer(target)})"
        for module, targets in sorted(_graph().items())
        for target in sorted(targets)
        if LAYERS.index(_layer(target)) > LAYERS.index(_layer(module))
    ]
    assert upward == []


def test_the_import_graph_has_no_cycles() -> None:
    graph = _graph()
    # A package's __init__ importing its own submodules is how a package names its public face, not a cycle.
    edges = {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in graph.items()}
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*trail[trail.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert cycles == []


@pytest.mark.parametrize("package", PACKAGES)
def test_no_product_module_is_over_300_lines(package: str) -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in sorted((ROOT / package).rglob("*.py"))
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 300
    }
    assert long == {}
