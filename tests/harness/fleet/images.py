"""AMIs: launch template versions, describable images and the SSM parameters that name
them (the public ECS-optimized ones too)."""

from __future__ import annotations

import json
from typing import Any

from ..events import ACCOUNT
from .clients import client, control
from .model import Fleet


def new_ami_version(fleet: Fleet, ami: str, *, make_default: bool = False) -> str:
    """Create a launch template version with ``ami``; returns its number (str)."""
    ec2 = fleet.ec2
    version = ec2.create_launch_template_version(
        LaunchTemplateId=fleet.launch_template_id,
        SourceVersion="$Latest",
        LaunchTemplateData={"ImageId": ami},
    )["LaunchTemplateVersion"]["VersionNumber"]
    if make_default:
        ec2.modify_launch_template(LaunchTemplateId=fleet.launch_template_id, DefaultVersion=str(version))
    return str(version)


ECS_AMI_PARAMETER = "/aws/service/ecs/optimized-ami/{family}/recommended"


def register_image(
    endpoint: str,
    image_id: str,
    region: str = "us-east-1",
    *,
    name: str | None = None,
    architecture: str = "x86_64",
    account: str = ACCOUNT,
    **fields: Any,
) -> dict[str, Any]:
    """POST /_autopilot/images: make ``image_id`` a describable AMI (idempotent). By
    default an ECS-optimized Amazon Linux 2023 x86_64 image, named as AWS names them."""
    arch_suffix = {"x86_64": "x86_64", "arm64": "arm64"}.get(architecture, architecture)
    body = {
        "region": region, "account": account, "image_id": image_id, "architecture": architecture,
        "name": name or f"al2023-ami-ecs-hvm-2023.0.{image_id[4:12]}-kernel-6.1-{arch_suffix}",
        **fields,
    }
    return control(endpoint, "POST", "/_autopilot/images", body)


def _image_in(value: Any) -> str | None:
    """The AMI id an AMI parameter's value names (plain, or the ``…/recommended`` JSON)."""
    if isinstance(value, str) and value.startswith("{"):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, dict):
        value = value.get("image_id")
    return value if isinstance(value, str) and value.startswith("ami-") else None


def put_ssm_parameter(endpoint: str, name: str, value: Any, region: str = "us-east-1", account: str = ACCOUNT,
                      **extra: Any) -> dict[str, Any]:
    """POST /_autopilot/ssm-parameter: write an SSM parameter, even an AWS-reserved one.
    An AMI id it names is registered as an image first (a published AMI exists)."""
    if (image := _image_in(value)) is not None:
        register_image(endpoint, image, region, account=account)
    return control(endpoint, "POST", "/_autopilot/ssm-parameter",
                   {"region": region, "account": account, "name": name, "value": value, **extra})


def publish_ecs_ami(
    endpoint: str,
    ami: str,
    *,
    region: str = "us-east-1",
    family: str = "amazon-linux-2023",
    image_name: str | None = None,
) -> None:
    """Make ``ami`` the "recommended ECS-optimized AMI": updates both
    ``.../{family}/recommended`` (JSON) and ``.../recommended/image_id``.
    moto ships real-looking values for these; PutParameter can't change them."""
    base = ECS_AMI_PARAMETER.format(family=family)
    ssm = client(endpoint, "ssm", region)
    try:
        current = json.loads(ssm.get_parameter(Name=base)["Parameter"]["Value"])
    except Exception:
        current = {}
    current["image_id"] = ami
    current["image_name"] = image_name or f"{family}-ecs-{ami}"
    put_ssm_parameter(endpoint, base, json.dumps(current), region)
    put_ssm_parameter(endpoint, f"{base}/image_id", ami, region)
    put_ssm_parameter(endpoint, f"{base}/image_name", current["image_name"], region)
