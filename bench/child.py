"""What the benchmark runs in child processes (so their memory and imports are their own):

    python -m bench.child sync TENANT MEMBER   # one full sync; peak RSS
    python -m bench.child cold TARGET REQUEST  # import functions/main.py, serve one request

Each prints one line `BENCH-RESULT {json}` last (the functions log JSON lines before it).
Only the standard library is imported before the clock starts.
"""

from __future__ import annotations

import time

_STARTED = time.perf_counter()

import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

MAIN = Path(__file__).resolve().parents[1] / "functions" / "main.py"
MARKER = "BENCH-RESULT "
# Client libraries an entry point may import, by the module that gives each away.
CLIENT_LIBRARIES = {
    "google.cloud.firestore_v1": "firestore",
    "google.pubsub_v1": "pubsub",
    "google.cloud.secretmanager_v1": "secretmanager",
    "googleapiclient.discovery": "calendar (googleapiclient)",
    "google_auth_oauthlib": "oauth (google-auth-oauthlib)",
}


def _peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM (per address space, so it starts afresh at exec; the
    `ru_maxrss` of getrusage survives exec and would report the forked parent's size)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _emit(result: dict[str, object]) -> None:
    sys.stdout.flush()
    print(MARKER + json.dumps(result), flush=True)


def run_sync(tenant_id: str, member_id: str) -> None:
    from shared import bootstrap
    from shared.services.sync import SyncSettings, sync_member

    deps = bootstrap.sync_deps()
    settings = SyncSettings(budget_s=bootstrap.config().sync_budget_s)
    baseline = _peak_rss_mb()
    started = time.perf_counter()
    summary = sync_member(deps, tenant_id, member_id, settings=settings)
    elapsed = time.perf_counter() - started
    _emit(
        {
            "outcome": summary.outcome,
            "events_seen": summary.events_seen,
            "pages": summary.pages,
            "interactions_written": summary.interactions_written,
            "seconds": elapsed,
            "baseline_rss_mb": baseline,
            "peak_rss_mb": _peak_rss_mb(),
        }
    )


def run_cold(target: str, request: dict[str, object]) -> None:
    import functions_framework

    app = functions_framework.create_app(target=target, source=str(MAIN))
    imported = time.perf_counter()
    client = app.test_client()
    response = client.open(
        str(request.get("path", "/")),
        method=str(request.get("method", "GET")),
        query_string=str(request.get("query", "")),
        json=request.get("json"),
        headers=dict(request.get("headers", {}) or {}),  # type: ignore[call-overload]
    )
    served = time.perf_counter()
    libraries = sorted({name for module, name in CLIENT_LIBRARIES.items() if module in sys.modules})
    _emit(
        {
            "status": response.status_code,
            "import_ms": (imported - _STARTED) * 1000,
            "first_request_ms": (served - imported) * 1000,
            "total_ms": (served - _STARTED) * 1000,
            "client_libraries": libraries,
            "google_modules": sum(1 for m in sys.modules if m.startswith(("google", "grpc", "proto"))),
            "peak_rss_mb": _peak_rss_mb(),
        }
    )


def main(argv: list[str]) -> int:
    if argv[:1] == ["sync"] and len(argv) == 3:
        run_sync(argv[1], argv[2])
        return 0
    if argv[:1] == ["cold"] and len(argv) == 3:
        run_cold(argv[1], json.loads(argv[2]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
