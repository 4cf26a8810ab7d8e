"""Demo: a team publishes a new AMI and ami-rollout rolls their Auto Scaling group.

    from demo.rollout_demo import run_rollout_demo
    run_rollout_demo(emulator)             # emulator: harness.emulator.EmulatorProcess

or on its own (starts an emulator): python tests/demo/rollout_demo.py

It seeds a managed cluster whose group follows a team AMI parameter, publishes a new
AMI in that parameter, sends the real binary the Parameter Store Change event (the
refresh starts: a new launch template version and an instance refresh to it), replays
the event (nothing happens twice), advances the refresh to Successful through the
emulator's control endpoint (instances are replaced and register with the new AMI),
and sends the "Instance Refresh Succeeded" event, printing the timeline and every
notification a person would read.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from scaffold import Numbered, Out, standalone

from harness import fleet as fl
from harness.ami_rollout_helpers import (
    PARAMETER_TAG, complete_refresh, refreshes, running_amis, team_parameter, template_versions,
)
from harness.emulator import EmulatorProcess
from harness.events import ami, parameter_event, refresh_event
from harness.functions import FunctionUnderTest


def run_rollout_demo(
    emulator: EmulatorProcess,
    binary: str | Path | None = None,
    out: Out = print,
    region: str = "eu-west-1",
    instances: int = 3,
) -> dict[str, Any]:
    """Runs the demo against `emulator` in `region`; returns what happened."""
    t = Numbered(out)
    step, show = t.step, t.show

    old, new = ami("old"), ami("new")
    parameter = team_parameter(emulator, region, old)
    fleet = fl.seed_cluster(emulator.url, region, instances=instances, ami=old, services=("web",),
                            extra_group_tags={PARAMETER_TAG: parameter})
    fn = FunctionUnderTest.start(emulator, "ami-rollout", binary=binary, region=region, start=False)
    inbox = fn.inbox
    step(f"group {fleet.asg_name} (cluster {fleet.cluster_name}) runs {dict(running_amis(fleet))}; "
         f"it follows {parameter}")

    team_parameter(emulator, region, new, name=parameter)
    step(f"the image pipeline publishes {new} to {parameter}")
    event = parameter_event(region, parameter)
    fn.fn.start()
    with fn:
        result = fn.invoke(event, timeout=60)
        assert result.ok, result.error
        [refresh] = refreshes(emulator, region, fleet.asg_name)
        versions = sorted(int(v["VersionNumber"]) for v in template_versions(fleet))
        step(f"ami-rollout started refresh {refresh['InstanceRefreshId']} ({refresh['Status']}) to "
             f"launch template version {versions[-1]}")
        show(inbox.read())

        step("the same event arrives again")
        assert fn.invoke(event, timeout=60).ok
        show(inbox.read())

        view = complete_refresh(emulator, fleet)
        step(f"Auto Scaling finishes the refresh: {len(view['replaced_instances'])} instance(s) replaced; "
             f"the group now runs {dict(running_amis(fleet))}")

        assert fn.invoke(refresh_event(region, fleet.asg_name, refresh["InstanceRefreshId"]), timeout=60).ok
        step("EventBridge delivers 'EC2 Auto Scaling Instance Refresh Succeeded'")
        notes = inbox.read()
        show(notes)
    return {"fleet": fleet, "refresh": refresh, "new_ami": new, "outcome": notes}



if __name__ == "__main__":
    sys.exit(standalone(run_rollout_demo))
