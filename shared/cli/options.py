"""Options shared by the subcommands: ids are checked where they enter (shared.domain.ids), so a
bad id is one line and a non-zero exit, never a Firestore path."""

from __future__ import annotations

from typing import Any

import click

from shared.domain import ids


class IdType(click.ParamType):
    """A tenant, account or member id."""

    name = "ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        problem = ids.id_problem(value)
        if problem is not None:
            self.fail(problem, param, ctx)
        return str(value)


ID = IdType()
