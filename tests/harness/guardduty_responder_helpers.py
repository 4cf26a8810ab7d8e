"""GuardDuty findings for guardduty-responder's integration tests and demo.

    event = finding_event(fleet, task_arn)                  # High reverse shell, EC2
    event = finding_event(fleet, task_arn, severity=9.5)    # Critical
    fn = LambdaProcess(binary, env=responder_env(emulator, inbox.topic_arn))

Events are built from the AWS-shaped fixtures in tests/fixtures/guardduty-*.json, with
the cluster, task, task definition and host replaced by those of a seeded fleet.
"""

from __future__ import annotations

import copy
import json
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
EC2_FINDING = "guardduty-reverse-shell-ec2.json"
FARGATE_FINDING = "guardduty-bitcoin-tool-fargate.json"
MEDIUM_FINDING = "guardduty-docker-socket-medium.json"
SAMPLE_FINDING = "guardduty-sample-finding.json"
STOP_REASON_PREFIX = "ecs-autopilot guardduty-responder:"
QUARANTINE_TAG = "ecs-autopilot:quarantine"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def finding_event(
    fleet: Any,
    task_arn: str,
    *,
    template: str = EC2_FINDING,
    severity: float | None = None,
    finding_id: str | None = None,
    count: int | None = None,
    sample: bool | None = None,
    process_name: str | None = None,
    command_line: str | None = None,
) -> dict[str, Any]:
    """The `GuardDuty Finding` event GuardDuty would send about ``task_arn`` of ``fleet``
    (its cluster, task definition, group, launch type and host filled in from ECS)."""
    event = copy.deepcopy(fixture(template))
    task = fleet.ecs.describe_tasks(cluster=fleet.cluster_name, tasks=[task_arn])["tasks"]
    d = event["detail"]
    details = d["resource"]["ecsClusterDetails"]
    details["name"] = fleet.cluster_name
    details["arn"] = fleet.cluster_arn
    td = details["taskDetails"]
    td["arn"] = task_arn
    if task:
        t = task[0]
        td["definitionArn"] = t["taskDefinitionArn"]
        td["group"] = t.get("group", td.get("group"))
        td["launchType"] = t.get("launchType", td.get("launchType"))
        ci = t.get("containerInstanceArn")
        if ci:
            described = fleet.ecs.describe_container_instances(cluster=fleet.cluster_name, containerInstances=[ci])
            instance_id = described["containerInstances"][0]["ec2InstanceId"]
            d["resource"]["instanceDetails"] = {"instanceId": instance_id}
    d["id"] = finding_id or uuid.uuid4().hex
    d["arn"] = d["arn"].rsplit("/", 1)[0] + "/" + d["id"]
    if severity is not None:
        d["severity"] = severity
    if count is not None:
        d["service"]["count"] = count
    if sample is not None:
        d["service"]["additionalInfo"] = {"value": json.dumps({"sample": sample}), "type": "default"}
    if process_name is not None:
        d["service"]["runtimeDetails"]["process"]["name"] = process_name
    if command_line is not None:
        d["service"]["runtimeDetails"].setdefault("context", {})["commandLineExample"] = command_line
    now = datetime.now(timezone.utc)
    event["id"] = str(uuid.uuid4())
    event["time"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    event["region"] = fleet.region
    d["region"] = fleet.region
    d["updatedAt"] = now.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return event


def responder_env(emulator: Any, topic_arn: str, **extra: str) -> dict[str, str]:
    env = {"NOTIFY_TOPIC_ARN": topic_arn, "RUST_LOG": "info"}
    env.update(extra)
    return emulator.env(**env)


def task_of(fleet: Any, task_arn: str) -> dict[str, Any]:
    return fleet.ecs.describe_tasks(cluster=fleet.cluster_name, tasks=[task_arn])["tasks"][0]


def service_task_on(fleet: Any, instance: Any, service: str = "web") -> str:
    """A RUNNING task of ``service`` on ``instance`` (a FleetInstance)."""
    from harness.fleet import service_of, tasks_on

    return next(t["taskArn"] for t in tasks_on(fleet, instance) if service_of(t) == service)


def instance_tags(fleet: Any, instance_id: str) -> dict[str, str]:
    tags = fleet.ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [instance_id]}])["Tags"]
    return {t["Key"]: t["Value"] for t in tags}


def group_of(fleet: Any, instance_id: str) -> str | None:
    found = fleet.autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"]
    return found[0]["AutoScalingGroupName"] if found else None


def container_instance_status(fleet: Any, instance: Any) -> str:
    return fleet.ecs.describe_container_instances(
        cluster=fleet.cluster_name, containerInstances=[instance.container_instance_arn]
    )["containerInstances"][0]["status"]


def instance_state(fleet: Any, instance_id: str) -> str:
    r = fleet.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return r[0]["Instances"][0]["State"]["Name"]


HOST_FINDING = "guardduty-host-new-binary-instance.json"
SEQUENCE_FINDING = "guardduty-attack-sequence-ecs.json"
FINDING_TAG = "ecs-autopilot:finding"


def host_finding_event(fleet: Any, instance_id: str, *, with_cluster: bool = True, **kw: Any) -> dict[str, Any]:
    """A Runtime Monitoring finding about EC2 instance ``instance_id`` itself
    (resourceType Instance), naming ``fleet``'s cluster unless ``with_cluster`` is false."""
    event = copy.deepcopy(fixture(HOST_FINDING))
    d = event["detail"]
    d["resource"]["instanceDetails"]["instanceId"] = instance_id
    if with_cluster:
        d["resource"]["ecsClusterDetails"].update(name=fleet.cluster_name, arn=fleet.cluster_arn)
    else:
        d["resource"].pop("ecsClusterDetails")
    return _stamped(event, fleet, **kw)


def sequence_event(fleet: Any, task_arns: list[str], instance_ids: list[str], **kw: Any) -> dict[str, Any]:
    """An `AttackSequence:ECS/CompromisedCluster` finding naming ``fleet``'s cluster, the
    tasks and the hosts given."""
    event = copy.deepcopy(fixture(SEQUENCE_FINDING))
    d = event["detail"]
    d["resource"]["ecsClusterDetails"].update(name=fleet.cluster_name, arn=fleet.cluster_arn)
    seq = d["service"]["detection"]["sequence"]
    kept = [r for r in seq["resources"] if r["resourceType"] not in ("ECS_TASK", "EC2_INSTANCE", "ECS_CLUSTER")]
    kept.append({"uid": fleet.cluster_arn, "name": fleet.cluster_name, "resourceType": "ECS_CLUSTER"})
    kept += [{"uid": t, "name": t.rsplit("/", 1)[-1], "resourceType": "ECS_TASK"} for t in task_arns]
    kept += [{"uid": i, "name": i, "resourceType": "EC2_INSTANCE"} for i in instance_ids]
    seq["resources"] = kept
    return _stamped(event, fleet, **kw)


def _stamped(event: dict[str, Any], fleet: Any, *, finding_id: str | None = None, severity: float | None = None) -> dict[str, Any]:
    d = event["detail"]
    d["id"] = finding_id or uuid.uuid4().hex
    d["arn"] = d["arn"].rsplit("/", 1)[0] + "/" + d["id"]
    if severity is not None:
        d["severity"] = severity
    now = datetime.now(timezone.utc)
    event["id"] = str(uuid.uuid4())
    event["time"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    event["region"] = d["region"] = fleet.region
    return event


def quarantine_group(fleet: Any, instance_id: str) -> str:
    """A deny-all security group in the VPC of ``instance_id``."""
    r = fleet.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    vpc = r.get("VpcId") or fleet.ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    return fleet.ec2.create_security_group(
        GroupName=f"quarantine-{uuid.uuid4().hex[:8]}", Description="deny all", VpcId=vpc
    )["GroupId"]


def interface_groups(fleet: Any, eni: str) -> list[str]:
    found = fleet.ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]
    return [g["GroupId"] for g in found["Groups"]]


def host_interfaces(fleet: Any, instance_id: str) -> list[str]:
    r = fleet.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    return [n["NetworkInterfaceId"] for n in r.get("NetworkInterfaces", [])]


def snapshots_for(fleet: Any, finding_id: str) -> list[dict[str, Any]]:
    return fleet.ec2.describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": f"tag:{FINDING_TAG}", "Values": [finding_id]}]
    )["Snapshots"]


def task_interface(fleet: Any, task_arn: str) -> str | None:
    for a in task_of(fleet, task_arn).get("attachments", []):
        for d in a.get("details", []):
            if d["name"] == "networkInterfaceId":
                return d["value"]
    return None
