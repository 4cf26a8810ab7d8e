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

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

TESTS_DIR = Path(__file__).resolve().parent.parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from harness import fleet as fl  # noqa: E402
from harness.emulator import EmulatorProcess, find_function_binary  # noqa: E402
from harness.runtime_api import LambdaProcess  # noqa: E402
from harness.sqs_pump import pump  # noqa: E402
from harness.task_retirement_helpers import (  # noqa: E402
    ALWAYS_OPEN_WINDOW,
    Inbox,
    closed_window,
    delayed_messages,
    deployment_ids,
    ecs_retirement_event,
    own_queue,
    retirement_env,
)


def run_retirement_demo(
    emulator: EmulatorProcess,
    binary: str | Path | None = None,
    out: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Runs the demo against `emulator`; returns what happened (for assertions)."""
    binary = binary or find_function_binary("task-retirement")
    if binary is None:
        raise RuntimeError("task-retirement is not built: cargo build -p task-retirement")
    sqs = emulator.client("sqs")
    t0 = datetime.now(timezone.utc)

    def step(text: str) -> None:
        out(f"[+{(datetime.now(timezone.utc) - t0).total_seconds():5.1f}s] {text}")

    def show(notes: list[Any]) -> None:
        for n in notes:
            out(f"    -> {n.subject}")
            out(f"       {n.action} / {n.outcome}: {n.description[:300]}")

    fleet = fl.seed_cluster(emulator.url, emulator.region, instances=2, services=["web"], standalone_tasks=1)
    inbox, queue = Inbox.create(emulator, "demo-notify"), own_queue(emulator, "demo-retirement")
    step(f"cluster {fleet.cluster_name} (managed): service web x2, standalone task started by batch-job")

    window = closed_window(hours_from_now=3)
    event = ecs_retirement_event(
        [f"{fleet.cluster_name}|web", fleet.standalone_tasks[0]], starts_in=timedelta(days=7)
    )
    step(f"AWS Health: {event['detail']['eventTypeCode']}, retirement at {event['detail']['startTime']}")
    step(f"MAINTENANCE_WINDOW={window!r} (closed now)")
    before = deployment_ids(fleet.ecs, fleet.cluster_name, "web")

    with LambdaProcess(binary, env=retirement_env(emulator, inbox, queue, MAINTENANCE_WINDOW=window)) as fn:
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(event))
        pump(sqs, queue, fn)
    show(inbox.read())
    scheduled = delayed_messages(emulator, queue)
    step(f"follow-up waiting in the function's queue (delayed): {scheduled}; service untouched: "
         f"{deployment_ids(fleet.ecs, fleet.cluster_name, 'web') == before}")

    # Fast-forward: instead of waiting hours, deliver the deferred event now (as the
    # queue would once its delay runs out) to a function whose window is open now.
    step("fast-forward to the window opening: the deferred event comes back")
    again = dict(event, **{"ecs-autopilot": {"deferrals": 12, "first_deferred_at": t0.isoformat()}})
    with LambdaProcess(binary, env=retirement_env(emulator, inbox, queue, MAINTENANCE_WINDOW=ALWAYS_OPEN_WINDOW)) as fn:
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(again))
        pump(sqs, queue, fn)
        redeployed = deployment_ids(fleet.ecs, fleet.cluster_name, "web") != before
        show(inbox.read())
        step(f"service web redeployed (forceNewDeployment): {redeployed}")

        step("AWS Health updates the notice (same eventArn): delivered again")
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(event))
        pump(sqs, queue, fn)
        show(inbox.read())
    tasks = fl.describe_tasks(fleet, fleet.standalone_tasks)
    step(f"standalone task still {tasks[0]['lastStatus']} (reported, never stopped)")
    return {"fleet": fleet, "scheduled": scheduled, "redeployed": redeployed}


def main() -> int:
    with EmulatorProcess() as emulator:
        run_retirement_demo(emulator)
    return 0


if __name__ == "__main__":
    sys.exit(main())
