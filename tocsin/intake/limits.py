"""What a received alert may hold, as pydantic types: every limit triage and Temporal enforce further on.

A payload that breaks one of them must be refused here, with its field path, before anything reaches
Temporal: past this point a refusal would come after other keys of the same payload were already signalled,
and as a 5xx its sender would retry forever. The limits, and where each comes from:

- `service` label: at most SERVICE_MAX (200) characters, triage's own bound (TriggerRequest), and at most
  KEYWORD_BYTES_MAX (2,048) bytes as Temporal measures a search attribute value (the JSON-escaped string:
  an emoji counts 12 bytes, so 200 of them are refused by the server). `severity` is held to the same.
- `alertname` label: at most ALERTNAME_MAX (200) characters; it makes the incident key and title.
- Titles: a summary at most TITLE_MAX (1,024, PagerDuty's own summary limit), a description that stands in
  for it at most DESCRIPTION_MAX (4,096). The incident title is cut to 300 characters either way; these
  bounds refuse what is plainly not a title rather than keep a cut piece of it.
- Control characters: none of U+0000..U+001F in label names and values, annotation names or fingerprints;
  free text (annotation values, summaries) may hold tab, newline and carriage return, nothing else of them.
  A NUL cuts strings short in C-based stores and tools, the others garble logs and chat messages.
- Sizes that bound allocation (label count, name and value lengths, alerts per payload): see below; one
  alert's labels together at most LABELS_TOTAL_MAX (16,384) characters, since they travel with its incident.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from tocsin.policy.triage import SERVICE_MAX

MAX_ALERTS = 1000  # per payload; Alertmanager's `max_alerts` should be set to at most this
MAX_LABELS = 256  # per label or annotation set
MAX_NAME = 1024  # label and annotation names
MAX_LABEL_VALUE = 10_000
# All of one alert's label names and values together (Prometheus' labels are short; this is generous).
LABELS_TOTAL_MAX = 16_384
MAX_TEXT = 65_536  # annotation values, URLs
MAX_FINGERPRINT = 200  # NormalizedAlert.fingerprint
ALERTNAME_MAX = 200
TITLE_MAX = 1024  # PagerDuty's summary limit, used for every summary
DESCRIPTION_MAX = 4096
# Temporal's default `limit.searchAttributeSizeOfValue`, measured on the JSON-escaped value.
KEYWORD_BYTES_MAX = 2048

_CONTROL = re.compile(r"[\x00-\x1f]")
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # tab, newline, carriage return allowed


def _refusing(pattern: re.Pattern[str]) -> Callable[[str], str]:
    def check(value: str) -> str:
        found = pattern.search(value)
        if found is not None:
            raise PydanticCustomError(
                "control_character",
                "String should not contain control characters (U+{code} at position {position})",
                {"code": f"{ord(found.group()):04X}", "position": found.start()},
            )
        return value

    return check


# Annotated markers: PLAIN for names and label values, FREE_TEXT for what people read.
PLAIN = AfterValidator(_refusing(_CONTROL))
FREE_TEXT = AfterValidator(_refusing(_CONTROL_IN_TEXT))


def _keyword_size(value: str) -> str:
    size = len(json.dumps(value))  # ensure_ascii, as the server counts: é is 6 bytes, an emoji 12
    if size > KEYWORD_BYTES_MAX:
        raise PydanticCustomError(
            "keyword_too_large",
            "String should be at most {limit} bytes as a Temporal search attribute, not {size}",
            {"limit": KEYWORD_BYTES_MAX, "size": size},
        )
    return value


Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME), PLAIN]
LabelValue = Annotated[str, StringConstraints(max_length=MAX_LABEL_VALUE), PLAIN]
AlertName = Annotated[str, StringConstraints(min_length=1, max_length=ALERTNAME_MAX), PLAIN]
# A label value that becomes the incident's service (and a search attribute).
ServiceName = Annotated[str, StringConstraints(max_length=SERVICE_MAX), PLAIN, AfterValidator(_keyword_size)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT), FREE_TEXT]
Title = Annotated[str, StringConstraints(max_length=TITLE_MAX), FREE_TEXT]
Description = Annotated[str, StringConstraints(max_length=DESCRIPTION_MAX), FREE_TEXT]
Fingerprint = Annotated[str, StringConstraints(max_length=MAX_FINGERPRINT), PLAIN]
Annotations = Annotated[dict[Name, Text], Field(max_length=MAX_LABELS)]
LabelSet = Annotated[dict[Name, LabelValue], Field(max_length=MAX_LABELS)]


class _OpenSet(BaseModel):
    """A label or annotation set: a few names with their own bounds, any others as extra string values."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _bounded(cls, data: Any) -> Any:
        if isinstance(data, dict) and len(data) > MAX_LABELS:
            raise ValueError(f"at most {MAX_LABELS} labels")
        return data

    def as_dict(self) -> dict[str, str]:
        """Only what the sender set: a declared name it left out is not a label with an empty value."""
        named = {name: getattr(self, name) for name in type(self).model_fields if name in self.model_fields_set}
        return {**named, **(self.__pydantic_extra__ or {})}


class Labels(_OpenSet):
    """Labels as triage reads them; `alertname` may be missing (an alert from the detector always has it)."""

    alertname: AlertName = ""
    service: ServiceName = ""
    # Mapped to a level (the IncidentSeverity search attribute): held to the same bounds as the service.
    severity: ServiceName = ""
    __pydantic_extra__: dict[Name, LabelValue] = Field(init=False)

    @model_validator(mode="before")
    @classmethod
    def _total(cls, data: Any) -> Any:
        # The first alert's labels travel with the incident (its input, every continue-as-new, every `status`
        # answer): one label set must stay small whatever each value's own bound allows.
        if isinstance(data, dict):
            size = sum(len(str(k)) + len(v) for k, v in data.items() if isinstance(v, str))
            if size > LABELS_TOTAL_MAX:
                raise ValueError(f"at most {LABELS_TOTAL_MAX} characters of label names and values in all")
        return data


class AlertLabels(Labels):
    """An alert's labels: string values, `alertname` required (Prometheus and Grafana always set it)."""

    alertname: AlertName


class AlertAnnotations(_OpenSet):
    """An alert's annotations: `summary`, else `description`, becomes the incident's title."""

    summary: Title = ""
    description: Description = ""
    __pydantic_extra__: dict[Name, Text] = Field(init=False)
