"""AMI fields moto lacks (ami-rollout compares images before rolling a group), launch templates and SSM parameters."""

from __future__ import annotations

import json
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID

from .common import DEFAULT_REGION, ECS_TASK_HOLD_TRANSITION, _LOCK
from .control import _require


def _patch_image_platform_details() -> None:
    """moto's images have no PlatformDetails / UsageOperation. EC2 sets them on every AMI
    from its billing platform: "Linux/UNIX" (RunInstances) for Linux images, "Windows"
    (RunInstances:0002) for Windows ones ("Understand AMI billing information",
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/billing-info-fields.html; the
    DescribeImages Image shape, https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Image.html).
    An image registered through the control endpoint keeps the value it was given."""
    from moto.ec2.models.amis import Ami

    def platform_details(self: Any) -> str:
        given = self.__dict__.get("_autopilot_platform_details")
        if given:
            return given
        return "Windows" if (self.platform or "").lower() == "windows" else "Linux/UNIX"

    def usage_operation(self: Any) -> str:
        return "RunInstances:0002" if platform_details(self) == "Windows" else "RunInstances"

    Ami.platform_details = property(platform_details)  # type: ignore[attr-defined]
    Ami.usage_operation = property(usage_operation)  # type: ignore[attr-defined]


def _patch_mixed_group_launch_template() -> None:
    """A group launches from a launch template, a launch configuration or a mixed
    instances policy, never two of them: AWS describes a mixed group with
    `MixedInstancesPolicy` and no top-level `LaunchTemplate`, and UpdateAutoScalingGroup
    with a MixedInstancesPolicy replaces the group's launch template (CreateAutoScalingGroup
    / UpdateAutoScalingGroup, https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_UpdateAutoScalingGroup.html;
    https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-mixed-instances-groups.html).
    moto reports both, so a mixed group looked like a plain launch-template group."""
    from moto.autoscaling.models import FakeAutoScalingGroup

    orig = FakeAutoScalingGroup.launch_template

    def launch_template(self: Any) -> Any:
        if self.mixed_instances_policy:
            return None
        return orig.fget(self)  # type: ignore[union-attr]

    FakeAutoScalingGroup.launch_template = property(launch_template)  # type: ignore[assignment,method-assign]


def _patch_group_launches() -> None:
    """How Auto Scaling launches an instance, where moto differs:

    * **`resolve:ssm:` ImageIds** are resolved at launch: EC2 reads the parameter (its
      latest version, or `NAME:version`) every time it launches from the template
      ("Use AWS Systems Manager parameters instead of AMI IDs in launch templates",
      https://docs.aws.amazon.com/autoscaling/ec2/userguide/using-systems-manager-parameters.html).
      moto launched the instance with the literal string as its ImageId.
    * **Mixed instances policies** launch each instance as one of the overrides, from the
      override's own `LaunchTemplateSpecification` if it has one, else the policy's
      template, with the override's `InstanceType` ("Use multiple launch templates",
      https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-mixed-instances-groups-launch-template-overrides.html).
      moto launched every instance from the policy's template. The emulator spreads
      launches over the overrides: each new instance goes to the override with the fewest
      in-service or pending instances (ties: the first), instead of AWS's allocation
      strategies."""
    from moto.autoscaling.models import FakeAutoScalingGroup
    from moto.ssm.models import ssm_backends

    orig_image = FakeAutoScalingGroup.image_id
    orig_type = FakeAutoScalingGroup.instance_type
    orig_replace = FakeAutoScalingGroup.replace_autoscaling_group_instances

    def image_id(self: Any) -> Any:
        value = orig_image.fget(self)  # type: ignore[union-attr]
        if isinstance(value, str) and value.startswith("resolve:ssm:"):
            name = value[len("resolve:ssm:"):]
            backend = ssm_backends[self.autoscaling_backend.account_id][self.autoscaling_backend.region_name]
            try:
                found = backend.get_parameter(name)
            except Exception:
                found = None
            if found is not None:
                return found.value
        return value

    def instance_type(self: Any) -> Any:
        forced = self.__dict__.get("_autopilot_instance_type")
        return forced or orig_type.fget(self)  # type: ignore[union-attr]

    def replace_autoscaling_group_instances(self: Any, count_needed: int, propagated_tags: dict[str, str]) -> None:
        overrides = ((self.mixed_instances_policy or {}).get("LaunchTemplate") or {}).get("Overrides") or []
        if not overrides:
            return orig_replace(self, count_needed, propagated_tags)
        ec2 = self.autoscaling_backend.ec2_backend
        policy = (self.ec2_launch_template, self.launch_template_version)

        def count(n: int) -> int:
            return sum(
                1 for st in self.instance_states
                if st.lifecycle_state in ("InService", "Pending", "Pending:Wait")
                and getattr(st, "_autopilot_override", None) == n
            )

        for _ in range(count_needed):
            n = min(range(len(overrides)), key=lambda i: (count(i), i))
            o = overrides[n]
            spec = o.get("LaunchTemplateSpecification")
            before = {id(st) for st in self.instance_states}
            try:
                if spec:
                    tid, name = spec.get("LaunchTemplateId"), spec.get("LaunchTemplateName")
                    self.ec2_launch_template = ec2.get_launch_template(tid) if tid else ec2.get_launch_template_by_name(name)
                    self.launch_template_version = spec.get("Version") or "$Default"
                if o.get("InstanceType"):
                    self.__dict__["_autopilot_instance_type"] = o["InstanceType"]
                orig_replace(self, 1, dict(propagated_tags))
            finally:
                self.ec2_launch_template, self.launch_template_version = policy
                self.__dict__.pop("_autopilot_instance_type", None)
            for st in self.instance_states:
                if id(st) not in before:
                    st._autopilot_override = n

    FakeAutoScalingGroup.image_id = property(image_id)  # type: ignore[assignment,method-assign]
    FakeAutoScalingGroup.instance_type = property(instance_type)  # type: ignore[assignment,method-assign]
    FakeAutoScalingGroup.replace_autoscaling_group_instances = replace_autoscaling_group_instances  # type: ignore[method-assign]


def control_register_image(body: dict[str, Any]) -> dict[str, Any]:
    """Make an AMI with a chosen id exist (RegisterImage picks its own id), with the
    fields DescribeImages reports: name, description, architecture (default x86_64),
    virtualization_type (hvm), platform ("windows" or absent), platform_details,
    owner_alias (default "amazon", as for AWS's ECS-optimized AMIs). Idempotent: an
    existing id is left as it is."""
    _require(body, "image_id")
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.amis import Ami

    backend = ec2_backends[body.get("account") or DEFAULT_ACCOUNT_ID][body.get("region") or DEFAULT_REGION]
    image_id = body["image_id"]
    if image_id not in backend.amis:
        ami = Ami(
            backend,
            ami_id=image_id,
            name=body.get("name") or image_id,
            description=body.get("description") or "",
            owner_alias=body.get("owner_alias", "amazon"),
            public=True,
            virtualization_type=body.get("virtualization_type") or "hvm",
            architecture=body.get("architecture") or "x86_64",
            platform=body.get("platform"),
            hypervisor="xen",
            root_device_type="ebs",
            root_device_name="/dev/xvda",
            region_name=body.get("region") or DEFAULT_REGION,
        )
        if body.get("platform_details"):
            ami._autopilot_platform_details = body["platform_details"]  # type: ignore[attr-defined]
        backend.amis[image_id] = ami
    ami = backend.amis[image_id]
    return {"image_id": image_id, "name": ami.name, "architecture": ami.architecture}


def _patch_instance_launch_template() -> None:
    """moto reports every instance's LaunchTemplate.Version as the template's
    *current default* version, so an instance launched from version 1 looks
    up to date after a refresh to version 2. Stamp each instance with the
    launch template id/name and the concrete version number it was launched
    from, and report that."""
    from moto.autoscaling.models import FakeAutoScalingGroup, InstanceState

    orig_replace = FakeAutoScalingGroup.replace_autoscaling_group_instances
    orig_property = InstanceState.launch_template

    def replace_autoscaling_group_instances(self: Any, count_needed: int, propagated_tags: dict[str, str]) -> None:
        before = {id(s) for s in self.instance_states}
        orig_replace(self, count_needed, propagated_tags)
        stamp = None
        if self.ec2_launch_template is not None:
            try:
                version = self.ec2_launch_template.get_version(self.launch_template_version).number
            except Exception:
                version = self.ec2_launch_template.default_version_number
            stamp = {
                "LaunchTemplateId": self.ec2_launch_template.id,
                "LaunchTemplateName": self.ec2_launch_template.name,
                "Version": str(version),
            }
        for state in self.instance_states:
            if id(state) not in before:
                state._autopilot_launch_template = stamp

    def launch_template(self: Any) -> Any:
        if hasattr(self, "_autopilot_launch_template"):
            return self._autopilot_launch_template
        return orig_property.fget(self)  # type: ignore[union-attr]

    FakeAutoScalingGroup.replace_autoscaling_group_instances = replace_autoscaling_group_instances  # type: ignore[method-assign]
    InstanceState.launch_template = property(launch_template)  # type: ignore[assignment,method-assign]


def _patch_launch_template_client_token() -> None:
    """CreateLaunchTemplateVersion is idempotent on its ClientToken, as in EC2: a retry
    whose first answer was lost gets the version the first call created, not another."""
    from moto.ec2.responses.launch_templates import LaunchTemplates

    orig = LaunchTemplates.create_launch_template_version

    def create_launch_template_version(self: Any) -> Any:
        token = self._get_param("ClientToken")
        tid, name = self._get_param("LaunchTemplateId"), self._get_param("LaunchTemplateName")
        if not token or not (tid or name):
            return orig(self)
        backend = self.ec2_backend
        template = backend.get_launch_template(tid) if tid else backend.get_launch_template_by_name(name)
        with _LOCK:
            made = template.__dict__.setdefault("_autopilot_client_tokens", {})
            if token not in made:
                answer = orig(self)
                made[token] = template.latest_version().number
                return answer
            earlier = template.get_version(made[token])
            template.create_version = lambda *_a, **_k: earlier  # answer with the earlier one
            try:
                return orig(self)
            finally:
                del template.create_version

    LaunchTemplates.create_launch_template_version = create_launch_template_version  # type: ignore[method-assign]


def _patch_ssm_public_parameters() -> None:
    """moto's bundled /aws/service/ecs/optimized-ami/.../recommended values
    are Python dict reprs ({'image_id': ...}); AWS returns JSON."""
    from moto.ssm import models as ssm_models

    orig = ssm_models.convert_to_params

    def convert_to_params(tree: dict[str, Any]) -> list[dict[str, Any]]:
        params = orig(tree)
        for param in params:
            if isinstance(param.get("Value"), (dict, list)):
                param["Value"] = json.dumps(param["Value"])
        return params

    ssm_models.convert_to_params = convert_to_params


def set_manual_tasks(manual: bool = True) -> None:
    """Keep ECS tasks RUNNING until StopTask (True) or restore moto's default
    (each DescribeTasks moves a task one state towards STOPPED)."""
    from moto.moto_api import state_manager

    if manual:
        state_manager.set_transition("ecs::task", dict(ECS_TASK_HOLD_TRANSITION))
    else:
        state_manager.unset_transition("ecs::task")
