"""Comparing worlds: what a fleet looks like after a function ran, and what the function
did to it, with every fleet-specific identifier replaced by a stable label, so two
identical fleets seeded apart (one given an event once, one given it twice or out of
order) can be compared with ``==``.

    labels = Labels()
    labels.add_fleet(fleet, "A")
    state = fleet_state(fleet, labels)                 # canonical, comparable
    actions = effective_mutations(proxy, labels)       # set of canonical calls
    notes = note_keys(inbox.read(), labels)            # [(action, outcome, group, instance), ...]

Also, for the foreign-resources suite, which identifiers a mutating call targets
(``call_targets``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any, Iterable

from harness.aws_proxy import AwsProxy, Call
from harness.fleet import Fleet, all_tasks, instance_refreshes, lifecycle_actions, service_of
from harness.notifications import Notification

# Outcomes a repeated or late event may add: it recognised the work as done, or as none
# of its business. Anything else repeated is a second action (or a second report of one).
BENIGN = frozenset({"already_done", "skipped"})

# Services whose calls change the fleet. SNS (notifications) and SQS (the function's own
# queue) are compared separately.
FLEET_SERVICES = ("ecs", "autoscaling", "ec2", "ssm")

_GENERIC = [
    (re.compile(r"\bi-[0-9a-f]{8,17}\b"), "i-?"),
    (re.compile(r"\bami-[0-9a-f]{8,17}\b"), "ami-?"),
    # Interfaces, volumes and snapshots are made per world, like instances.
    (re.compile(r"\beni-[0-9a-f]{8,17}\b"), "eni-?"),
    (re.compile(r"\bvol-[0-9a-f]{8,17}\b"), "vol-?"),
    (re.compile(r"\bsnap-[0-9a-f]{8,17}\b"), "snap-?"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "UUID"),
    (re.compile(r"\b[0-9a-f]{32}\b"), "HEX32"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?"), "TIME"),
]
# Request fields that differ between two identical runs for reasons of no interest.
_VOLATILE = {"Version", "LifecycleActionToken", "clientToken", "ClientToken"}


class Labels:
    """World-specific identifier -> stable label."""

    def __init__(self) -> None:
        self.map: dict[str, str] = {}

    def add(self, value: Any, label: str) -> None:
        if value:
            self.map[str(value)] = label

    def add_fleet(self, fleet: Fleet, key: str) -> None:
        """Names and ids of a seeded fleet: cluster, group, template, hooks, instances,
        container instances, services and seeded tasks."""
        self.add(fleet.cluster_arn, f"CLUSTER_ARN_{key}")
        self.add(fleet.asg_arn, f"GROUP_ARN_{key}")
        self.add(fleet.asg_name, f"GROUP_{key}")
        self.add(fleet.launch_template_id, f"LT_{key}")
        self.add(fleet.launch_template_name, f"LTNAME_{key}")
        self.add(fleet.terminate_hook, f"HOOK_T_{key}")
        self.add(fleet.launch_hook, f"HOOK_L_{key}")
        self.add(fleet.ami, f"AMI_{key}")
        for n, inst in enumerate(fleet.instances):
            self.add_instance(fleet, inst, f"{key}{n}")
        for name, arn in fleet.service_arns.items():
            self.add(arn, f"SERVICE_ARN_{key}_{name}")
        for name, arn in fleet.task_definitions.items():
            self.add(arn, f"TASKDEF_{key}_{name}")
        n = 0
        for tasks in fleet.tasks.values():
            for arn in tasks:
                self.add(arn, f"TASK_{key}{n}")
                n += 1
        # Last: the cluster name is a prefix of the group, template and hook names.
        self.add(fleet.cluster_name, f"CLUSTER_{key}")

    def add_instance(self, fleet: Fleet, inst: Any, label: str) -> None:
        self.add(inst.ec2_instance_id, f"I_{label}")
        self.add(inst.container_instance_arn, f"CI_ARN_{label}")
        self.add(inst.container_instance_id, f"CI_{label}")

    def text(self, value: Any) -> str:
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        for known in sorted(self.map, key=len, reverse=True):
            text = text.replace(known, self.map[known])
        for pattern, label in _GENERIC:
            text = pattern.sub(label, text)
        return text

    def owns(self, value: Any) -> bool:
        """Whether ``value`` names anything of this world."""
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        return any(known in text for known in self.map)

    def canon(self, items: Iterable[Any]) -> list[str]:
        """Each item labelled, then sorted: order-free comparison of lists of records."""
        return sorted(self.text(i) for i in items)


# --------------------------------------------------------------------------
# what a fleet looks like
# --------------------------------------------------------------------------


ASPECTS = ("container_instances", "tasks", "group", "lifecycle_actions", "refreshes", "templates", "instance_tags",
           "services")


def fleet_state(fleet: Fleet, labels: Labels, aspects: Iterable[str] = ASPECTS) -> dict[str, Any]:
    """Container instance statuses, task states, group membership, health, protection
    and tags, lifecycle action results, refreshes, launch template images, instance
    tags and service deployments/tags: everything a function of ecs-autopilot changes
    (or the ``aspects`` of it a test cares about)."""
    aspects = set(aspects)
    ecs = fleet.ecs
    state: dict[str, Any] = {}
    if "container_instances" in aspects:
        state["container_instances"] = labels.canon((c["ec2InstanceId"], c["status"]) for c in fleet.container_instances())
    if "tasks" in aspects:
        running = all_tasks(fleet, "RUNNING")
        stopped = all_tasks(fleet, "STOPPED")
        described = {t["taskArn"]: t for t in running + stopped}
        seeded = [arn for tasks in fleet.tasks.values() for arn in tasks]
        state["seeded_tasks"] = labels.canon(
            (arn, described.get(arn, {}).get("lastStatus"), described.get(arn, {}).get("desiredStatus")) for arn in seeded
        )
        state["running_tasks_per_service"] = dict(sorted(Counter(service_of(t) or "standalone" for t in running).items()))
    if "group" in aspects:
        groups = fleet.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[fleet.asg_name])["AutoScalingGroups"]
        for g in groups:
            state["group"] = {
                "desired": g["DesiredCapacity"],
                "instances": labels.canon(
                    (i["InstanceId"], i["LifecycleState"], i["HealthStatus"], i.get("ProtectedFromScaleIn"))
                    for i in g["Instances"]
                ),
                "tags": labels.canon((t["Key"], t["Value"]) for t in g.get("Tags", [])),
            }
    if "lifecycle_actions" in aspects:
        state["lifecycle_actions"] = labels.canon(
            (a["instance_id"], a["transition"], a["status"], a["result"])
            for a in lifecycle_actions(fleet.endpoint, fleet.region, group=fleet.asg_name)
        )
    if "refreshes" in aspects:
        state["refreshes"] = labels.canon(
            (r.get("Status"), (r.get("DesiredConfiguration") or {}).get("LaunchTemplate", {}).get("Version"))
            for r in instance_refreshes(fleet.endpoint, fleet.region, fleet.asg_name)
        )
    if "templates" in aspects:
        versions = fleet.ec2.describe_launch_template_versions(LaunchTemplateId=fleet.launch_template_id)[
            "LaunchTemplateVersions"
        ]
        state["template_images"] = labels.canon((v["VersionNumber"], v["LaunchTemplateData"].get("ImageId")) for v in versions)
    ids = [i.ec2_instance_id for i in fleet.instances]
    if "instance_tags" in aspects and ids:
        tags = fleet.ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": ids}])["Tags"]
        state["instance_tags"] = labels.canon(
            (t["ResourceId"], t["Key"], t["Value"]) for t in tags if t["Key"].startswith("ecs-autopilot:")
        )
    if "services" in aspects and fleet.service_arns:
        described_services = ecs.describe_services(cluster=fleet.cluster_name, services=list(fleet.service_arns),
                                                   include=["TAGS"])["services"]
        state["services"] = labels.canon(
            (s["serviceName"], len(s.get("deployments", [])), sorted((t["key"], t["value"]) for t in s.get("tags", [])))
            for s in described_services
        )
    return state


# --------------------------------------------------------------------------
# what a function did
# --------------------------------------------------------------------------


def canonical_call(call: Call, labels: Labels) -> str:
    params = {k: v for k, v in call.params.items() if k not in _VOLATILE}
    return labels.text([call.service, call.operation, params])


def effective_mutations(proxy: AwsProxy, labels: Labels, *, owned_only: bool = False) -> set[str]:
    """The successful state-changing calls to the fleet's services, labelled. A call AWS
    refused (a second CompleteLifecycleAction, say) changed nothing and is left out.
    ``owned_only``: only calls naming something of ``labels``' world (a check that looks
    at a whole region also sees other tests' groups)."""
    out = set()
    for c in proxy.mutations():
        if c.service not in FLEET_SERVICES or not 200 <= c.status < 300:
            continue
        if owned_only and not labels.owns(c.params):
            continue
        out.add(canonical_call(c, labels))
    return out


def note_keys(notes: list[Notification], labels: Labels, *, owned_only: bool = False) -> list[tuple[str, str, str, str]]:
    """(action, outcome, group, instance) of each notification, labelled, sorted."""
    keys = []
    for n in notes:
        if owned_only and not labels.owns([n.context.get("group"), n.context.get("cluster"), n.context.get("instance")]):
            continue
        keys.append(
            (n.action, n.outcome, labels.text(n.context.get("group") or ""), labels.text(n.context.get("instance") or ""))
        )
    return sorted(keys)


def acted(keys: list[tuple[str, str, str, str]]) -> Counter:
    """The notifications that report an action or a finding (not a benign repeat)."""
    return Counter(k for k in keys if k[1] not in BENIGN)


# --------------------------------------------------------------------------
# foreign resources: what a mutating call targets
# --------------------------------------------------------------------------

# Request fields (JSON and Query protocols) that name the resource a call changes.
_TARGET_FIELDS = re.compile(
    r"^(cluster|containerInstances|containerInstance|task|service|resourceArn|"
    r"AutoScalingGroupName|InstanceId|InstanceIds(\.member\.\d+)?|ResourceId(\.\d+)?|"
    r"Tags\.member\.\d+\.ResourceId|LaunchTemplateId|LaunchTemplateName|"
    # guardduty-responder's evidence and isolation: CreateSnapshots, ModifyNetworkInterfaceAttribute
    r"InstanceSpecification\.InstanceId|NetworkInterfaceId)$"
)


def call_targets(call: Call) -> set[str]:
    """Every identifier a call names in a field that designates what it changes
    (cluster, container instance, task, service, group, instance, template)."""
    out: set[str] = set()

    def collect(value: Any) -> None:
        if isinstance(value, str):
            out.add(value)
            if value.startswith("arn:aws:ecs:"):
                # cluster/NAME, container-instance/CLUSTER/ID, task/CLUSTER/ID, service/CLUSTER/NAME
                parts = value.split(":", 5)[-1].split("/")
                out.update(parts[1:])
        elif isinstance(value, list):
            for v in value:
                collect(v)

    for key, value in call.params.items():
        if _TARGET_FIELDS.match(key):
            collect(value)
    # A service is named within its cluster: "web" alone names no one service.
    service, cluster = call.params.get("service"), call.params.get("cluster")
    if isinstance(service, str) and isinstance(cluster, str) and not service.startswith("arn:"):
        out.discard(service)
        out.add(f"{cluster.rsplit('/', 1)[-1]}/{service}")
    return out
