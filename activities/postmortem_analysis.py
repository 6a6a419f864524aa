"""The post-mortem's root-cause analysis activity: the LLM when configured, else (or when it fails) the
built-in analyzer. It never fails for an LLM problem: the analysis' notes say what happened instead.

The environment is read at each call (tocsin.postmortem.llm documents the variables), so a rotated
`OPENAI_API_KEY_FILE` needs no worker restart. Two LLM calls at most (one retry for an invalid answer), each
bounded by `timeout`: the workflow's start-to-close timeout must exceed twice that.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime

from temporalio import activity

from tocsin.postmortem.contracts import Analysis, AnalysisRequest
from tocsin.postmortem.llm.client import analyze
from tocsin.postmortem.llm.config import DEFAULT_TIMEOUT


class AnalysisActivities:
    def __init__(self, env: Mapping[str, str] | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._env = env
        self._timeout = timeout

    @activity.defn(name="postmortem_analyze")
    async def analyze(self, request: AnalysisRequest) -> Analysis:
        env = os.environ if self._env is None else self._env
        return await analyze(request, env, today=datetime.now(UTC).date(), llm_timeout=self._timeout)
