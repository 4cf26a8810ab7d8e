"""Replay: every event kind of every function, delivered once in order on one fleet, and
twice (back to back), late (the whole sequence again after it settled) or out of order
on an identical fresh fleet. Acting twice must be harmless:

* the fleets end in the same state (harness.replay_helpers.fleet_state);
* the same set of successful state-changing calls was made (ids labelled per fleet);
* the notifications that report an action (or a finding) are the same; a repeat only
  adds `already_done` or `skipped` ones.

Each function runs behind the recording proxy (harness.aws_proxy). Run with ``-s`` for
the summary: replays tried and wrong actions (must be 0).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import pytest

from harness import fleet as fl
from harness.functions import FunctionUnderTest
from harness.ami_rollout_helpers import PARAMETER_TAG, next_region, set_group_tag, team_parameter
from harness.aws_proxy import AwsProxy
from harness.events import (
    FARGATE_FINDING, MEDIUM_FINDING, REFRESH_PHASES, ami, ami_release_sns_event, closed_window,
    ec2_retirement_event, ecs_retirement_event, finding_event, hook_test_notification, host_finding_event,
    parameter_event, rebalance_event, refresh_event, scheduled_event, sequence_event, spot_event,
    window_around_now, window_guard_event,
)
from harness.guardduty_responder_helpers import quarantine_group, service_task_on
from harness.iam import ROLES, allowed_actions, is_allowed, required_actions
from harness.replay_helpers import ASPECTS, Labels, acted, effective_mutations, fleet_state, note_keys

REFRESH_PHASES.setdefault("started", "EC2 Auto Scaling Instance Refresh Started")
REFRESH_PHASES.setdefault("checkpoint", "EC2 Auto Scaling Instance Refresh Checkpoint Reached")

# The least-privilege check at the end needs every scenario's calls in one process, run
# before it: under `make test` this file is one unit of work, run by one worker in file
# order (tests/conftest.py, ONE_WORKER).

# service:Operation of every AWS call each function made, for the IAM check at the end.
CALLED: dict[str, set[str]] = {}
# ... and what those calls also need, given their arguments (harness.iam.IMPLIED).
NEEDED: dict[str, set[str]] = {}

SUMMARY: dict[str, Any] = {"replays": 0, "events": 0, "wrong": 0, "known": 0, "by_function": {}}

Prepare = Callable[["World"], dict]


@dataclass
class World:
    """One fleet, one function process behind a recording proxy, its inbox (and queue)."""

    function: str
    fleets: list[fl.Fleet]
    labels: Labels
    proxy: AwsProxy
    fx: FunctionUnderTest
    region: str = "us-east-1"
    owned_only: bool = False  # the function looks at a whole region: compare only this world's part
    aspects: tuple[str, ...] = ASPECTS  # what of the fleet the function may change
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fleet(self) -> fl.Fleet:
        return self.fleets[0]

    def deliver(self, event: dict) -> None:
        result = self.fx.invoke(event, timeout=120)
        assert result.ok, (self.function, event.get("detail-type"), result.error)

    def settle(self) -> None:
        """Plays what happens after an invocation until nothing is left to do: the
        function's re-queued checks (due at once: poll 0), and ECS moving tasks off
        DRAINING hosts."""
        if self.function != "instance-drain" or self.fx.queue is None:
            return
        for _ in range(8):
            fl.play_scheduler(self.fleet, stop_daemons=False)
            if not self.fx.check(3):
                return
        raise AssertionError("instance-drain kept re-checking")

    def outcome(self) -> tuple[dict, set[str], list]:
        notes = self.fx.inbox.read(wait=0.4)
        state = {f.asg_name: fleet_state(f, self.labels, self.aspects) for f in self.fleets}
        state = {self.labels.text(k): v for k, v in state.items()}
        return state, effective_mutations(self.proxy, self.labels, owned_only=self.owned_only), note_keys(
            notes, self.labels, owned_only=self.owned_only
        )

    def close(self) -> None:
        self.fx.stop()
        self.proxy.stop()
        calls = self.proxy.calls()
        CALLED.setdefault(self.function, set()).update(f"{c.service}:{c.operation}" for c in calls)
        NEEDED.setdefault(self.function, set()).update(
            required_actions((f"{c.service}:{c.operation}", c.params) for c in calls))


@dataclass
class Scenario:
    name: str
    function: str
    make: Callable[[Any, Any], World]  # (emulator, binary) -> a fresh world, seeded
    events: list[Prepare]  # prepared right before delivery, in order
    modes: tuple[str, ...] = ("twice",)
    quiet: bool = False  # the event is only logged: nothing to see even once
    # Mode "reordered": these events instead (updates of the same notice or finding, out
    # of order), compared with one in-order delivery of ``events``.
    reordered: list[Prepare] = field(default_factory=list)

    def __str__(self) -> str:
        return self.name


def run_mode(scenario: Scenario, mode: str, emulator: Any, binary: Any) -> tuple[dict, set[str], list]:
    world = scenario.make(emulator, binary)
    try:
        if mode == "reordered":
            for prepare in scenario.reordered:
                world.deliver(prepare(world))
                world.settle()
        elif mode == "reversed":
            events = [prepare(world) for prepare in scenario.events]
            for event in reversed(events):
                world.deliver(event)
                world.settle()
        else:
            delivered = []
            for prepare in scenario.events:
                event = prepare(world)
                delivered.append(event)
                world.deliver(event)
                if mode == "twice":
                    world.deliver(event)
                world.settle()
            if mode == "late":
                for event in delivered:
                    world.deliver(event)
                    world.settle()
        return world.outcome()
    finally:
        world.close()


# --------------------------------------------------------------------------
# worlds
# --------------------------------------------------------------------------


def _proxy(emulator: Any) -> AwsProxy:
    return AwsProxy(emulator.url).start()


def drain_world(**seed: Any) -> Callable[[Any, Any], World]:
    def make(emulator: Any, binary: Any) -> World:
        fleet = fl.seed_cluster(emulator.url, emulator.region, **seed)
        labels = Labels()
        labels.add_fleet(fleet, "A")
        proxy = _proxy(emulator)
        h = FunctionUnderTest.start(emulator, "instance-drain", binary=binary, endpoint=proxy.url, STANDALONE_TASK_GRACE_SECONDS="0")
        return World("instance-drain", [fleet], labels, proxy, h,
                     aspects=("container_instances", "tasks", "group", "lifecycle_actions"))

    return make


_ROLLOUT_REGION: list[str] = []


def rollout_region() -> str:
    """One region for every ami-rollout world here (a first look at a region is slow in
    moto); checks that look at the whole region are compared on their own group only."""
    if not _ROLLOUT_REGION:
        _ROLLOUT_REGION.append(next_region())
    return _ROLLOUT_REGION[0]


def rollout_world(*, drifted: bool = True, **env: str) -> Callable[[Any, Any], World]:
    """A managed group on an old AMI whose team parameter names a new one, in a region of
    its own (scheduled checks look at the whole region)."""

    def make(emulator: Any, binary: Any) -> World:
        region = rollout_region()
        old, new = ami("old"), ami("new")
        param = team_parameter(emulator, region, new if drifted else old)
        fleet = fl.seed_cluster(emulator.url, region, instances=2, ami=old, services=(), hooks=False,
                                extra_group_tags={PARAMETER_TAG: param})
        labels = Labels()
        labels.add_fleet(fleet, "A")
        labels.add(new, "AMI_NEW")
        labels.add(param, "PARAM")
        proxy = _proxy(emulator)
        fx = FunctionUnderTest.start(emulator, "ami-rollout", binary=binary, endpoint=proxy.url, region=region,
                                     MAX_CONCURRENT_ROLLOUTS="1000", **env)
        return World("ami-rollout", [fleet], labels, proxy, fx, region=region, owned_only=True,
                     extra={"parameter": param, "new": new},
                     aspects=("container_instances", "group", "refreshes", "templates"))

    return make


def responder_world(isolate: bool = False, **env: str) -> Callable[[Any, Any], World]:
    def make(emulator: Any, binary: Any) -> World:
        fleet = fl.seed_cluster(emulator.url, emulator.region, instances=2, services=["web"], tasks_per_instance=2)
        labels = Labels()
        labels.add_fleet(fleet, "A")
        finding = uuid.uuid4().hex
        labels.add(finding, "FINDING")
        if isolate:
            env["QUARANTINE_SECURITY_GROUP"] = quarantine_group(fleet, fleet.instances[0].ec2_instance_id)
            labels.add(env["QUARANTINE_SECURITY_GROUP"], "QUARANTINE_SG")
        proxy = _proxy(emulator)
        fx = FunctionUnderTest.start(emulator, "guardduty-responder", binary=binary, endpoint=proxy.url, **env)
        return World("guardduty-responder", [fleet], labels, proxy, fx, extra={"finding": finding},
                     aspects=("container_instances", "tasks", "group", "instance_tags"))

    return make


def retirement_world(services: tuple[str, ...] = ("web",), standalone: int = 0, min_healthy: int | None = None,
                     **env: str) -> Callable[[Any, Any], World]:
    def make(emulator: Any, binary: Any) -> World:
        fleet = fl.seed_cluster(emulator.url, emulator.region, instances=2, services=services,
                                standalone_tasks=standalone)
        if min_healthy is not None:
            for svc in services:
                fleet.ecs.update_service(cluster=fleet.cluster_name, service=svc,
                                         deploymentConfiguration={"minimumHealthyPercent": min_healthy})
        labels = Labels()
        labels.add_fleet(fleet, "A")
        proxy = _proxy(emulator)
        fx = FunctionUnderTest.start(emulator, "task-retirement", binary=binary, endpoint=proxy.url, max_receive=None,
                                     skip_delays=False, **env)
        return World("task-retirement", [fleet], labels, proxy, fx,
                     aspects=("tasks", "group", "services"))

    return make


# --------------------------------------------------------------------------
# events, prepared against a world
# --------------------------------------------------------------------------


def terminate(n: int) -> Prepare:
    return lambda w: fl.fire_lifecycle(w.fleet.endpoint, w.fleet, w.fleet.instances[n])


def launch_joined(w: World) -> dict:
    event = fl.fire_lifecycle(w.fleet.endpoint, w.fleet, transition="launch")
    for inst in fl.register_new_instances(w.fleet):
        w.labels.add_instance(w.fleet, inst, "A_new")
    return event


def spot(n: int) -> Prepare:
    return lambda w: spot_event(w.fleet.instances[n], w.fleet.region)


def spot_outside_any_group(w: World) -> dict:
    """A spot warning for a host detached from its group: its cluster is found by looking
    in every managed cluster (ecs:ListClusters)."""
    inst = w.fleet.instances[1]
    w.fleet.autoscaling.detach_instances(
        InstanceIds=[inst.ec2_instance_id], AutoScalingGroupName=w.fleet.asg_name, ShouldDecrementDesiredCapacity=True
    )
    return spot_event(inst.ec2_instance_id, w.fleet.region)


def param_change(w: World) -> dict:
    return parameter_event(w.region, w.extra["parameter"])


def window_closes(w: World) -> dict:
    """A refresh ami-rollout started (marked with its refresh tag) is running when the
    window guard finds the window about to close."""
    if "refresh" not in w.extra:
        w.extra["refresh"] = w.fleet.autoscaling.start_instance_refresh(
            AutoScalingGroupName=w.fleet.asg_name)["InstanceRefreshId"]
        set_group_tag(w.fleet, "ecs-autopilot:rollout-refresh", w.extra["refresh"])
    return window_guard_event(w.region)


def refresh_phase(phase: str, status: str | None = None) -> Prepare:
    def prepare(w: World) -> dict:
        if "refresh" not in w.extra:
            w.deliver(param_change(w))  # the rollout this refresh belongs to
            w.extra["refresh"] = fl.instance_refreshes(w.fleet.endpoint, w.region, w.fleet.asg_name)[-1][
                "InstanceRefreshId"
            ]
        if status and not w.extra.get("ended"):
            w.extra["ended"] = True
            fl.set_refresh_status(w.fleet.endpoint, w.fleet.asg_name, status, region=w.region,
                                  **({"status_reason": "Instances failed to join"} if status == "Failed" else {}))
            if status == "Successful":
                for inst in fl.register_new_instances(w.fleet):
                    w.labels.add_instance(w.fleet, inst, "A_new")
        return refresh_event(w.region, w.fleet.asg_name, w.extra["refresh"], phase)

    return prepare


def finding(count: int, template: str | None = None, **kw: Any) -> Prepare:
    def prepare(w: World) -> dict:
        if "task" not in w.extra:
            if template == FARGATE_FINDING:
                w.extra["task"] = w.fleet.ecs.run_task(cluster=w.fleet.cluster_name,
                                                       taskDefinition=w.fleet.task_definitions["web"],
                                                       launchType="FARGATE", count=1)["tasks"][0]["taskArn"]
                w.labels.add(w.extra["task"], "FARGATE_TASK")
            else:
                w.extra["task"] = service_task_on(w.fleet, w.fleet.instances[0])
        args = dict(kw)
        if template:
            args["template"] = template
        event = finding_event(w.fleet, w.extra["task"], finding_id=w.extra["finding"], count=count, **args)
        if template == FARGATE_FINDING:
            event["detail"]["resource"].pop("instanceDetails", None)
            event["detail"]["resource"]["ecsClusterDetails"]["taskDetails"]["launchType"] = "FARGATE"
        return event

    return prepare


def host_finding(w: World) -> dict:
    # No cluster in the finding: the host is looked for among the managed clusters.
    return host_finding_event(w.fleet, w.fleet.instances[0].ec2_instance_id, with_cluster=False,
                              finding_id=w.extra["finding"])


def attack_sequence(w: World) -> dict:
    if "task" not in w.extra:
        w.extra["task"] = service_task_on(w.fleet, w.fleet.instances[0])
    host = w.fleet.instances[0].ec2_instance_id
    return sequence_event(w.fleet, [w.extra["task"]], [host], finding_id=w.extra["finding"])


RETIREMENT_ARN = "arn:aws:health:us-east-1::event/ECS/AWS_ECS_TASK_PATCHING_RETIREMENT/replay-{}"


def ecs_notice(version: int = 0, starts_in: timedelta = timedelta(days=7)) -> Prepare:
    def prepare(w: World) -> dict:
        return ecs_retirement_event(
            [f"{w.fleet.cluster_name}|web"],
            event_arn=RETIREMENT_ARN.format("ecs"),
            starts_in=starts_in,
            updated_at=datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(hours=version),
        )

    return prepare


def fresh_ecs_notice(w: World) -> dict:
    """Updated a second from now, so the service's running tasks started before it (stop-tasks retires them)."""
    return ecs_retirement_event(
        [f"{w.fleet.cluster_name} | web"], event_arn=RETIREMENT_ARN.format("stop-tasks"),
        updated_at=datetime.now(timezone.utc) + timedelta(seconds=1))


def standalone_notice(w: World) -> dict:
    return ecs_retirement_event(w.fleet.standalone_tasks[:1], event_arn=RETIREMENT_ARN.format("standalone"))


def old_format_task_notice(w: World) -> dict:
    """A service task named by the old ARN format (task/<id>), which names no cluster: it is
    looked for in every managed cluster (ecs:ListClusters)."""
    arn = next(a for arns in w.fleet.tasks.values() for a in arns)
    prefix, _, rest = arn.partition(":task/")
    return ecs_retirement_event([f"{prefix}:task/{rest.split('/')[-1]}"], event_arn=RETIREMENT_ARN.format("old-arn"))


def ec2_notice(w: World) -> dict:
    return ec2_retirement_event([w.fleet.instances[0].ec2_instance_id],
                                event_arn=RETIREMENT_ARN.format("ec2").replace("ECS", "EC2"))


def rebalance(w: World) -> dict:
    return rebalance_event(w.fleet.instances[1].ec2_instance_id, w.fleet.region)


# --------------------------------------------------------------------------
# the scenarios
# --------------------------------------------------------------------------


def _launch_then_terminate() -> list[Prepare]:
    def terminate_new(w: World) -> dict:
        new = [i for i in w.fleet.instances if w.labels.map.get(i.ec2_instance_id) == "I_A_new"]
        return fl.fire_lifecycle(w.fleet.endpoint, w.fleet, new[0])

    return [launch_joined, terminate_new]


SCENARIOS = [
    # instance-drain
    Scenario("drain: terminate a busy host", "instance-drain",
             drain_world(instances=2, services=["web", "api"], daemon=True), [terminate(0)]),
    Scenario("drain: terminate a host with a standalone task", "instance-drain",
             drain_world(instances=2, services=["web"], standalone_tasks=1), [terminate(0)]),
    Scenario("drain: two hosts terminated", "instance-drain",
             drain_world(instances=3, services=["web"]), [terminate(0), terminate(1)], modes=("reversed",)),
    Scenario("drain: launch, then terminate the same instance", "instance-drain",
             drain_world(instances=1, services=["web"], tasks_per_instance=0, max_size=4),
             _launch_then_terminate(), modes=("late",)),
    Scenario("drain: spot interruption", "instance-drain",
             drain_world(instances=2, services=["web"]), [spot(1)]),
    Scenario("drain: spot interruption of a host outside any group", "instance-drain",
             drain_world(instances=2, services=["web"]), [spot_outside_any_group]),
    Scenario("drain: hook test notification", "instance-drain",
             drain_world(instances=1, services=[]), [lambda w: hook_test_notification(w.fleet.asg_name)], quiet=True),
    # ami-rollout
    Scenario("rollout: parameter change", "ami-rollout", rollout_world(), [param_change]),
    Scenario("rollout: scheduled check", "ami-rollout", rollout_world(), [lambda w: scheduled_event(w.region)]),
    Scenario("rollout: ECS AMI release (SNS)", "ami-rollout", rollout_world(), [lambda w: ami_release_sns_event()]),
    Scenario("rollout: refresh started, checkpoint, succeeded", "ami-rollout", rollout_world(),
             [refresh_phase("started"), refresh_phase("checkpoint"), refresh_phase("succeeded", "Successful")],
             modes=("twice", "reversed")),
    Scenario("rollout: refresh failed", "ami-rollout", rollout_world(), [refresh_phase("failed", "Failed")]),
    Scenario("rollout: the window guard halts a refresh at the close", "ami-rollout",
             rollout_world(MAINTENANCE_WINDOW=window_around_now(200, 20), WINDOW_END_MARGIN_SECONDS="1800"),
             [window_closes]),
    # guardduty-responder
    Scenario("finding: high, EC2 (count 1; then 1, 3, 2)", "guardduty-responder", responder_world(),
             [finding(1)], modes=("reordered",), reordered=[finding(1), finding(3), finding(2)]),
    Scenario("finding: high, Fargate", "guardduty-responder", responder_world(),
             [finding(1, FARGATE_FINDING, severity=8.0)]),
    Scenario("finding: medium (notify only)", "guardduty-responder", responder_world(), [finding(1, MEDIUM_FINDING)]),
    Scenario("finding: sample", "guardduty-responder", responder_world(), [finding(1, sample=True)]),
    Scenario("finding: high, EC2, isolated first", "guardduty-responder", responder_world(isolate=True), [finding(1)]),
    Scenario("finding: host itself (resourceType Instance)", "guardduty-responder", responder_world(isolate=True),
             [host_finding], modes=("twice", "late")),
    Scenario("finding: attack sequence", "guardduty-responder", responder_world(), [attack_sequence],
             modes=("twice", "late")),
    Scenario("finding: attack sequence, isolated first", "guardduty-responder", responder_world(isolate=True),
             [attack_sequence]),
    # task-retirement
    Scenario("retirement: ECS task patching (an update, the notice, the update again)", "task-retirement",
             retirement_world(), [ecs_notice(0)], modes=("reordered",), reordered=[ecs_notice(1), ecs_notice(0), ecs_notice(1)]),
    Scenario("retirement: standalone task", "task-retirement",
             retirement_world(services=(), standalone=1), [standalone_notice]),
    Scenario("retirement: task named by its old-format ARN", "task-retirement", retirement_world(), [old_format_task_notice]),
    Scenario("retirement: EC2 instance retirement", "task-retirement", retirement_world(), [ec2_notice]),
    Scenario("retirement: rebalance recommendation", "task-retirement",
             retirement_world(DRAIN_ON_REBALANCE="true"), [rebalance]),
    Scenario("retirement: stop-tasks in batches (RETIREMENT_REPLACE=stop-tasks)", "task-retirement",
             retirement_world(min_healthy=50, RETIREMENT_REPLACE="stop-tasks"), [fresh_ecs_notice]),
    Scenario("retirement: outside the window (deferred)", "task-retirement",
             retirement_world(MAINTENANCE_WINDOW=closed_window(3)), [ecs_notice(0)]),
    Scenario("retirement: EC2 instance outside the window (deferred)", "task-retirement",
             retirement_world(MAINTENANCE_WINDOW=closed_window(3)), [ec2_notice]),
]


# Known gaps, each strict (an xfail that starts passing fails the run): scenario name ->
# what a repeated delivery still does wrong. None now.
KNOWN_GAPS: dict[str, str] = {}
SCENARIO_PARAMS = [
    pytest.param(s, id=str(s), marks=[pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[s.name])] if s.name in KNOWN_GAPS else [])
    for s in SCENARIOS
]


@pytest.fixture(scope="module", autouse=True)
def summary():
    yield SUMMARY
    print(f"\nreplay summary: {SUMMARY['replays']} replays ({SUMMARY['events']} event deliveries) "
          f"over {len(SCENARIOS)} scenarios; wrong actions: {SUMMARY['wrong']} (known: {SUMMARY['known']})")
    for fn, counts in sorted(SUMMARY["by_function"].items()):
        print(f"  {fn}: {counts['replays']} replays, {counts['wrong']} wrong")


def differences(once: tuple, other: tuple) -> list[str]:
    state1, calls1, notes1 = once
    state2, calls2, notes2 = other
    found = []
    if state1 != state2:
        keys = sorted(k for k in set(state1) | set(state2) if state1.get(k) != state2.get(k))
        for k in keys:
            s1, s2 = state1.get(k) or {}, state2.get(k) or {}
            found += [f"state {k}.{f}: {s1.get(f)} != {s2.get(f)}" for f in sorted(set(s1) | set(s2)) if s1.get(f) != s2.get(f)]
    if calls1 != calls2:
        found.append(f"calls only once: {sorted(calls1 - calls2)}; only replayed: {sorted(calls2 - calls1)}")
    if acted(notes1) != acted(notes2):
        found.append(f"notifications once: {sorted(acted(notes1).elements())}; replayed: {sorted(acted(notes2).elements())}")
    return found


@pytest.mark.parametrize("scenario", SCENARIO_PARAMS)
def test_a_replayed_event_changes_nothing_more_than_one_delivery(scenario, emulator, function_binary, request):
    binary = function_binary(scenario.function)
    known_gap = request.node.get_closest_marker("xfail") is not None
    once = run_mode(scenario, "once", emulator, binary)
    assert scenario.quiet or once[1] or once[2], "the single delivery did something to compare against"
    problems = {}
    for mode in scenario.modes:
        replayed = run_mode(scenario, mode, emulator, binary)
        if mode == "reordered":
            deliveries = len(scenario.reordered)
        else:
            deliveries = len(scenario.events) * (2 if mode in ("twice", "late") else 1)
        SUMMARY["replays"] += 1
        SUMMARY["events"] += deliveries
        per = SUMMARY["by_function"].setdefault(scenario.function, {"replays": 0, "wrong": 0})
        per["replays"] += 1
        found = differences(once, replayed)
        if found:
            SUMMARY["known" if known_gap else "wrong"] += 1
            per["wrong"] += 1
            problems[mode] = found
    assert not problems, problems


def test_each_role_grants_exactly_the_calls_its_function_makes():
    """Runs after the scenarios above (file order): every call a function made in them,
    and every action AWS also checks for those calls given their arguments (harness.iam's
    IMPLIED table: a refresh to a launch template version needs ec2:RunInstances,
    iam:PassRole, ...), is granted by its role in template.yaml; and every grant its code
    needs (all but Lambda's own: logs, queue polling, dead letters, the topic key) was
    called or implied there."""
    if set(CALLED) != set(ROLES):
        pytest.skip("needs the replay scenarios of every function in the same run")
    problems = []
    for function, called in sorted(CALLED.items()):
        calls = NEEDED.get(function, set()) | called
        granted = allowed_actions(function)
        missing = sorted(c for c in calls if not is_allowed(c, granted))
        unexplained = sorted(granted - calls)
        print(f"{function}: {len(called)} operations called, {len(calls - called)} implied, {len(granted)} granted")
        if missing:
            problems.append(f"{function} called {missing}, which its role does not grant")
        if unexplained:
            problems.append(f"{function}'s role grants {unexplained}, never called")
    assert not problems, "\n".join(problems)
