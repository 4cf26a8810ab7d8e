"""Foreign resources: managed and unmanaged clusters and groups side by side, every event
kind of every function aimed at the unmanaged ones (and some at the managed ones in the
same run), and the proxy's call log checked: no state-changing call ever names an
unmanaged resource.

Unmanaged, and what may never be changed there:

* ``loose``: a group without the `ecs-autopilot:cluster` tag (its cluster is managed):
  nothing of the group, by Auto Scaling (hooks, health, protection, detach, refresh);
* ``foreign``: a cluster without `ecs-autopilot:managed=true`, and an untagged group:
  nothing at all (cluster, container instances, tasks, services, group, instances, template);
* ``half``: a tagged group whose cluster is unmanaged: nothing in ECS, no tags on its
  instances, no new template version, no refresh, no protection, no detach. Releasing
  its lifecycle actions and marking a retiring instance Unhealthy are by design (README §3,
  §11): the group opted in, and it must not be held up;
* ``cross``: a tagged group naming the managed cluster while its instances are
  registered in an unmanaged cluster of their own: nothing of that cluster.

Forged input: a drain re-check whose carried progress (`ecs-autopilot`) names an unmanaged
cluster, and a task-retirement deferral carried for an unmanaged service.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from harness import fleet as fl
from harness.functions import FunctionUnderTest
from harness.ami_rollout_helpers import PARAMETER_TAG, next_region, team_parameter
from harness.aws_proxy import AwsProxy, Call
from harness.events import (
    ago, ami, ami_release_sns_event, ec2_retirement_event, ecs_retirement_event, finding_event,
    host_finding_event, parameter_event, rebalance_event, refresh_event, scheduled_event, sequence_event,
    spot_event,
)
from harness.guardduty_responder_helpers import quarantine_group, service_task_on
from harness.instance_drain_helpers import action_of, ci_status
from harness.replay_helpers import FLEET_SERVICES, call_targets

# Operations allowed on a tagged group whose cluster is not opted in (see the docstring).
RELEASE_OPS = {"CompleteLifecycleAction", "RecordLifecycleActionHeartbeat", "SetInstanceHealth"}
AUTOSCALING = "autoscaling"

COUNTS: dict[str, int] = {"events": 0, "checked_calls": 0, "violations": 0}


@dataclass
class Side:
    """A seeded fleet and what of it may not be changed."""

    name: str
    fleet: fl.Fleet
    ecs_forbidden: bool  # its cluster is not opted in
    group_forbidden: bool  # its group is not opted in
    half: bool = False  # tagged group, unmanaged cluster
    interfaces: set[str] = field(default_factory=set)  # its hosts' network interfaces, read once

    def identifiers(self) -> dict[str, set[str]]:
        f = self.fleet
        ecs = {f.cluster_name, f.cluster_arn, *f.service_arns.values(), *(f"{f.cluster_name}/{s}" for s in f.service_arns)}
        for inst in f.instances:
            ecs |= {inst.container_instance_arn, inst.container_instance_id}
        for tasks in f.tasks.values():
            ecs |= set(tasks)
            ecs |= {t.rsplit("/", 1)[-1] for t in tasks}
        instances = {i.ec2_instance_id for i in f.instances}
        if not self.interfaces:
            self.interfaces = {n["NetworkInterfaceId"] for r in f.ec2.describe_instances(InstanceIds=sorted(instances))[
                "Reservations"] for i in r["Instances"] for n in i.get("NetworkInterfaces", [])}
        # A host's interfaces are the host's (isolation).
        instances |= self.interfaces
        group = {f.asg_name, f.asg_arn}
        return {"ecs": ecs, "instances": instances, "group": group,
                "template": {f.launch_template_id, f.launch_template_name}}

    def violation(self, call: Call) -> set[str]:
        """What of this side ``call`` changes but may not."""
        ids = self.identifiers()
        targets = call_targets(call)
        hit: set[str] = set()
        if call.service == "ecs" and self.ecs_forbidden:
            hit |= targets & ids["ecs"]
        if call.service == "ec2":
            # A host is the cluster's (quarantine tags); a template is the group's.
            if self.ecs_forbidden:
                hit |= targets & ids["instances"]
            if self.group_forbidden or self.half:
                hit |= targets & ids["template"]
        if call.service == AUTOSCALING:
            if self.group_forbidden:
                hit |= targets & (ids["group"] | ids["instances"])
            elif self.half and call.operation not in RELEASE_OPS:
                hit |= targets & (ids["group"] | ids["instances"])
        return hit


def check_log(proxy: AwsProxy, sides: list[Side]) -> list[str]:
    problems = []
    for call in proxy.mutations():
        if call.service not in FLEET_SERVICES:
            continue  # notifications and the function's own queue
        COUNTS["checked_calls"] += 1
        for side in sides:
            hit = side.violation(call)
            if hit:
                problems.append(f"{call.service}:{call.operation} changed {side.name}'s {sorted(hit)}: {call.params}")
    COUNTS["violations"] += len(problems)
    return problems


def deliver(emulator: Any, function: str, events: list[dict[str, Any]], sides: list[Side],
            **options: Any) -> tuple[list[str], list[Call]]:
    """Runs the function behind a recording proxy (``options`` as for
    FunctionUnderTest.start) on every event; returns what touched an unmanaged resource,
    and the successful changes."""
    with AwsProxy(emulator.url) as proxy:
        with FunctionUnderTest.start(emulator, function, endpoint=proxy.url, **options) as fx:
            for event in events:
                result = fx.invoke(event, timeout=120)
                assert result.ok, result.error
                COUNTS["events"] += 1
        return check_log(proxy, sides), [c for c in proxy.mutations() if c.status == 200]


@pytest.fixture(scope="module", autouse=True)
def summary():
    yield COUNTS
    print(f"\nforeign resources: {COUNTS['events']} events aimed at unmanaged (and managed) resources, "
          f"{COUNTS['checked_calls']} state-changing calls checked, {COUNTS['violations']} touched an unmanaged resource")


def seed_sides(emulator: Any, region: str, **common: Any) -> tuple[fl.Fleet, list[Side]]:
    url = emulator.url
    managed = fl.seed_cluster(url, region, **common)
    loose = fl.seed_cluster(url, region, group_tagged=False, **common)
    foreign = fl.seed_cluster(url, region, managed=False, group_tagged=False, **common)
    half = fl.seed_cluster(url, region, managed=False, **common)
    cross = fl.seed_cluster(url, region, managed=False, group_tagged=False,
                            extra_group_tags={fl.CLUSTER_TAG: managed.cluster_name, **common.pop("extra_group_tags", {})},
                            **common)
    sides = [
        Side("loose", loose, ecs_forbidden=False, group_forbidden=True),
        Side("foreign", foreign, ecs_forbidden=True, group_forbidden=True),
        Side("half", half, ecs_forbidden=True, group_forbidden=False, half=True),
        Side("cross", cross, ecs_forbidden=True, group_forbidden=False),
    ]
    return managed, sides


def unmanaged(sides: list[Side]) -> list[fl.Fleet]:
    return [s.fleet for s in sides]


# --------------------------------------------------------------------------
# instance-drain
# --------------------------------------------------------------------------


def forged_recheck(event: dict[str, Any], fleet: fl.Fleet) -> dict[str, Any]:
    """``event`` sent back to the drain queue with progress naming ``fleet``'s cluster and
    first container instance, started long ago (every grace period over)."""
    inst = fleet.instances[0]
    forged = dict(event)
    forged["ecs-autopilot"] = {
        "checks": 3,
        "started_at": ago(minutes=30),
        "cluster": fleet.cluster_name,
        "container_instance_arn": inst.container_instance_arn,
        "tasks_at_start": 1,
        "blocking_tasks": fleet.tasks[inst.container_instance_arn],
    }
    return forged


def test_instance_drain_never_touches_unmanaged_resources(emulator, function_binary):
    seed = dict(instances=2, services=["web"], tasks_per_instance=1, standalone_tasks=2, max_size=6)
    managed, sides = seed_sides(emulator, emulator.region, **seed)
    with AwsProxy(emulator.url) as proxy:
        h = FunctionUnderTest.start(emulator, "instance-drain", endpoint=proxy.url,
                                    STANDALONE_TASK_GRACE_SECONDS="0", DRAIN_TIMEOUT_SECONDS="3600")
        try:
            events = []
            for f in unmanaged(sides):
                events.append(fl.fire_lifecycle(emulator.url, f, f.instances[0]))
                events.append(fl.fire_lifecycle(emulator.url, f, transition="launch"))
                events.append(spot_event(f.instances[1], f.region))
            for f in unmanaged(sides):
                fl.register_new_instances(f)
            # Forged re-checks: an unmanaged cluster carried on a managed group's action,
            # and on the unmanaged groups' own actions.
            managed_action = fl.fire_lifecycle(emulator.url, managed, managed.instances[0])
            forged = [forged_recheck(managed_action, s.fleet) for s in sides]
            forged += [forged_recheck(e, s.fleet) for e, s in zip(events[0::3], sides)]
            for event in events + forged:
                result = h.fn.invoke(event)
                assert result.ok, result.error
                COUNTS["events"] += 1
            h.check(times=3)
            problems = check_log(proxy, sides)
        finally:
            h.fn.stop()
    assert not problems, "\n".join(problems)
    # The managed group's own action was looked at afresh: its host is draining.
    assert ci_status(managed, managed.instances[0]) == "DRAINING"
    for side in sides:
        if side.ecs_forbidden:
            assert {ci["status"] for ci in side.fleet.container_instances()} == {"ACTIVE"}, side.name
    assert action_of(sides[0].fleet, events[0])["status"] == "active", "the untagged group's action is left alone"


def test_a_drain_recheck_stays_within_four_calls(emulator, function_binary):
    """The cost of the opt-in checks on a re-check (bench target: at most 4 AWS calls)."""
    fleet = fl.seed_cluster(emulator.url, emulator.region, instances=2, services=["web", "api"],
                            tasks_per_instance=2, daemon=True)
    with AwsProxy(emulator.url) as proxy:
        h = FunctionUnderTest.start(emulator, "instance-drain", endpoint=proxy.url)
        try:
            h.send(fl.fire_lifecycle(emulator.url, fleet, fleet.instances[0]))
            h.check()
            counts = []
            for _ in range(2):  # tasks still there: two re-checks
                proxy.clear_calls()
                h.check()
                counts.append(proxy.counts())
        finally:
            h.fn.stop()
    for n, c in enumerate(counts, 1):
        print(f"\ndrain re-check {n}: {sum(c.values())} AWS calls {dict(sorted(c.items()))}")
    assert all(sum(c.values()) <= 4 for c in counts), counts


# --------------------------------------------------------------------------
# ami-rollout
# --------------------------------------------------------------------------


def test_ami_rollout_never_touches_unmanaged_resources(emulator, function_binary):
    region = next_region()
    old, new = ami("old"), ami("new")
    param = team_parameter(emulator, region, new)
    seed = dict(instances=1, ami=old, services=(), hooks=False, extra_group_tags={PARAMETER_TAG: param})
    managed, sides = seed_sides(emulator, region, **seed)
    # Refreshes someone else started on the unmanaged groups, and how they ended.
    outcome_events = []
    for s in sides:
        s.fleet.autoscaling.start_instance_refresh(AutoScalingGroupName=s.fleet.asg_name)
        view = fl.set_refresh_status(emulator.url, s.fleet.asg_name, "Successful", region=region,
                                     replace_instances=False)
        outcome_events.append(refresh_event(region, s.fleet.asg_name, view["InstanceRefreshId"]))
        outcome_events.append(refresh_event(region, s.fleet.asg_name, view["InstanceRefreshId"], "failed"))
    events = [scheduled_event(region), parameter_event(region, param), ami_release_sns_event(), *outcome_events]
    problems, changes = deliver(emulator, "ami-rollout", events, sides, region=region, MAX_CONCURRENT_ROLLOUTS="100")
    rolled = [c for c in changes if c.operation == "StartInstanceRefresh"]
    assert not problems, "\n".join(problems)
    assert [c.params["AutoScalingGroupName"] for c in rolled] == [managed.asg_name], "the managed group is rolled"


# --------------------------------------------------------------------------
# guardduty-responder
# --------------------------------------------------------------------------


def test_guardduty_responder_never_touches_unmanaged_resources(emulator, function_binary):
    """Task findings, host findings (naming the cluster or not) and an attack sequence
    about every side's tasks and hosts, with isolation on: only the managed fleet's
    task, host, interfaces and volumes are changed."""
    managed, sides = seed_sides(emulator, emulator.region, instances=2, services=["web"], tasks_per_instance=1)
    sg = quarantine_group(managed, managed.instances[0].ec2_instance_id)
    events = [finding_event(s.fleet, service_task_on(s.fleet, s.fleet.instances[0]), severity=9.5) for s in sides]
    for s in sides:
        iid = s.fleet.instances[1].ec2_instance_id
        events += [host_finding_event(s.fleet, iid, severity=9.0),
                   host_finding_event(s.fleet, iid, with_cluster=False, severity=9.0)]
    events.append(sequence_event(sides[0].fleet,
                                 [service_task_on(s.fleet, s.fleet.instances[1]) for s in sides],
                                 [s.fleet.instances[0].ec2_instance_id for s in sides], severity=9.5))
    events.append(finding_event(managed, service_task_on(managed, managed.instances[0])))
    events.append(host_finding_event(managed, managed.instances[1].ec2_instance_id, with_cluster=False))
    problems, changes = deliver(emulator, "guardduty-responder", events, sides, QUARANTINE_SECURITY_GROUP=sg)
    assert not problems, "\n".join(problems)
    stopped = [c for c in changes if c.operation == "StopTask"]
    clusters = {c.params["cluster"] for c in stopped}
    assert managed.cluster_name in clusters or managed.cluster_arn in clusters
    ours = {i.ec2_instance_id for i in managed.instances}
    snapped = {c.params.get("InstanceSpecification.InstanceId") for c in changes if c.operation == "CreateSnapshots"}
    opted_in = ours | {i.ec2_instance_id for s in sides if not s.ecs_forbidden for i in s.fleet.instances}
    assert ours <= snapped <= opted_in, "both managed hosts (the task's and the host finding's), only opted-in clusters'"
    assert any(c.operation == "ModifyNetworkInterfaceAttribute" for c in changes)


# --------------------------------------------------------------------------
# task-retirement
# --------------------------------------------------------------------------


def test_task_retirement_never_touches_unmanaged_resources(emulator, function_binary):
    managed, sides = seed_sides(emulator, emulator.region, instances=2, services=["web"], tasks_per_instance=1)
    events = []
    for s in sides:
        f = s.fleet
        task = fl.tasks_on(f, f.instances[0])[0]["taskArn"]
        events.append(ecs_retirement_event([f"{f.cluster_name}|web", f"{f.cluster_name}/web", task]))
        events.append(ec2_retirement_event([f.instances[1].ec2_instance_id]))
        events.append(rebalance_event(f.instances[0].ec2_instance_id, f.region))
        # A deferral carried back from the queue (forged or genuine) re-checks opt-in too.
        deferred = ecs_retirement_event([f"{f.cluster_name}|web"])
        deferred["ecs-autopilot"] = {"deferrals": 4, "first_deferred_at": "2026-01-01T00:00:00Z"}
        events.append(deferred)
    events.append(ecs_retirement_event([f"{managed.cluster_name}|web"]))
    problems, changes = deliver(emulator, "task-retirement", events, sides, max_receive=None, skip_delays=False,
                                DRAIN_ON_REBALANCE="true")
    redeployed = [c for c in changes if c.operation == "UpdateService"]
    assert not problems, "\n".join(problems)
    # The untagged group's cluster is opted in: its services are redeployed too.
    assert {c.params["cluster"] for c in redeployed} == {managed.cluster_name, sides[0].fleet.cluster_name}
