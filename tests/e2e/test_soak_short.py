"""The short fault soak (`python -m soak --short`, README.md#fault-soak): one tenant of 20
members, two rounds of calendar and directory changes under every fault kind (worker SIGKILL
mid-page with a skewed clock, Firestore SIGSTOP, 429/5xx storms, connection resets, slow pages,
notification drops/duplicates/delays/reordering, duplicate jobs), then the comparison with a
fault-free reference. Nothing may be lost or different."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared.sandbox import emulators
from soak.faults import FAULT_KINDS

pytestmark = pytest.mark.e2e
REPO_ROOT = Path(__file__).resolve().parents[2]
SEED = 1


def test_short_soak_loses_nothing(tmp_path: Path, uses_emulators: None) -> None:
    reason = emulators.missing_reason()
    if reason:
        pytest.skip(f"EMULATORS MISSING: {reason}")
    out = tmp_path / "soak.json"
    run = subprocess.run(
        [sys.executable, "-m", "soak", "--short", "--seed", str(SEED), "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert out.exists(), (
        f"no report written (exit {run.returncode})\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    )
    report = json.loads(out.read_text())
    context = f"\n{run.stdout[-6000:]}"
    assert report["quiescent"], f"not quiescent: {report['error']}{context}"
    assert report["differences"] == 0, f"{report['difference_list']}{context}"
    missing = [kind for kind in FAULT_KINDS if report["faults"].get(kind, 0) < 1]
    assert not missing, f"fault kinds never injected: {missing}{context}"
    assert report["worker_kills_mid_page"] >= 1, context
    assert report["interactions_compared"] > 0
    assert run.returncode == 0, context
