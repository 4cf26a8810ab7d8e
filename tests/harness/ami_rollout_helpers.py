"""Helpers for the ami-rollout tests, demo and bench: a region of its own, team AMI
parameters, launch template versions, refreshes and what the group runs (the events are
in harness.events, the call-counting proxy is harness.aws_proxy).

Each ami-rollout test runs in its own region of the emulator: a scheduled check looks
at every managed group of the account and region, so groups other tests seeded in
us-east-1 must not be in view.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections import Counter
from typing import Any

from harness import fleet as fl

PARAMETER_TAG = "ecs-autopilot:ami-parameter"
ROLLOUT_TAG = "ecs-autopilot:rollout"
RECOMMENDED = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended"

# us-east-1 is left to the other functions' tests.
_REGIONS = itertools.cycle(
    # Regions where moto has default subnets in zones a, b and c (the fleet uses them).
    [
        "us-west-2", "us-east-2", "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1",
        "eu-north-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-2", "ap-south-1",
        "sa-east-1", "ap-northeast-3", "eu-south-1", "af-south-1", "me-south-1", "ap-east-1",
        "eu-central-2", "il-central-1", "ca-west-1", "ap-south-2", "eu-south-2",
        "ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "me-central-1", "mx-central-1",
    ]
)


def next_region() -> str:
    return next(_REGIONS)


def fresh_region(endpoint: str) -> str:
    """The next region, with whatever earlier tests of this emulator left there opted out:
    the cycle wraps once a worker has run more tests than there are regions, and a
    leftover managed group (or its refresh in progress, which counts against the rollout
    budget) must not show in a test that reads the whole region."""
    region = next_region()
    asg = fl.client(endpoint, "autoscaling", region)
    for page in asg.get_paginator("describe_auto_scaling_groups").paginate():
        for group in page["AutoScalingGroups"]:
            tags = [t for t in group.get("Tags", []) if t["Key"] == "ecs-autopilot:cluster"]
            if tags:
                asg.delete_tags(Tags=[{"ResourceId": group["AutoScalingGroupName"], "ResourceType": "auto-scaling-group",
                                       "Key": t["Key"]} for t in tags])
    ecs = fl.client(endpoint, "ecs", region)
    arns = [a for page in ecs.get_paginator("list_clusters").paginate() for a in page["clusterArns"]]
    for i in range(0, len(arns), 100):
        for cluster in ecs.describe_clusters(clusters=arns[i:i + 100], include=["TAGS"])["clusters"]:
            if any(t["key"] == "ecs-autopilot:managed" for t in cluster.get("tags", [])):
                ecs.untag_resource(resourceArn=cluster["clusterArn"], tagKeys=["ecs-autopilot:managed"])
    return region


# --------------------------------------------------------------------------
# parameters, groups, refreshes
# --------------------------------------------------------------------------


def team_parameter(emulator: Any, region: str, value: str, name: str | None = None) -> str:
    """Create (or overwrite) a team AMI parameter; returns its name."""
    name = name or f"/team/{uuid.uuid4().hex[:12]}/ami"
    if (image := fl._image_in(value)) is not None:
        fl.register_image(emulator.url, image, region)  # a published AMI exists
    emulator.client("ssm", region).put_parameter(Name=name, Value=value, Type="String", Overwrite=True)
    return name


def publish_recommended(emulator: Any, region: str, image_id: str) -> None:
    """A new ECS-optimized AMI in the public parameters (JSON and image_id forms)."""
    value = {"image_id": image_id, "image_name": f"al2023-ami-ecs-hvm-{image_id}", "ecs_agent_version": "1.84.0"}
    fl.put_ssm_parameter(emulator.url, RECOMMENDED, json.dumps(value), region)
    fl.put_ssm_parameter(emulator.url, f"{RECOMMENDED}/image_id", image_id, region)


def refreshes(emulator: Any, region: str, group: str) -> list[dict[str, Any]]:
    return fl.instance_refreshes(emulator.url, region, group)


def template_versions(fleet: fl.Fleet) -> list[dict[str, Any]]:
    return fleet.ec2.describe_launch_template_versions(LaunchTemplateId=fleet.launch_template_id)[
        "LaunchTemplateVersions"
    ]


def set_template_image(fleet: fl.Fleet, image_id: str) -> str:
    """A new launch template version with another ImageId (the group follows $Latest)."""
    return str(fleet.ec2.create_launch_template_version(
        LaunchTemplateId=fleet.launch_template_id, SourceVersion="$Latest", LaunchTemplateData={"ImageId": image_id},
    )["LaunchTemplateVersion"]["VersionNumber"])


def set_group_tag(fleet: fl.Fleet, key: str, value: str) -> None:
    fleet.autoscaling.create_or_update_tags(Tags=[{
        "ResourceId": fleet.asg_name, "ResourceType": "auto-scaling-group", "Key": key, "Value": value,
        "PropagateAtLaunch": False}])


def complete_refresh(emulator: Any, fleet: fl.Fleet, status: str = "Successful", reason: str | None = None) -> dict[str, Any]:
    """Move the group's latest refresh to `status`; on success the emulator replaces the
    instances, and the new ones register in the cluster like ECS agents at boot."""
    view = fl.set_refresh_status(emulator.url, fleet.asg_name, status, region=fleet.region,
                                 **({"status_reason": reason} if reason is not None else {}))
    if status == "Successful":
        fl.register_new_instances(fleet)
    return view


def running_amis(fleet: fl.Fleet) -> Counter:
    return Counter(
        next((a["value"] for a in ci.get("attributes", []) if a["name"] == "ecs.ami-id"), None)
        for ci in fleet.container_instances()
    )


