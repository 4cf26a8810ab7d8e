"""Demo: Auto Scaling terminates a busy ECS host; instance-drain drains it.

    python tests/demo/drain_demo.py      (starts its own emulator)

Seeds an opted-in cluster (an Auto Scaling group with 3 instances running service
tasks and a daemon), fires a terminate lifecycle action, and feeds the event to the
real binary through its SQS queue the way Lambda would. The demo plays ECS's
scheduler (moving the tasks) and prints the timeline and the notifications.
"""

from __future__ import annotations

import json
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

TESTS_DIR = Path(__file__).resolve().parent.parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from harness import fleet as fl  # noqa: E402
from harness.emulator import EmulatorProcess, find_function_binary  # noqa: E402
from harness.runtime_api import LambdaProcess  # noqa: E402
from harness.sqs_pump import pump  # noqa: E402
from harness.notifications import Inbox  # noqa: E402


def run_drain_demo(
    emulator: EmulatorProcess,
    binary: str | Path | None = None,
    out: Callable[[str], None] = print,
) -> dict[str, Any]:
    binary = binary or find_function_binary("instance-drain")
    if binary is None:
        raise RuntimeError("instance-drain is not built: cargo build -p instance-drain")
    sqs = emulator.client("sqs")
    t0 = datetime.now(timezone.utc)

    def step(text: str) -> None:
        out(f"[+{(datetime.now(timezone.utc) - t0).total_seconds():5.1f}s] {text}")

    def show(notes: list[Any]) -> None:
        for n in notes:
            out(f"    -> {n.subject}")
            out(f"       {n.action} / {n.outcome}: {n.description[:300]}")

    fleet = fl.seed_cluster(
        emulator.url, emulator.region, instances=3, services=["web", "api"], tasks_per_instance=2, daemon=True
    )
    step(f"cluster {fleet.cluster_name} (managed), group {fleet.asg_name}: 3 instances, services web+api, daemon")
    inbox = Inbox.create(emulator, "demo-drain-notify")
    # The emulator skips the 5 s re-check delays on this queue (DRAIN_POLL_SECONDS >= 5).
    queue = sqs.create_queue(QueueName=f"demo-drain-{uuid.uuid4().hex[:8]}", tags={"emulator:skip-delays": "true"})["QueueUrl"]
    env = emulator.env(NOTIFY_TOPIC_ARN=inbox.topic_arn, DRAIN_QUEUE_URL=queue, DRAIN_POLL_SECONDS="5")
    victim = fleet.instances[0]
    event = fl.fire_lifecycle(emulator.url, fleet, victim)
    step(f"Auto Scaling scales in: {victim.ec2_instance_id} -> Terminating:Wait (terminate lifecycle hook)")
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(event))

    checks = 0
    with LambdaProcess(binary, env=env) as fn:
        while True:
            checks += 1
            pump(sqs, queue, fn, max_batches=1, wait=3)
            show(inbox.read())
            (action,) = fl.lifecycle_actions(emulator.url, fleet.region, token=event["detail"]["LifecycleActionToken"])
            left = [t for t in fl.tasks_on(fleet, victim) if fl.service_of(t) != fleet.daemon_service]
            step(f"check {checks}: lifecycle action {action['status']} (heartbeats {action['heartbeats']}), "
                 f"{len(left)} task(s) still on the host")
            if action["status"] == "completed" or checks > 6:
                break
            if checks == 2:
                moved = fl.play_scheduler(fleet, stop_daemons=False)
                step(f"ECS scheduler moves {len(moved['stopped'])} task(s) off the DRAINING host "
                     f"(started {len(moved['started'])} elsewhere)")
    step(f"lifecycle action completed with {action['result']}; instance terminated by Auto Scaling")
    return {"fleet": fleet, "action": action, "checks": checks}


def main() -> int:
    with EmulatorProcess() as emulator:
        run_drain_demo(emulator)
    return 0


if __name__ == "__main__":
    sys.exit(main())
