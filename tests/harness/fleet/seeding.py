"""Seeding a fleet: cluster, launch template, Auto Scaling group and hooks, registered
container instances, services and their tasks; registering hosts that joined later."""

from __future__ import annotations

import json
import uuid
from typing import Any, Iterable

from ..events import ACCOUNT
from .clients import client, control, unique
from .images import register_image
from .model import CLUSTER_TAG, DEFAULT_AMI, LAUNCHING, MANAGED_TAG, TERMINATING, Fleet, FleetInstance


def put_lifecycle_hook(asg: Any, group: str, hook: str, transition: str = TERMINATING,
                       heartbeat_timeout: int = 300, default_result: str = "CONTINUE") -> None:
    """A lifecycle hook on the group (a terminate hook that lets the instance go, by default)."""
    asg.put_lifecycle_hook(LifecycleHookName=hook, AutoScalingGroupName=group, LifecycleTransition=transition,
                           HeartbeatTimeout=heartbeat_timeout, DefaultResult=default_result)


def seed_cluster(
    endpoint: str,
    region: str = "us-east-1",
    name: str | None = None,
    instances: int = 3,
    managed: bool = True,
    group_tagged: bool = True,
    ami: str = DEFAULT_AMI,
    services: Iterable[str] = ("web",),
    tasks_per_instance: int = 1,
    *,
    daemon: bool | str = False,
    standalone_tasks: int = 0,
    instance_type: str = "m5.large",
    hooks: bool = True,
    heartbeat_timeout: int = 900,
    extra_cluster_tags: dict[str, str] | None = None,
    extra_group_tags: dict[str, str] | None = None,
    max_size: int | None = None,
    bulk_register: bool = False,
    account: str = ACCOUNT,
) -> Fleet:
    """Create a cluster, launch template, Auto Scaling group (+ hooks), one
    registered container instance per EC2 instance, and running tasks:

    * ``services``: REPLICA services; each instance runs ``tasks_per_instance``
      tasks of each (group ``service:NAME``, startedBy ``ecs-svc/...`` like the
      ECS scheduler's), desiredCount = instances * tasks_per_instance.
    * ``daemon``: True (name "daemon") or a name: a DAEMON service with one
      task per instance.
    * ``standalone_tasks``: tasks with no service (group ``family:...``),
      placed round-robin from the first instance.

    ``name`` defaults to a unique one; names get no suffix when given, so keep
    them unique per test (moto matches some things by substring).

    ``bulk_register``: register the container instances with one emulator control call
    instead of one RegisterContainerInstance each (for fleets of thousands).

    ``account``: the emulator account to seed in (``harness.accounts`` for member accounts).
    """
    name = name or unique("ap")
    ecs = client(endpoint, "ecs", region, account)
    ec2 = client(endpoint, "ec2", region, account)
    asg = client(endpoint, "autoscaling", region, account)

    tags = {MANAGED_TAG: "true"} if managed else {}
    tags.update(extra_cluster_tags or {})
    cluster = ecs.create_cluster(
        clusterName=name, tags=[{"key": k, "value": v} for k, v in tags.items()]
    )["cluster"]

    if ami.startswith("ami-"):
        register_image(endpoint, ami, region, account=account)
    lt = ec2.create_launch_template(
        LaunchTemplateName=f"{name}-lt",
        LaunchTemplateData={"ImageId": ami, "InstanceType": instance_type},
    )["LaunchTemplate"]

    group_name = f"{name}-asg"
    group_tags = []
    if group_tagged:
        group_tags.append({"Key": CLUSTER_TAG, "Value": name, "PropagateAtLaunch": True})
    for k, v in (extra_group_tags or {}).items():
        group_tags.append({"Key": k, "Value": v, "PropagateAtLaunch": True})
    azs = [f"{region}a", f"{region}b", f"{region}c"]
    asg.create_auto_scaling_group(
        AutoScalingGroupName=group_name,
        LaunchTemplate={"LaunchTemplateId": lt["LaunchTemplateId"], "Version": "$Latest"},
        MinSize=instances,
        MaxSize=max_size if max_size is not None else max(instances * 2, 1),
        DesiredCapacity=instances,
        AvailabilityZones=azs,
        Tags=group_tags,
    )
    terminate_hook = launch_hook = None
    if hooks:
        # instance-drain owns hooks named ecs-autopilot-* by default (LIFECYCLE_HOOK_NAMES).
        terminate_hook, launch_hook = f"ecs-autopilot-{name}-terminate", f"ecs-autopilot-{name}-launch"
        put_lifecycle_hook(asg, group_name, terminate_hook, heartbeat_timeout=heartbeat_timeout)
        put_lifecycle_hook(asg, group_name, launch_hook, LAUNCHING, heartbeat_timeout, "ABANDON")
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])["AutoScalingGroups"][0]

    fleet = Fleet(
        endpoint=endpoint,
        region=region,
        cluster_name=name,
        cluster_arn=cluster["clusterArn"],
        asg_name=group_name,
        asg_arn=group["AutoScalingGroupARN"],
        launch_template_id=lt["LaunchTemplateId"],
        launch_template_name=lt["LaunchTemplateName"],
        ami=ami,
        terminate_hook=terminate_hook,
        launch_hook=launch_hook,
        instances=[],
        account=account,
    )
    if bulk_register:
        register_group_instances(fleet)
    else:
        register_new_instances(fleet)

    # task definitions and services
    services = list(services)
    for svc in services:
        fleet.task_definitions[svc] = _task_definition(ecs, f"{name}-{svc}")
        arn = ecs.create_service(
            cluster=name,
            serviceName=svc,
            taskDefinition=fleet.task_definitions[svc],
            desiredCount=instances * tasks_per_instance,
            launchType="EC2",
        )["service"]["serviceArn"]
        fleet.services[svc] = fleet.service_arns[svc] = arn
    if daemon:
        dname = daemon if isinstance(daemon, str) else "daemon"
        fleet.task_definitions[dname] = _task_definition(ecs, f"{name}-{dname}")
        fleet.service_arns[dname] = ecs.create_service(
            cluster=name,
            serviceName=dname,
            taskDefinition=fleet.task_definitions[dname],
            schedulingStrategy="DAEMON",
            launchType="EC2",
        )["service"]["serviceArn"]
        fleet.daemon_service = dname
    if standalone_tasks:
        fleet.task_definitions["standalone"] = _task_definition(ecs, f"{name}-standalone")

    for inst in fleet.instances:
        ci = inst.container_instance_arn
        fleet.tasks[ci] = []
        for svc in services:
            fleet.tasks[ci] += start_service_tasks(fleet, svc, inst, tasks_per_instance)
        if fleet.daemon_service:
            fleet.tasks[ci] += start_service_tasks(fleet, fleet.daemon_service, inst, 1)
    for n in range(standalone_tasks):
        inst = fleet.instances[n % len(fleet.instances)]
        arn = ecs.start_task(
            cluster=name,
            taskDefinition=fleet.task_definitions["standalone"],
            containerInstances=[inst.container_instance_arn],
            startedBy="batch-job",
        )["tasks"][0]["taskArn"]
        fleet.tasks[inst.container_instance_arn].append(arn)
        fleet.standalone_tasks.append(arn)
    return fleet


def _task_definition(ecs: Any, family: str) -> str:
    return ecs.register_task_definition(
        family=family,
        containerDefinitions=[{"name": "app", "image": "public.ecr.aws/nginx/nginx:latest", "memory": 128, "cpu": 128}],
    )["taskDefinition"]["taskDefinitionArn"]


def register_new_instances(fleet: Fleet) -> list[FleetInstance]:
    """Register a container instance for every InService group instance that
    has none yet (after a launch, a refresh or a replacement), like the ECS
    agent does at boot. Updates ``fleet.instances``; returns the new ones."""
    ecs = fleet.ecs
    group = fleet.group()
    known = {i.ec2_instance_id for i in fleet.instances if i.container_instance_arn}
    registered = {
        ci["ec2InstanceId"] for ci in fleet.container_instances()
    }
    new = []
    for gi in group["Instances"]:
        iid = gi["InstanceId"]
        if iid in known or iid in registered:
            continue
        if gi["LifecycleState"] not in ("InService", "Pending:Wait", "Pending"):
            continue
        doc = {
            "instanceId": iid,
            "region": fleet.region,
            "availabilityZone": gi["AvailabilityZone"],
            "accountId": fleet.account,
            "imageId": fleet.ami,
            "instanceType": gi.get("InstanceType"),
        }
        ci = ecs.register_container_instance(
            cluster=fleet.cluster_name, instanceIdentityDocument=json.dumps(doc)
        )["containerInstance"]
        inst = FleetInstance(iid, ci["containerInstanceArn"], gi["AvailabilityZone"])
        fleet.instances = [i for i in fleet.instances if i.ec2_instance_id != iid] + [inst]
        new.append(inst)
    return new


def register_group_instances(fleet: Fleet) -> list[FleetInstance]:
    """Like ``register_new_instances``, in one call to the emulator's
    ``/_autopilot/container-instances`` endpoint."""
    body = {"region": fleet.region, "cluster": fleet.cluster_name, "group": fleet.asg_name, "account": fleet.account}
    new = [
        FleetInstance(ci["ec2_instance_id"], ci["container_instance_arn"], ci["availability_zone"])
        for ci in control(fleet.endpoint, "POST", "/_autopilot/container-instances", body)["container_instances"]
    ]
    ids = {i.ec2_instance_id for i in new}
    fleet.instances = [i for i in fleet.instances if i.ec2_instance_id not in ids] + new
    return new


def start_service_tasks(fleet: Fleet, service: str, instance: str | FleetInstance, count: int = 1) -> list[str]:
    """Start ``count`` tasks of ``service`` on ``instance`` the way the ECS
    service scheduler would (group ``service:NAME``, startedBy ``ecs-svc/...``)."""
    if count <= 0:
        return []
    ci = fleet.container_instance_arn(instance)
    tasks = fleet.ecs.start_task(
        cluster=fleet.cluster_name,
        taskDefinition=fleet.task_definitions[service],
        containerInstances=[ci] * count,
        startedBy=f"ecs-svc/{uuid.uuid5(uuid.NAMESPACE_URL, fleet.cluster_name + '/' + service).int % 10**19:019d}",
        group=f"service:{service}",
    )["tasks"]
    return [t["taskArn"] for t in tasks]
