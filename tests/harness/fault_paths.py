"""The event paths the fault and secrets suites drive, and one *trial* of a path: a
fresh fleet, a recording proxy with the given faults, the function fed the path's event
the way its trigger does (harness.functions), and what came of it.

    clean = run_trial(emulator, PATHS[0], Fault("clean"))
    t = run_trial(emulator, PATHS[0], Fault("persistent", "ecs:ListTasks", "503"))
    t.delivery.dead_lettered, t.notes, t.state, t.calls
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

from . import fleet as fl
from .ami_rollout_helpers import PARAMETER_TAG, refreshes, team_parameter
from .aws_proxy import AwsProxy, Call
from .delivery import Delivery
from .events import ami, ecs_retirement_event, finding_event, parameter_event, spot_event
from .functions import FunctionUnderTest
from .guardduty_responder_helpers import QUARANTINE_TAG, group_of, instance_tags, service_task_on
from .task_retirement_helpers import deployment_ids, service_tags

TRANSIENT = ("throttle", "500", "503")
CODES = {"throttle": ("Throttling", "ThrottlingException", "RequestLimitExceeded"), "500": ("InternalFailure",),
         "503": ("ServiceUnavailable",), "timeout": ("Timeout", "DispatchFailure", "ResponseError")}
# Boto clients are created from one default session, which is not thread-safe: every
# seeding step and state read takes this lock; the deliveries themselves run in parallel.
BOTO = threading.Lock()


# --------------------------------------------------------------------------
# the paths
# --------------------------------------------------------------------------


@dataclass
class Scenario:
    region: str
    event: dict[str, Any]
    state: Callable[[], Any]  # what the path changes, free of generated names


@dataclass
class Path:
    name: str
    function: str
    seed: Callable[[Any], Scenario]
    env: dict[str, str] = field(default_factory=dict)


def _drain_lifecycle(emulator: Any) -> Scenario:
    fleet = fl.seed_cluster(emulator.url, instances=2, services=["web"], tasks_per_instance=0)
    victim = fleet.instances[0]
    event = fl.fire_lifecycle(fleet.endpoint, fleet, victim)
    token = event["detail"]["LifecycleActionToken"]

    def state() -> Any:
        arn = fleet.container_instance_arn(victim)
        ci = fleet.ecs.describe_container_instances(cluster=fleet.cluster_name, containerInstances=[arn])
        (action,) = fl.lifecycle_actions(fleet.endpoint, fleet.region, token=token)
        # Completing the action terminates the host: its container instance goes with it.
        found = ci["containerInstances"]
        return {"container_instance": found[0]["status"] if found else "gone",
                "lifecycle": (action["status"], action.get("result"))}

    return Scenario(fleet.region, event, state)


def _drain_spot(emulator: Any) -> Scenario:
    fleet = fl.seed_cluster(emulator.url, instances=2, services=["web"], tasks_per_instance=1)
    victim = fleet.instances[1]
    event = spot_event(victim, fleet.region)

    def state() -> Any:
        arn = fleet.container_instance_arn(victim)
        ci = fleet.ecs.describe_container_instances(cluster=fleet.cluster_name, containerInstances=[arn])
        return {"container_instance": ci["containerInstances"][0]["status"]}

    return Scenario(fleet.region, event, state)


def _ami_parameter(emulator: Any) -> Scenario:
    # A parameter change looks only at the groups following that (unique) parameter, so
    # unlike a scheduled check it can share the region with other tests' groups.
    region = emulator.region
    old, new = ami("old"), ami("new")
    param = team_parameter(emulator, region, new)
    fleet = fl.seed_cluster(emulator.url, region=region, instances=2, ami=old, services=(), hooks=False,
                            extra_group_tags={PARAMETER_TAG: param})

    def state() -> Any:
        versions = fleet.ec2.describe_launch_template_versions(LaunchTemplateId=fleet.launch_template_id)[
            "LaunchTemplateVersions"]
        images = Counter(v["LaunchTemplateData"].get("ImageId") == new for v in versions)
        return {"template_versions_with_new_ami": images[True], "template_versions": len(versions),
                "refreshes": [r.get("Status") for r in refreshes(emulator, region, fleet.asg_name)]}

    return Scenario(region, parameter_event(region, param), state)


def _guardduty_finding(emulator: Any) -> Scenario:
    fleet = fl.seed_cluster(emulator.url, instances=2, services=["web"], tasks_per_instance=2)
    host = fleet.instances[0]
    task = service_task_on(fleet, host)

    def state() -> Any:
        t = fleet.ecs.describe_tasks(cluster=fleet.cluster_name, tasks=[task])["tasks"][0]
        ci = fleet.ecs.describe_container_instances(cluster=fleet.cluster_name,
                                                    containerInstances=[host.container_instance_arn])
        return {"task": t["desiredStatus"], "container_instance": ci["containerInstances"][0]["status"],
                "quarantine_tag": QUARANTINE_TAG in instance_tags(fleet, host.ec2_instance_id),
                "in_group": group_of(fleet, host.ec2_instance_id) is not None}

    return Scenario(fleet.region, finding_event(fleet, task), state)


def _retirement(emulator: Any) -> Scenario:
    fleet = fl.seed_cluster(emulator.url, instances=1, services=["web"])
    before = deployment_ids(fleet.ecs, fleet.cluster_name, "web")

    def state() -> Any:
        now = deployment_ids(fleet.ecs, fleet.cluster_name, "web")
        return {"new_deployments": len(set(now) - set(before)),
                "handled_tag": "ecs-autopilot:retirement-handled" in service_tags(fleet.ecs, fleet.cluster_name, "web")}

    return Scenario(fleet.region, ecs_retirement_event([f"{fleet.cluster_name}|web"]), state)


PATHS = [
    Path("drain: terminate lifecycle action", "instance-drain", _drain_lifecycle),
    Path("drain: spot interruption", "instance-drain", _drain_spot),
    # Trials run side by side in one region: the rollout budget must not make one
    # trial's refresh hold up another's.
    Path("ami-rollout: parameter change", "ami-rollout", _ami_parameter, {"MAX_CONCURRENT_ROLLOUTS": "1000"}),
    Path("guardduty: runtime finding", "guardduty-responder", _guardduty_finding),
    Path("retirement: ECS task retirement", "task-retirement", _retirement),
]


# --------------------------------------------------------------------------
# one trial: a fresh fleet, a proxy with faults, the event delivered
# --------------------------------------------------------------------------


@dataclass
class Fault:
    category: str  # "clean" | "transient" | "timeout" | "persistent" | "lost-response"
    op: str = ""  # "service:Operation"
    kind: str = ""

    def inject(self, proxy: AwsProxy) -> None:
        if not self.op:
            return
        service, operation = self.op.split(":")
        if self.category == "transient":
            for kind in TRANSIENT:
                proxy.inject(kind, service=service, operation=operation, times=1)
        elif self.category == "persistent":
            proxy.inject(self.kind, service=service, operation=operation)
        else:
            proxy.inject(self.kind, service=service, operation=operation, times=1)

    def __str__(self) -> str:
        return f"{self.category} {self.kind} on {self.op}" if self.op else self.category


@dataclass
class Trial:
    path: Path
    fault: Fault
    delivery: Delivery
    calls: list[Call]
    notes: list[tuple[str, str]]
    state: Any
    replay: Delivery | None = None
    replay_notes: list[tuple[str, str]] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)
    panicked: bool = False
    output: str = ""  # every line the process wrote
    notifications: list[Any] = field(default_factory=list)  # harness.notifications.Notification

    def applied(self) -> Counter:
        """Writes that took effect (answered 200, or applied with the answer lost)."""
        return Counter(f"{c.service}:{c.operation}" for c in self.calls
                       if c.mutating and (c.status == 200 or c.fault == "lost-response"))


def run_trial(emulator: Any, path: Path, fault: Fault, **env: str) -> Trial:
    """One delivery of the path's event on a fresh fleet with ``fault`` injected; a
    dead-lettered event is then replayed with the fault gone (as an operator would)."""
    with AwsProxy(emulator.url) as proxy:
        with BOTO:
            scenario = path.seed(emulator)
            fx = FunctionUnderTest.start(emulator, path.function, endpoint=proxy.url, region=scenario.region,
                                         **{**path.env, **env})
        try:
            fault.inject(proxy)
            delivery = fx.deliver(scenario.event)
            calls = proxy.calls()
            first = fx.inbox.read(wait=0.3)
            replay, later = None, []
            if delivery.dead_lettered:
                proxy.clear_faults()
                replay = fx.deliver(json.loads(delivery.dead_letters[0]))
                later = fx.inbox.read(wait=0.3)
            with BOTO:
                state = scenario.state()
            return Trial(path, fault, delivery, calls, _notes(first), state, replay, _notes(later),
                         fx.fn.json_logs(), fx.panicked(), fx.fn.output(), first + later)
        finally:
            fx.stop()


def _notes(notes: list[Any]) -> list[tuple[str, str]]:
    return [(n.action, n.outcome) for n in notes]
