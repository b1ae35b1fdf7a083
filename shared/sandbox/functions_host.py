"""Serve every Cloud Function entry point of `functions/main.py` from one local process.

Each target is a real functions-framework app (`functions_framework.create_app`) mounted under
`/<target>` with werkzeug's DispatcherMiddleware, so a Pub/Sub emulator push subscription can
deliver to `/sync_worker/projects/<project>/topics/<topic>` exactly as Google would, and the
browser-facing OAuth endpoints answer at `/oauth_connect`, `/oauth_callback`, ...

    python -m shared.sandbox.functions_host --port 8080 [--target NAME ...]

`start_functions_host()` runs it as a child process in its own process group (stopped by group,
killed with its parent) and waits until it answers.

Sandbox-only switches (read here, in this process only; never by production modules), used by
the fault soak (`python -m soak`):

- `CALSYNC_SANDBOX_CLOCK_SKEW_S`: seconds added to `SystemClock.now()` in this process (a worker
  whose clock is off, e.g. -120 or 120);
- `CALSYNC_SANDBOX_LEASE_TTL_S`, `CALSYNC_SANDBOX_LEASE_FENCE_S`: the sync lease's lifetime and
  fence in this process (production: 540 s and 120 s), so a worker killed mid-sync blocks its
  member for seconds rather than minutes.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from shared.sandbox.emulators import RunningProcess, free_port, start_process

REPO_ROOT = Path(__file__).resolve().parents[2]
MAIN = REPO_ROOT / "functions" / "main.py"
TARGETS = (
    "oauth_connect",
    "oauth_callback",
    "oauth_disconnect",
    "schedule_sync",
    "sync_worker",
    "calendar_notification",
)


SKEW_ENV = "CALSYNC_SANDBOX_CLOCK_SKEW_S"
LEASE_TTL_ENV = "CALSYNC_SANDBOX_LEASE_TTL_S"
LEASE_FENCE_ENV = "CALSYNC_SANDBOX_LEASE_FENCE_S"


def apply_sandbox_switches(environ: Mapping[str, str]) -> list[str]:
    """Patch this process for the sandbox-only switches set in `environ`; what was patched."""
    patched = []
    skew = float(environ.get(SKEW_ENV) or 0)
    if skew:
        from datetime import UTC, datetime, timedelta

        from shared.adapters.clock import SystemClock

        offset = timedelta(seconds=skew)

        def skewed_now(self: SystemClock) -> datetime:
            return datetime.now(UTC) + offset

        SystemClock.now = skewed_now  # type: ignore[method-assign]
        patched.append(f"clock skew {skew:+.0f}s")
    ttl, fence = environ.get(LEASE_TTL_ENV), environ.get(LEASE_FENCE_ENV)
    if ttl or fence:
        import dataclasses

        from shared import bootstrap

        original = bootstrap.sync_settings

        def sync_settings():  # type: ignore[no-untyped-def]
            settings = original()
            return dataclasses.replace(
                settings,
                lease_ttl_s=float(ttl) if ttl else settings.lease_ttl_s,
                lease_fence_s=float(fence) if fence else settings.lease_fence_s,
            )

        bootstrap.sync_settings = sync_settings
        patched.append(f"lease ttl {ttl or 'default'}s, fence {fence or 'default'}s")
    return patched


def build_app(targets: Sequence[str] = TARGETS, source: Path = MAIN):  # type: ignore[no-untyped-def]
    """A WSGI app with each target mounted at /<target>; `/` answers 200 for readiness."""
    import functions_framework
    from werkzeug.middleware.dispatcher import DispatcherMiddleware
    from werkzeug.wrappers import Response

    mounts = {f"/{t}": functions_framework.create_app(target=t, source=str(source)) for t in targets}

    def ready(environ, start_response):  # type: ignore[no-untyped-def]
        return Response("ok\n", mimetype="text/plain")(environ, start_response)

    dispatcher = DispatcherMiddleware(ready, mounts)

    def app(environ, start_response):  # type: ignore[no-untyped-def]
        # `/oauth_connect?x` must reach the function as `/`, as in Cloud Functions (no 308 hop).
        if environ.get("PATH_INFO", "") in mounts:
            environ["PATH_INFO"] += "/"
        return dispatcher(environ, start_response)

    return app


def start_functions_host(
    env: Mapping[str, str], port: int | None = None, targets: Sequence[str] = TARGETS
) -> RunningProcess:
    """Start the host as a child process with `env` added to this process's environment."""
    port = port or free_port()
    argv = [sys.executable, "-m", "shared.sandbox.functions_host", "--port", str(port)]
    for target in targets:
        argv += ["--target", target]
    child_env = {**os.environ, **env, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    return start_process("functions-host", argv, f"http://127.0.0.1:{port}/", f"127.0.0.1:{port}", child_env)


def main(argv: Sequence[str] | None = None) -> None:
    from werkzeug.serving import run_simple

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target", action="append", dest="targets")
    args = parser.parse_args(argv)
    for line in apply_sandbox_switches(os.environ):
        print(f"sandbox switch: {line}", flush=True)
    app = build_app(args.targets or TARGETS)
    run_simple("127.0.0.1", args.port, app, threaded=True, use_reloader=False, use_debugger=False)


if __name__ == "__main__":
    main()
