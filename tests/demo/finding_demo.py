"""Demo: a GuardDuty Runtime Monitoring finding handled by guardduty-responder.

    from demo.finding_demo import run_finding_demo
    run_finding_demo(emulator)          # emulator: harness.emulator.EmulatorProcess

or on its own (starts an emulator): python tests/demo/finding_demo.py

It seeds a managed cluster (Auto Scaling group + container instances + service web),
then sends the real binary a High `Execution:Runtime/ReverseShell` finding about one of
web's tasks on an EC2 host, delivers the same finding again (GuardDuty updates findings),
and prints the timeline and every notification, in the containment order: the host's
network moved to a quarantine security group (cut off, memory intact), its EBS volumes
snapshotted (tagged with the finding), only then the task stopped, and the host DRAINING,
tagged, detached from its group (which launches a replacement) and still running for
forensics. Then an `AttackSequence:ECS/CompromisedCluster` (Critical) names a task on the
other host and that host: both are contained under the same rails, and one Critical
notice lists the signals, the tasks and hosts and what became of each; delivered again,
it finds them contained and says so without a second alarm.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from scaffold import Out, Timeline, standalone

from harness import fleet as fl
from harness.emulator import EmulatorProcess
from harness.events import finding_event, sequence_event
from harness.functions import FunctionUnderTest
from harness.guardduty_responder_helpers import (
    QUARANTINE_TAG, container_instance_status, group_of, host_interfaces, instance_state, instance_tags,
    interface_groups, quarantine_group, service_task_on, task_of,
)


def run_finding_demo(
    emulator: EmulatorProcess,
    binary: str | Path | None = None,
    out: Out = print,
) -> dict[str, Any]:
    """Runs the demo against `emulator`; returns what happened (for assertions)."""
    step = Timeline(out).step

    def show(notes: list[Any]) -> None:
        for n in notes:
            out(f"    -> {n.subject}")
            for a in n.details.get("actions", []):
                out(f"       {a['action']:<16} {a.get('target', ''):<40} {a['outcome']}")
            for c in n.details.get("containment", []):
                out(f"       {c['kind']:<16} {c['resource'].rsplit('/', 1)[-1]:<40} {c['outcome']}")
            if n.details.get("sequence"):
                signals = [g["name"] for g in n.details["sequence"]["signals"]]
                out(f"       signals: {', '.join(signals)}")
            if n.details.get("evidence"):
                images = [f"{c['name']}={c.get('image')}" for c in n.details["evidence"]["containers"]]
                out(f"       evidence: {', '.join(images)}")

    fleet = fl.seed_cluster(emulator.url, emulator.region, instances=2, services=["web"], tasks_per_instance=2)
    host = fleet.instances[0]
    task = service_task_on(fleet, host)
    iid = host.ec2_instance_id
    step(f"cluster {fleet.cluster_name} (managed), group {fleet.asg_name}: service web x4 on 2 hosts")
    sg = quarantine_group(fleet, iid)
    step(f"quarantine security group {sg} (QUARANTINE_SECURITY_GROUP); SNAPSHOT_VOLUMES=true")
    event = finding_event(fleet, task)
    d = event["detail"]
    step(f"GuardDuty: {d['type']} severity {d['severity']} in task {task.rsplit('/', 1)[-1]} on {iid}")

    order: list[str] = []
    with FunctionUnderTest.start(emulator, "guardduty-responder", binary=binary, QUARANTINE_SECURITY_GROUP=sg) as fn:
        inbox = fn.inbox
        result = fn.invoke(event)
        step(f"responder: {'ok' if result.ok else result.error} in {result.duration_ms or 0:.0f} ms")
        notes = inbox.read()
        show(notes)
        for n in notes:
            order = [a["action"] for a in n.details.get("actions", [])]
            taken = n.details.get("evidence_taken") or {}
            step(f"evidence kept: snapshots {taken.get('snapshots')}, isolated {taken.get('isolated_network_interfaces')}")
        step(f"containment order: {' -> '.join(order)}")
        step(f"host interfaces now in {sorted({g for e in host_interfaces(fleet, iid) for g in interface_groups(fleet, e)})}")
        step(f"task {task_of(fleet, task)['lastStatus']}: {task_of(fleet, task).get('stoppedReason')}")
        step(
            f"host {iid}: container instance {container_instance_status(fleet, host)}, "
            f"group {group_of(fleet, iid) or 'none (detached)'}, EC2 {instance_state(fleet, iid)}, "
            f"{QUARANTINE_TAG}={instance_tags(fleet, iid).get(QUARANTINE_TAG)}"
        )
        group = fleet.group()
        step(f"group {fleet.asg_name}: desired {group['DesiredCapacity']}, instances "
             f"{sorted(i['InstanceId'] for i in group['Instances'])} (replacement launched)")

        step("GuardDuty updates the finding (same id, count 2): delivered again")
        again = finding_event(fleet, task, finding_id=d["id"], count=2)
        result = fn.invoke(again)
        step(f"responder: {'ok' if result.ok else result.error}")
        show(inbox.read())

        other = fleet.instances[1]
        other_task = service_task_on(fleet, other)
        sequence = sequence_event(fleet, [other_task], [other.ec2_instance_id])
        step(f"GuardDuty: {sequence['detail']['type']} severity {sequence['detail']['severity']}: "
             f"task {other_task.rsplit('/', 1)[-1]} and host {other.ec2_instance_id}")
        result = fn.invoke(sequence)
        step(f"responder: {'ok' if result.ok else result.error}")
        notes = inbox.read()
        show(notes)
        summary = next(n for n in notes if n.action == "attack-sequence")
        step("the same attack sequence delivered again")
        assert fn.invoke(sequence).ok
        again_notes = inbox.read()
        show(again_notes)
        repeat = next(n for n in again_notes if n.action == "attack-sequence")
    return {"fleet": fleet, "task": task, "instance": iid, "order": order,
            "sequence": (summary.outcome, summary.attributes.get("severity"), repeat.outcome)}



if __name__ == "__main__":
    sys.exit(standalone(run_finding_demo))
