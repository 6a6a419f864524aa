"""What every runbook test here shares: the worker's policy file (each module writes its own `policy_file`),
that policy loaded, settings pointing the worker at it, and the loopback stack the runbooks act on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.runbook_stack import Stack, running_stack
from tocsin.policy.loader import load_policy
from tocsin.policy.schema import Policy
from tocsin.settings import Settings


@pytest.fixture
def policy(policy_file: Path) -> Policy:
    return load_policy(policy_file)


@pytest.fixture
def settings(tmp_path: Path, policy_file: Path) -> Settings:
    # The worker plans and checks every run with this policy, never with one a caller sends.
    return Settings(home=tmp_path / "home", policy=policy_file)


@pytest.fixture
def stack() -> Iterator[Stack]:
    with running_stack() as running:
        yield running
