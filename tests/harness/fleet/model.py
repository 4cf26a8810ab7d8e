"""What a seeded fleet is: its cluster, group, template, hooks, instances, services and
tasks, with the lookups the tests make on it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..events import ACCOUNT
from .clients import client

DEFAULT_AMI = "ami-0123456789abcdef0"
MANAGED_TAG = "ecs-autopilot:managed"
CLUSTER_TAG = "ecs-autopilot:cluster"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"



@dataclass
class FleetInstance:
    ec2_instance_id: str
    container_instance_arn: str | None
    availability_zone: str

    @property
    def container_instance_id(self) -> str | None:
        return self.container_instance_arn.split("/")[-1] if self.container_instance_arn else None


@dataclass
class Fleet:
    endpoint: str
    region: str
    cluster_name: str
    cluster_arn: str
    asg_name: str
    asg_arn: str
    launch_template_id: str
    launch_template_name: str
    ami: str
    terminate_hook: str | None
    launch_hook: str | None
    instances: list[FleetInstance]
    task_definitions: dict[str, str] = field(default_factory=dict)  # service name / "standalone" -> task def ARN
    services: dict[str, str] = field(default_factory=dict)  # REPLICA service name -> ARN
    daemon_service: str | None = None  # name
    service_arns: dict[str, str] = field(default_factory=dict)  # every service (incl. daemon) name -> ARN
    tasks: dict[str, list[str]] = field(default_factory=dict)  # container instance ARN -> task ARNs at seed time
    standalone_tasks: list[str] = field(default_factory=list)
    account: str = ACCOUNT  # the emulator account the fleet lives in

    # -- clients -----------------------------------------------------------

    def client(self, service: str) -> Any:
        return client(self.endpoint, service, self.region, self.account)

    @property
    def ecs(self) -> Any:
        return self.client("ecs")

    @property
    def autoscaling(self) -> Any:
        return self.client("autoscaling")

    @property
    def ec2(self) -> Any:
        return self.client("ec2")

    # -- lookups -----------------------------------------------------------

    def instance(self, ref: str | FleetInstance) -> FleetInstance:
        """By EC2 instance id, container instance ARN or id."""
        if isinstance(ref, FleetInstance):
            return ref
        for inst in self.instances:
            if ref in (inst.ec2_instance_id, inst.container_instance_arn, inst.container_instance_id):
                return inst
        raise KeyError(f"{ref} is not an instance of fleet {self.cluster_name}")

    def container_instance_arn(self, ref: str | FleetInstance) -> str:
        arn = self.instance(ref).container_instance_arn
        if arn is None:
            raise KeyError(f"{ref} has no container instance")
        return arn

    def group(self) -> dict[str, Any]:
        return self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[self.asg_name])[
            "AutoScalingGroups"
        ][0]

    def group_instance_ids(self, lifecycle_state: str | None = None) -> list[str]:
        return [
            i["InstanceId"]
            for i in self.group()["Instances"]
            if lifecycle_state is None or i["LifecycleState"] == lifecycle_state
        ]

    def container_instances(self, status: str | None = None) -> list[dict[str, Any]]:
        """DescribeContainerInstances for every registered one (optionally of a status)."""
        kwargs: dict[str, Any] = {"cluster": self.cluster_name}
        if status:
            kwargs["status"] = status
        arns = self.ecs.list_container_instances(**kwargs)["containerInstanceArns"]
        if not arns:
            return []
        return self.ecs.describe_container_instances(cluster=self.cluster_name, containerInstances=arns)[
            "containerInstances"
        ]
