"""Readable tables for people, JSON for scripts.

Tables are rich tables laid out as the `tocsin` tables always were (upper-case headers, two spaces between
columns, no borders), so `awk`, `cut` and tests that split lines still find their columns. On a terminal they
get a bold header and fit its width; anywhere else (a pipe, a file, a test capturing stdout) they are plain
text that never wraps, never truncates and carries no colour codes.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from rich.text import Text

# Wide enough for any cell we print (timeline text is capped far below it): a table off a terminal is never
# wrapped. Rich sizes a table to its content, so this costs nothing.
_UNWRAPPED_WIDTH = 1_000_000


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    grid = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold")
    for header in headers:
        # On a narrow terminal a long value folds onto more lines rather than losing its end to an ellipsis:
        # keys and names are copied from here.
        grid.add_column(header.upper(), overflow="fold")
    for row in rows:
        # Text, not str: a value such as "[open]" or ":fire:" is data, not rich markup or an emoji code.
        grid.add_row(*(Text(cell(v)) for v in row))
    return grid


def render(grid: Table) -> str:
    """The table as plain text: no colour, no wrapping, no trailing blanks (rich pads every cell)."""
    buffer = io.StringIO()
    Console(file=buffer, width=_UNWRAPPED_WIDTH, color_system=None, highlight=False).print(grid)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    grid = table(headers, rows)
    # sys.stdout as it is now, not at import: tests and callers may have swapped it.
    if sys.stdout.isatty():
        Console(file=sys.stdout, highlight=False).print(grid)
    else:
        print(render(grid))


def emit_json(value: Any) -> None:
    if isinstance(value, BaseModel):
        sys.stdout.write(value.model_dump_json(indent=2) + "\n")
    else:
        sys.stdout.write(json.dumps(value, indent=2, default=cell) + "\n")
