"""calsync subcommands: directory."""

from __future__ import annotations
