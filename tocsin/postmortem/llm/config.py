"""The LLM's configuration, read from the worker's environment at each analysis (so a rotated secret file is
picked up):

| variable | meaning |
|---|---|
| `TOCSIN_LLM_MODEL` | the model; unset: no LLM, the built-in analyzer (the analysis says so) |
| `OPENAI_API_KEY` (or `OPENAI_API_KEY_FILE`) | the key; any non-empty string for an endpoint without keys (Ollama) |
| `OPENAI_BASE_URL` | the endpoint, e.g. `http://127.0.0.1:11434/v1` (default `https://api.openai.com/v1`) |
| `TOCSIN_LLM_MAX_TOKENS` | the most the model may answer per call (default 4000, 256 to 32000): bounds cost and time |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tocsin.addresses import is_http_url
from tocsin.secret_settings import SecretSettingError, read_setting

MODEL_VARIABLE = "TOCSIN_LLM_MODEL"
MAX_TOKENS_VARIABLE = "TOCSIN_LLM_MAX_TOKENS"
# An analysis is a few paragraphs of JSON; an answer that runs on is cut (finish_reason "length") and retried.
DEFAULT_MAX_TOKENS = 4000
KEY_VARIABLE = "OPENAI_API_KEY"
URL_VARIABLE = "OPENAI_BASE_URL"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_TIMEOUT = 60.0


class LlmConfigError(ValueError):
    """The LLM is configured wrongly; the message names variables and files, never a value."""


@dataclass(frozen=True)
class LlmConfig:
    model: str
    base_url: str
    api_key: str = field(repr=False)
    timeout: float = DEFAULT_TIMEOUT
    max_tokens: int = DEFAULT_MAX_TOKENS


def _secret(env: Mapping[str, str], name: str) -> str | None:
    try:
        return read_setting(env, name)
    except SecretSettingError as err:
        raise LlmConfigError(str(err)) from None


def llm_config(env: Mapping[str, str], timeout: float = DEFAULT_TIMEOUT) -> LlmConfig | None:
    """The LLM's configuration; None when `TOCSIN_LLM_MODEL` is unset (the built-in analyzer then)."""
    model = (env.get(MODEL_VARIABLE) or "").strip()
    if not model:
        return None
    key = _secret(env, KEY_VARIABLE)
    if not key:
        raise LlmConfigError(f"{MODEL_VARIABLE} is set but {KEY_VARIABLE} is not (any non-empty value for Ollama)")
    base_url = (env.get(URL_VARIABLE) or "").strip() or DEFAULT_BASE_URL
    if not is_http_url(base_url):
        raise LlmConfigError(f"{URL_VARIABLE} is not an absolute http(s) URL")
    raw = (env.get(MAX_TOKENS_VARIABLE) or "").strip() or str(DEFAULT_MAX_TOKENS)
    if not raw.isdigit() or not 256 <= int(raw) <= 32_000:
        raise LlmConfigError(f"{MAX_TOKENS_VARIABLE} must be a whole number from 256 to 32000")
    return LlmConfig(model=model, base_url=base_url.rstrip("/"), api_key=key, timeout=timeout, max_tokens=int(raw))
