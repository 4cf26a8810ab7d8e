#!/usr/bin/env python3
"""moto server with the Auto Scaling calls ecs-autopilot needs and moto 5 lacks.

Run it in the foreground:

    python tests/emulator/launcher.py --host 127.0.0.1 --port 5055

It prints ``READY http://127.0.0.1:5055`` once the server answers and serves
until SIGTERM/SIGINT. Or use it in-process::

    from emulator import launcher
    server = launcher.start(5055)   # port 0 picks a free port; see server.url
    ...
    launcher.stop()

What the patch adds to moto (5.2.x) before the server starts:

* Auto Scaling ``CompleteLifecycleAction``, ``RecordLifecycleActionHeartbeat``,
  ``StartInstanceRefresh``, ``DescribeInstanceRefreshes``,
  ``CancelInstanceRefresh`` and ``DescribeScalingActivities`` (one activity per
  lifecycle action), with state kept on moto's per account/region
  Auto Scaling backend (so ``POST /moto-api/reset`` clears it too) and the
  Query-protocol error responses AWS sends.
* Test-control endpoints under ``/_autopilot/``, because moto never creates
  lifecycle actions and never moves an instance refresh along:

  - ``POST /_autopilot/lifecycle-actions``: create an active lifecycle action
  - ``GET  /_autopilot/lifecycle-actions?region=&group=&status=``: list them
  - ``POST /_autopilot/lifecycle-actions/timeout``: apply the hook's default result
  - ``POST /_autopilot/instance-refresh``: set a refresh's status
  - ``GET  /_autopilot/instance-refresh?region=&group=``: list refreshes
  - ``POST /_autopilot/ssm-parameter``: write any SSM parameter, incl. /aws/service/...
  - ``POST /_autopilot/container-instances``: register a group's instances in a cluster
    at once, as their ECS agents would at boot (fast seeding of large fleets)
  - ``POST /_autopilot/images``: make an AMI id describable
  - ``POST /_autopilot/clock``: move the lifecycle actions' clock (lapsed hooks take
    their DefaultResult)
  - ``POST /_autopilot/container-instance``: connect or disconnect a host's ECS agent
  - ``POST /_autopilot/instance-status``: set a host's EC2 status checks (impaired)
  - ``GET  /_autopilot/assume-role-calls``: every STS AssumeRole answered, per target account
  - ``GET  /_autopilot/health``

* ECS closer to AWS (turn off with ``--plain-moto-ecs``): ``ListTasks`` with
  an exact cluster match instead of moto's substring match, ``desiredStatus``
  defaulting to RUNNING, and ``serviceName`` matching the task group
  ``service:NAME``; StartTask tasks get launchType EC2 and startedAt;
  StopTask sets stoppedAt/stopCode and is a no-op on a stopped task; cluster
  and service running/pending counts computed from the tasks.
* STS AssumeRole as AWS answers it: AccessDenied (403) into a role that does not exist
  or whose trust policy doesn't let the caller in; otherwise moto's credentials of the
  role's account (several accounts: see tests/emulator/README.md).
* ECS task status left in RUNNING until StopTask (``--manual-tasks``, the
  default). Without it moto moves a task one state towards STOPPED on each
  DescribeTasks.

The exact request and response shapes are in tests/emulator/README.md. This module is
the server; the patches are the other modules of the package (the README lists them).
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a script (python tests/emulator/launcher.py): make the package importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emulator.common import OPTIONS
from emulator.patching import patch_moto
from emulator.ami import set_manual_tasks
from emulator.middleware import ControlMiddleware


class EmulatorServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        app = ControlMiddleware(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
        self.host, self.port = self._server.server_address[:2]
        self.url = f"http://{self.host}:{self.port}"
        self._thread: threading.Thread | None = None

    def start(self) -> "EmulatorServer":
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-emulator", daemon=True)
        self._thread.start()
        wait_ready(self.url)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=10)


def wait_ready(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_autopilot/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except Exception:
            if time.monotonic() > deadline:
                raise TimeoutError(f"emulator at {url} did not answer within {timeout}s")
            time.sleep(0.05)


_SERVER: EmulatorServer | None = None


def start(
    port: int = 0,
    host: str = "127.0.0.1",
    manual_tasks: bool = True,
    ecs_fidelity: bool = True,
    log_requests: bool = False,
) -> EmulatorServer:
    """Patch moto and start the server in a background thread of this process."""
    global _SERVER
    if not log_requests:
        import logging

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
    patch_moto(ecs_fidelity=ecs_fidelity)
    set_manual_tasks(manual_tasks)
    _SERVER = EmulatorServer(host, port).start()
    return _SERVER


def stop() -> None:
    global _SERVER
    if _SERVER is not None:
        _SERVER.stop()
        _SERVER = None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000, help="0 picks a free port")
    tasks = parser.add_mutually_exclusive_group()
    tasks.add_argument("--manual-tasks", dest="manual_tasks", action="store_true", default=True,
                       help="keep ECS tasks RUNNING until StopTask (default)")
    tasks.add_argument("--auto-tasks", dest="manual_tasks", action="store_false",
                       help="moto default: each DescribeTasks moves a task towards STOPPED")
    parser.add_argument("--plain-moto-ecs", action="store_true",
                        help="skip the ECS fidelity patches (ListTasks, StartTask/StopTask fields, counts)")
    parser.add_argument("--log-requests", action="store_true", help="log every request to stderr")
    parser.add_argument("--keep-container-instances", action="store_true",
                        help="don't stop tasks / deregister container instances of terminated instances")
    args = parser.parse_args(argv)

    OPTIONS["ecs_cleanup"] = not args.keep_container_instances
    server = start(
        args.port,
        args.host,
        manual_tasks=args.manual_tasks,
        ecs_fidelity=not args.plain_moto_ecs,
        log_requests=args.log_requests,
    )
    print(f"READY {server.url}", flush=True)

    done = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not done.wait(0.5):
        pass
    stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
