"""Demo: an AWS Fargate/ECS task retirement notice handled by task-retirement.

    from demo.retirement_demo import run_retirement_demo
    run_retirement_demo(emulator)          # emulator: harness.emulator.EmulatorProcess

or on its own (starts an emulator): python tests/demo/retirement_demo.py

It seeds a managed cluster with a service and a standalone task, then sends the real
binary an `AWS_ECS_TASK_PATCHING_RETIREMENT` Health event through its queue while the
maintenance window is closed, fast-forwards to the window, and replays the notice once
more, printing the timeline and every notification.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from scaffold import Out, Timeline, standalone

from harness import fleet as fl
from harness.emulator import EmulatorProcess
from harness.events import ALWAYS_OPEN_WINDOW, closed_window, ecs_retirement_event
from harness.functions import FunctionUnderTest
from harness.task_retirement_helpers import deployment_ids


def run_retirement_demo(
    emulator: EmulatorProcess,
    binary: str | Path | None = None,
    out: Out = print,
) -> dict[str, Any]:
    """Runs the demo against `emulator`; returns what happened (for assertions)."""
    t = Timeline(out)
    step, show, t0 = t.step, t.show, t.t0

    fleet = fl.seed_cluster(emulator.url, emulator.region, instances=2, services=["web"], standalone_tasks=1)
    step(f"cluster {fleet.cluster_name} (managed): service web x2, standalone task started by batch-job")

    window = closed_window(hours_from_now=3)
    event = ecs_retirement_event(
        [f"{fleet.cluster_name}|web", fleet.standalone_tasks[0]], starts_in=timedelta(days=7)
    )
    step(f"AWS Health: {event['detail']['eventTypeCode']}, retirement at {event['detail']['startTime']}")
    step(f"MAINTENANCE_WINDOW={window!r} (closed now)")
    before = deployment_ids(fleet.ecs, fleet.cluster_name, "web")

    # Its own queue keeps the delays: the deferred event waits in it.
    with FunctionUnderTest.start(emulator, "task-retirement", binary=binary, max_receive=None, skip_delays=False,
                                 MAINTENANCE_WINDOW=window) as first:
        first.send(event)
        first.check(10)
    show(first.inbox.read())
    scheduled = first.queue.delayed()
    step(f"follow-up waiting in the function's queue (delayed): {scheduled}; service untouched: "
         f"{deployment_ids(fleet.ecs, fleet.cluster_name, 'web') == before}")

    # Fast-forward: instead of waiting hours, deliver the deferred event now (as the
    # queue would once its delay runs out) to a function whose window is open now.
    step("fast-forward to the window opening: the deferred event comes back")
    again = dict(event, **{"ecs-autopilot": {"deferrals": 12, "first_deferred_at": t0.isoformat()}})
    with first.another(MAINTENANCE_WINDOW=ALWAYS_OPEN_WINDOW) as fn:
        fn.send(again)
        fn.check(10)
        redeployed = deployment_ids(fleet.ecs, fleet.cluster_name, "web") != before
        show(fn.inbox.read())
        step(f"service web redeployed (forceNewDeployment): {redeployed}")

        step("AWS Health updates the notice (same eventArn): delivered again")
        fn.send(event)
        fn.check(10)
        show(fn.inbox.read())
    tasks = fl.describe_tasks(fleet, fleet.standalone_tasks)
    step(f"standalone task still {tasks[0]['lastStatus']} (reported, never stopped)")
    return {"fleet": fleet, "scheduled": scheduled, "redeployed": redeployed}



if __name__ == "__main__":
    sys.exit(standalone(run_retirement_demo))
