"""calsync subcommands: syncing."""

from __future__ import annotations
