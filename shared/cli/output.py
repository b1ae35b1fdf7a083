"""Plain-text tables and timestamps for the CLI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any


def utc_text(value: datetime | None) -> str | None:
    """RFC 3339 UTC, seconds precision (`2026-11-24T17:00:00Z`)."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def table(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    """Left-aligned columns, `-` for missing values, one line per row."""
    cells = [list(columns)] + [
        ["-" if row.get(c) is None else str(row[c]).replace("\n", " ") for c in columns] for row in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in cells
    )
