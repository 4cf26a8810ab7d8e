"""Helpers for guardduty-responder's tests and demo: what containment did to tasks, hosts,
their interfaces, groups and snapshots (the findings are built in harness.events).

    sg = quarantine_group(fleet, instance_id)      # QUARANTINE_SECURITY_GROUP
    instance_tags(fleet, instance_id)[QUARANTINE_TAG]
"""

from __future__ import annotations

import uuid
from typing import Any

STOP_REASON_PREFIX = "ecs-autopilot guardduty-responder:"
QUARANTINE_TAG = "ecs-autopilot:quarantine"
FINDING_TAG = "ecs-autopilot:finding"


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
