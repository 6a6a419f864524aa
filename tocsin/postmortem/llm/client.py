"""Root-cause analysis by an LLM, through any OpenAI-compatible chat completions endpoint (OpenAI, Ollama,
vLLM, llama.cpp's server), with the built-in analyzer as the floor.

An invalid answer is sent back once with the validation error (tocsin.postmortem.llm.answer); invalid twice,
or any API failure (4xx, 5xx, timeout, unreachable), and the built-in analyzer answers instead, its notes
saying why in words safe for a report (`_why`). The API key is never logged nor put in a note.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import re
from collections.abc import Mapping
from datetime import date
from urllib.parse import urlsplit

from tocsin.postmortem.builtin_analyzer import builtin_analysis
from tocsin.postmortem.contracts import Analysis, AnalysisRequest
from tocsin.postmortem.llm.answer import InvalidAnswer, parse_answer, to_analysis
from tocsin.postmortem.llm.config import (
    DEFAULT_TIMEOUT,
    KEY_VARIABLE,
    MODEL_VARIABLE,
    LlmConfig,
    LlmConfigError,
    llm_config,
)
from tocsin.postmortem.llm.prompt import messages

# openai is imported only where a call is made (llm_analysis, _why): importing it costs ~45 MB of RSS and ~1,000
# modules (measured), which every worker paid at start although most installations configure no LLM (issue #12).

log = logging.getLogger("tocsin.postmortem.llm")


class LlmFailed(Exception):
    """The LLM gave no usable analysis; the message says why in words safe for a report."""


_SAFE_CODE = re.compile(r"^[A-Za-z0-9_.:-]{1,60}$")


def _why(err: Exception, config: LlmConfig) -> str:
    """An API failure in words for the report: status, type and code, never the server's message (an
    authentication error may quote the key back)."""
    import openai  # already loaded by llm_analysis, the only caller: see the note on imports at the top

    if isinstance(err, openai.APITimeoutError):
        return f"the endpoint did not answer within {config.timeout:g} s"
    if isinstance(err, openai.APIConnectionError):
        parts = urlsplit(config.base_url)
        host = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
        return f"could not reach the endpoint at {host}"
    if isinstance(err, openai.APIStatusError):
        details = [str(v) for v in (err.type, err.code) if v and _SAFE_CODE.match(str(v)) and str(v) != config.api_key]
        extra = f" ({', '.join(dict.fromkeys(details))})" if details else ""
        hint = f"; check {KEY_VARIABLE}" if err.status_code in (401, 403) else ""
        return f"the endpoint answered HTTP {err.status_code}{extra}{hint}"
    if isinstance(err, openai.APIError):
        return "the endpoint's answer was not a chat completion"
    return f"unexpected {type(err).__name__}"


async def llm_analysis(request: AnalysisRequest, config: LlmConfig, *, today: date) -> Analysis:
    """The LLM's analysis, validated and filtered; LlmFailed when there is none (the caller falls back)."""
    # Here, not at module level: ~45 MB only once an LLM is configured (the note at the top). The first import
    # takes about a second, so it runs in a thread rather than hold up the worker's event loop meanwhile.
    await asyncio.to_thread(importlib.import_module, "openai")
    import openai

    conversation, omitted = messages(request)
    try:
        async with openai.AsyncOpenAI(
            api_key=config.api_key, base_url=config.base_url, max_retries=0, timeout=config.timeout
        ) as client:
            for attempt in (1, 2):
                completion = await client.chat.completions.create(
                    model=config.model,
                    messages=conversation,
                    response_format={"type": "json_object"},
                    temperature=0,
                    max_tokens=config.max_tokens,
                )
                choice = completion.choices[0] if completion.choices else None
                content = choice.message.content if choice else None
                try:
                    answer = parse_answer(content, choice.finish_reason if choice else None)
                    break
                except InvalidAnswer as err:
                    if attempt == 2:
                        raise LlmFailed(f"its answer was invalid twice ({err})") from None
                    log.info("LLM answer invalid, asking again once: %s", err)
                    conversation = [
                        *conversation,
                        {"role": "assistant", "content": (content or "")[:8000]},
                        {
                            "role": "user",
                            "content": f"Your answer was not valid: {err}. Answer again with only the JSON "
                            "object, exactly in the schema of the instructions, citing only ids of the "
                            "<evidence> block.",
                        },
                    ]
    except LlmFailed:
        raise
    except Exception as err:  # any API failure means the built-in analyzer; never the key in the reason
        why = _why(err, config)
        if len(config.api_key) >= 8:  # belt and braces; a placeholder key ("ollama") is no secret to mask
            why = why.replace(config.api_key, "[redacted]")
        raise LlmFailed(why) from None
    analysis = to_analysis(answer, request, config.model, today)
    if omitted:
        analysis.notes.append(f"{omitted} of {len(request.evidence)} evidence items were not sent to the model")
    if attempt == 2:
        analysis.notes.append("the model's first answer was invalid; its second was used")
    return analysis


async def analyze(
    request: AnalysisRequest, env: Mapping[str, str], *, today: date, llm_timeout: float = DEFAULT_TIMEOUT
) -> Analysis:
    """The analysis the post-mortem shows: the LLM's when configured and it answers well, else the built-in
    analyzer's, its notes saying why. Never raises for an LLM problem."""
    try:
        config = llm_config(env, llm_timeout)
    except LlmConfigError as err:
        return _fallback(request, f"LLM not used: {err}")
    if config is None:
        return _fallback(request, f"no LLM configured ({MODEL_VARIABLE} is not set): built-in analysis", warn=False)
    try:
        analysis = await llm_analysis(request, config, today=today)
    except LlmFailed as err:
        return _fallback(request, f"LLM analysis with {config.model} failed: {err}; the built-in analyzer was used")
    log.info(
        "post-mortem %s analysed by %s (confidence %.2f)%s",
        request.key,
        analysis.analyzer,
        analysis.confidence,
        f": {'; '.join(analysis.notes)}" if analysis.notes else "",
    )
    return analysis


def _fallback(request: AnalysisRequest, why: str, *, warn: bool = True) -> Analysis:
    if warn:
        log.warning("post-mortem %s: %s", request.key, why)
    analysis = builtin_analysis(request)
    analysis.notes.insert(0, why)
    return analysis
