"""calsync subcommands: demo."""

from __future__ import annotations
