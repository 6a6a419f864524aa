"""The classes of cause beyond the seed's deployment rule, and the items each calls for (pure)."""

from __future__ import annotations

from tocsin.postmortem.cause_classes import remedies


def titles(words: str) -> list[str]:
    return [r.title for r in remedies(words)]


def test_an_operators_command_asks_for_safeguards_in_the_tool_and_an_audit_of_the_others() -> None:
    assert titles("a mistyped playbook command removed far more capacity than intended") == [
        "Add safeguards to the tool that made the change",
        "Audit other operational tools for the same missing safety checks",
    ]


def test_a_resource_run_out_names_the_resource_and_asks_for_profiling() -> None:
    assert titles("CPU at 100% on every PoP after the rules release")[0] == (
        "Protect CPU with a limit and an alert before it is exhausted"
    )
    assert titles("connection pool exhausted after the pool size was halved") == [
        "Protect connection pool with a limit and an alert before it is exhausted",
        "Add performance profiling of changes to the test suite",
    ]
    # Naming a resource is not enough: it must have run out.
    assert titles("memory use was normal throughout") == []


def test_a_failover_gone_wrong_asks_for_a_review_and_for_rehearsal() -> None:
    assert titles("a 43 s network partition made the orchestrator fail over primaries to another region") == [
        "Review automatic failover: what may be promoted across regions, and when",
        "Test failure assumptions with fault injection (chaos engineering)",
    ]


def test_words_of_no_class_call_for_nothing() -> None:
    assert titles("rolled back deploy 2041") == []
    assert titles("") == []
