"""Serve every Cloud Function entry point of `functions/main.py` from one local process.

Each target is a real functions-framework app (`functions_framework.create_app`) mounted under
`/<target>` with werkzeug's DispatcherMiddleware, so a Pub/Sub emulator push subscription can
deliver to `/sync_worker/projects/<project>/topics/<topic>` exactly as Google would, and the
browser-facing OAuth endpoints answer at `/oauth_connect`, `/oauth_callback`, ...

    python -m shared.sandbox.functions_host --port 8080 [--target NAME ...]

`start_functions_host()` runs it as a child process in its own process group (stopped by group,
killed with its parent) and waits until it answers.
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
    app = build_app(args.targets or TARGETS)
    run_simple("127.0.0.1", args.port, app, threaded=True, use_reloader=False, use_debugger=False)


if __name__ == "__main__":
    main()
