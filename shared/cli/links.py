"""calsync subcommands: links."""

from __future__ import annotations
