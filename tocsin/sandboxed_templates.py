"""Templates Tocsin renders for people: looked up in two places only, always rendered in Jinja's sandbox.

Where a template is found, first match wins, and nowhere else:

1. `$TOCSIN_HOME/templates/<name>`: an operator's copy replaces the built-in one. The state dir is owner-only
   (tocsin.state_dir), so only whoever runs Tocsin can put one there.
2. The built-in templates shipped inside the package (tocsin.bundled.TEMPLATES), in a checkout and a wheel alike.

Never the working directory: a `templates/` wherever Tocsin happens to be started would otherwise replace a
public page. Rendering is in the immutable sandbox (no `__class__`, `__mro__` or other private attributes, no
mutating calls) with StrictUndefined, so even an operator's template can only format what it is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from tocsin.bundled import TEMPLATES

BUILTIN_DIRS = (TEMPLATES,)


class TemplateMissing(FileNotFoundError):
    """A built-in template is in none of BUILTIN_DIRS: the installation is incomplete."""


def builtin_dir(names: Sequence[str], candidates: Sequence[Path] = BUILTIN_DIRS) -> Path:
    """The first built-in templates directory that holds every one of `names`."""
    for candidate in candidates:
        if all((candidate / name).is_file() for name in names):
            return candidate
    where = " or ".join(str(c) for c in candidates)
    raise TemplateMissing(f"{', '.join(names)} not found in {where}")


def search_path(home: Path | None, builtin: Path) -> list[Path]:
    """The override directory (when there is a home), then the built-in one."""
    return ([home / "templates"] if home is not None else []) + [builtin]


def sandboxed_environment(home: Path | None, builtin: Path, **options: Any) -> ImmutableSandboxedEnvironment:
    """A sandboxed environment over `search_path(home, builtin)`. `options` are Jinja's (autoescape, finalize,
    trim_blocks...); undefined names raise instead of rendering as nothing."""
    loader = jinja2.FileSystemLoader([str(p) for p in search_path(home, builtin)])
    return ImmutableSandboxedEnvironment(loader=loader, undefined=jinja2.StrictUndefined, **options)
