"""The worker does not load the LLM and GitHub clients until it uses them (issue #12: worker memory).

`openai` (~45 MB of RSS, ~1,000 modules) and PyGithub (`github`, ~32 MB, ~500 modules) are imported inside the
functions that call them (tocsin.postmortem.llm, tocsin.channels.github, tocsin.postmortem.publish,
tocsin.postmortem.sources.changes), so a worker without an LLM or GitHub configured never pays for them. A
module-level import anywhere in what `worker.main` imports would bring them back: this test runs a fresh
interpreter, since this one may have imported them already for other tests.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.paths import ROOT

LAZY = ("openai", "github")


def test_importing_the_worker_loads_neither_openai_nor_pygithub() -> None:
    probe = f"import json, sys, worker.main; print(json.dumps(sorted(m for m in {LAZY!r} if m in sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == [], f"importing worker.main loaded {loaded}: import them where they are used"
