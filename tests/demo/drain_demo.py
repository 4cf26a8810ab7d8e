"""Demo: Auto Scaling terminates a busy ECS host; instance-drain drains it.

    python tests/demo/drain_demo.py      (starts its own emulator)

Seeds an opted-in cluster (an Auto Scaling group with 3 instances running service
tasks and a daemon), fires a terminate lifecycle action, and feeds the event to the
real binary through its SQS queue the way Lambda would. The demo plays ECS's
scheduler (moving the tasks) and prints the timeline and the notifications.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from scaffold import Out, Timeline, standalone

from harness import fleet as fl
from harness.emulator import EmulatorProcess
from harness.functions import FunctionUnderTest


def run_drain_demo(
    emulator: EmulatorProcess,
    binary: str | Path | None = None,
    out: Out = print,
) -> dict[str, Any]:
    t = Timeline(out)
    step, show = t.step, t.show

    fleet = fl.seed_cluster(
        emulator.url, emulator.region, instances=3, services=["web", "api"], tasks_per_instance=2, daemon=True
    )
    step(f"cluster {fleet.cluster_name} (managed), group {fleet.asg_name}: 3 instances, services web+api, daemon")
    # The emulator skips the 5 s re-check delays on its queue (DRAIN_POLL_SECONDS >= 5).
    fx = FunctionUnderTest.start(emulator, "instance-drain", binary=binary, max_receive=None, start=False)
    victim = fleet.instances[0]
    event = fl.fire_lifecycle(emulator.url, fleet, victim)
    step(f"Auto Scaling scales in: {victim.ec2_instance_id} -> Terminating:Wait (terminate lifecycle hook)")
    fx.send(event)

    checks = 0
    fx.fn.start()
    with fx:
        while True:
            checks += 1
            fx.check(1, wait=3)
            show(fx.inbox.read())
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



if __name__ == "__main__":
    sys.exit(standalone(run_drain_demo))
