"""Compile the workflow modules once per worker process, not once per workflow run.

Temporal's workflow sandbox re-imports a workflow's own modules (the `workflows` package; everything of
`tocsin` is passed through) for every workflow run it starts: each incident the worker caches, and each
one it replays after an eviction or a restart. Importing means compiling unless a `.pyc` file is found, and
PYTHONDONTWRITEBYTECODE=1, set in our image and on many machines, means none ever is: a profile of a
worker re-warming 600 incidents spent 9% of its time compiling the same eight source files again. Code
objects are immutable, so one compiled copy can serve every run; the module objects themselves (and so
each run's isolation) stay per run, as the sandbox wants.

The cache keeps what a file held when the worker first compiled it: a worker runs the code it started with,
even if the file changes under it (which is also what replay needs).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Sequence
from types import CodeType, ModuleType

# Workflow runs start on several threads at once.
_lock = threading.Lock()
_compiled: dict[str, CodeType] = {}


class _CompiledOnce(importlib.machinery.SourceFileLoader):
    def get_code(self, fullname: str) -> CodeType:
        with _lock:
            code = _compiled.get(self.path)
        if code is None:
            code = super().get_code(fullname)
            if code is None:  # only for a file with no source, which a SourceFileLoader never has
                raise ImportError(f"no code for {fullname}", name=fullname)
            with _lock:
                code = _compiled.setdefault(self.path, code)
        return code


class CompiledOnceFinder(importlib.abc.MetaPathFinder):
    """Finds modules of `packages` as the normal path finder does, loading them through the cache."""

    def __init__(self, packages: Sequence[str]) -> None:
        self.packages = frozenset(packages)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] not in self.packages:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return spec
        spec.loader = _CompiledOnce(spec.loader.name, spec.loader.path)
        return spec


def install(packages: Sequence[str] = ("workflows",)) -> None:
    """Put the finder first on sys.meta_path, once per process."""
    if not any(isinstance(f, CompiledOnceFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, CompiledOnceFinder(packages))


def compiled_files() -> list[str]:
    with _lock:
        return sorted(_compiled)
