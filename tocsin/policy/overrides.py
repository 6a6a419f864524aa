"""The overrides file: on-call overrides that `tocsin oncall override` writes, merged into the policy's roster.

It lives at `$TOCSIN_HOME/overrides.yaml` unless a command says otherwise, and looks like the roster's own
`overrides:` list:

    overrides:
      - rotation: primary_oncall
        by: dave
        covering: alice          # omit to cover the whole rotation
        from: '2025-03-03T09:00:00+01:00'
        until: '2025-03-05T09:00:00+01:00'
        reason: alice at the dentist

The hook for whoever loads a policy: `load_policy_with_overrides(policy_path, overrides_path)` (strict: any
problem is a PolicyError naming the file and line), or `merge_roster_overrides(policy, path)` (lenient:
overrides that no longer fit the policy are dropped with a warning, so a stale override cannot stop an
incident from opening). `load_policy(path)` itself is unchanged and reads no overrides.

File I/O: not for workflow code. Workflows get the merged roster inside the policy snapshot.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tocsin.policy.loader import PolicyError, UniqueKeyLoader, format_error, load_policy, node_at
from tocsin.policy.roster_schema import RosterOverride
from tocsin.policy.schema import Policy
from tocsin.settings import Settings

FILE_NAME = "overrides.yaml"
HEADER = (
    "# On-call overrides, written by `tocsin oncall override` (hand edits are fine; they are validated).\n"
    "# Merged after the policy's roster.overrides when the policy is loaded: of the overrides that hold at\n"
    "# once, the one that starts latest wins, the one listed last on a tie.\n"
)


class OverridesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    overrides: list[RosterOverride] = Field(default_factory=list)


def default_overrides_path(settings: Settings) -> Path:
    return settings.home / FILE_NAME


def load_roster_overrides(path: str | Path, policy: Policy | None = None) -> list[RosterOverride]:
    """The file's overrides; none if it does not exist. With `policy`, each is checked against its roster.

    Raises PolicyError, `file:line: overrides.N.field: problem`, like the policy loader.
    """
    parsed, root = _parse(Path(path))
    if policy is not None:
        for i, override in enumerate(parsed):
            problems = policy.roster.override_problems(override)
            if problems:
                field, problem = problems[0]
                raise PolicyError(f"{_where(path, root, ['overrides', i, field])}: overrides.{i}.{field}: {problem}")
    return parsed


def load_policy_with_overrides(policy_path: str | Path, overrides_path: str | Path | None) -> Policy:
    """The policy, with the overrides file's entries after its roster's own. Strict: any problem raises."""
    policy = load_policy(policy_path)
    if overrides_path is None:
        return policy
    return policy.with_overrides(load_roster_overrides(overrides_path, policy))


def merge_roster_overrides(policy: Policy, path: str | Path) -> tuple[Policy, list[str]]:
    """Lenient merge for the paging path: overrides that do not fit the policy are left out, with a warning
    each (an unreadable file is one warning and no overrides)."""
    try:
        parsed, root = _parse(Path(path))
    except PolicyError as err:
        return policy, [f"{err} (overrides file ignored)"]
    kept: list[RosterOverride] = []
    warnings: list[str] = []
    for i, override in enumerate(parsed):
        problems = policy.roster.override_problems(override)
        if problems:
            field, problem = problems[0]
            where = _where(path, root, ["overrides", i, field])
            warnings.append(f"{where}: overrides.{i}.{field}: {problem} (override ignored)")
        else:
            kept.append(override)
    return policy.with_overrides(kept), warnings


def add_override(policy: Policy, path: str | Path, override: RosterOverride) -> bool:
    """Append `override` to the file if it fits the policy; False if it is already there.

    The file is rewritten whole, atomically, under a lock: a bad override, a broken file or a crash
    half-way changes nothing.
    """
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    with _locked(file):
        existing = load_roster_overrides(file, policy)
        if override in existing:
            return False
        policy.with_overrides([override])  # ValueError, naming the problem, if it does not fit
        _write_atomically(file, render_overrides([*existing, override]))
    return True


def render_overrides(overrides: list[RosterOverride]) -> str:
    entries = [o.model_dump(mode="json", by_alias=True, exclude_defaults=True) for o in overrides]
    return HEADER + yaml.safe_dump({"overrides": entries}, sort_keys=False, allow_unicode=True, width=120)


def _parse(file: Path) -> tuple[list[RosterOverride], yaml.Node | None]:
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [], None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{file}: cannot read: {exc}") from None
    try:
        root = yaml.compose(text)
        data: Any = yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{file}:{mark.line + 1}" if mark else str(file)
        raise PolicyError(f"{where}: not valid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{file}: not valid YAML: {exc}") from None
    if data is None:
        return [], root
    if not isinstance(data, dict):
        raise PolicyError(f"{file}: (top level): expected a mapping with 'overrides', got {type(data).__name__}")
    try:
        return OverridesFile.model_validate(data).overrides, root
    except ValidationError as exc:
        raise PolicyError(format_error(str(file), root, data, exc)) from None


def _where(path: str | Path, root: yaml.Node | None, at: list[str | int]) -> str:
    node = node_at(root, at)
    return f"{path}:{node.start_mark.line + 1}" if node is not None else str(path)


@contextlib.contextmanager
def _locked(file: Path) -> Iterator[None]:
    """One writer at a time: two people adding overrides at once both get theirs."""
    with open(file.with_name(f".{file.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_atomically(file: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private; keep the mode the file had, or an ordinary one for a new file.
        os.chmod(tmp, file.stat().st_mode & 0o777 if file.exists() else 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, file)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def load_paging_policy(path: str | Path, home: Path) -> tuple[Policy, list[str]]:
    """The policy new incidents open under: the file, plus the on-call overrides `tocsin oncall override`
    wrote to `$TOCSIN_HOME/overrides.yaml`. A stale override is left out with a warning, never an outage."""
    return merge_roster_overrides(load_policy(path), home / "overrides.yaml")
