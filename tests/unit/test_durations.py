"""Durations as people write them: parsing, formatting back, and the refusal of ambiguous input."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import BaseModel, ValidationError

from tocsin.durations import Duration, format_duration, format_elapsed, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5 minutes", timedelta(minutes=5)),
        ("1 minute", timedelta(minutes=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("90s", timedelta(seconds=90)),
        ("1 hour 30 minutes", timedelta(hours=1, minutes=30)),
        ("1 hour and 30 minutes", timedelta(hours=1, minutes=30)),
        ("1h, 30m", timedelta(hours=1, minutes=30)),
        ("500ms", timedelta(milliseconds=500)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        ("2 Hours", timedelta(hours=2)),
        ("  5 minutes  ", timedelta(minutes=5)),
        ("5 m", timedelta(minutes=5)),
        ("1d2h", timedelta(days=1, hours=2)),
        ("1w", timedelta(weeks=1)),
        ("0s", timedelta(0)),
    ],
)
def test_parse_duration_accepts_what_people_write(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_duration_is_rejected(text: str) -> None:
    with pytest.raises(ValueError, match=r"^empty duration \(expected e\.g\. '5 minutes'\)$"):
        parse_duration(text)


def test_unknown_unit_is_named() -> None:
    with pytest.raises(ValueError) as info:
        parse_duration("5 minuts")
    assert str(info.value) == "invalid duration '5 minuts': unknown unit 'minuts'"


@pytest.mark.parametrize("text", ["5", "300", "1 hour 30", "1h30", "h", "-5m", "five minutes"])
def test_text_without_a_unit_for_every_number_is_rejected(text: str) -> None:
    with pytest.raises(ValueError, match=r"^invalid duration .*expected e\.g\. '5 minutes', '90s', '1h30m'"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(minutes=5), "5 minutes"),
        (timedelta(minutes=1), "1 minute"),
        (timedelta(seconds=1), "1 second"),
        (timedelta(seconds=90), "90 seconds"),
        (timedelta(hours=1, minutes=30), "90 minutes"),
        (timedelta(hours=2), "2 hours"),
        (timedelta(hours=25), "25 hours"),
        (timedelta(days=1), "1 day"),
        (timedelta(weeks=2), "2 weeks"),
        (timedelta(milliseconds=500), "500ms"),
        (timedelta(milliseconds=1500), "1500ms"),
        (timedelta(0), "0 seconds"),
    ],
)
def test_format_duration_uses_the_largest_exact_unit_and_parses_back(value: timedelta, text: str) -> None:
    assert format_duration(value) == text
    assert parse_duration(text) == value


def test_format_elapsed() -> None:
    assert format_elapsed(timedelta(hours=1, minutes=5, seconds=3)) == "1h 5m 3s"
    assert format_elapsed(timedelta(minutes=4)) == "4m 0s"
    assert format_elapsed(timedelta(seconds=12)) == "12s"
    assert format_elapsed(timedelta(seconds=-5)) == "0s"


class _Holder(BaseModel):
    wait: Duration


def test_duration_field_accepts_text_and_serialises_back_to_text() -> None:
    holder = _Holder.model_validate({"wait": "1h30m"})
    assert holder.wait == timedelta(minutes=90)
    assert holder.model_dump_json() == '{"wait":"90 minutes"}'
    # Python-mode dumps keep the timedelta; only JSON is for people.
    assert holder.model_dump() == {"wait": timedelta(minutes=90)}
    assert _Holder.model_validate_json(holder.model_dump_json()) == holder


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (5, "bare number 5 is ambiguous: write a unit, e.g. '5 minutes'"),
        (2.5, "bare number 2.5 is ambiguous: write a unit, e.g. '2.5 minutes'"),
        (True, "a duration must be text such as '5 minutes'"),
        (None, "expected a duration such as '5 minutes', got NoneType"),
        (["5m"], "expected a duration such as '5 minutes', got list"),
    ],
)
def test_duration_field_refuses_bare_numbers_and_other_types(value: object, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        _Holder.model_validate({"wait": value})
    (error,) = info.value.errors()
    assert error["msg"] == f"Value error, {message}"
