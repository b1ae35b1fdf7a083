"""Running the `calsync` command in-process, as the CLI tests do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`calsync ARGV…`: its exit status, standard output and standard error."""
    from shared.cli import main

    code = 0
    try:
        main([*argv])
    except SystemExit as exited:
        code = int(exited.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def import_file(tmp_path: Path, data: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> list[str]:
    """`calsync import` of `data` written to a file; the lines it printed."""
    from shared.cli import main

    path = tmp_path / "directory.json"
    path.write_text(json.dumps(data))
    capsys.readouterr()
    main(["import", str(path)])
    return capsys.readouterr().out.splitlines()
