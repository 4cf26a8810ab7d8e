"""Seed and drive a simulated ECS-on-EC2 cluster in the emulator (tests/emulator/launcher.py).

    fleet = seed_cluster(emulator.url, "us-east-1", instances=3, services=["web", "worker"], daemon=True)
    victim = fleet.instances[0]
    event = fire_lifecycle(emulator.url, fleet, victim.ec2_instance_id)   # EventBridge event dict
    ... run the function ...
    play_scheduler(fleet)          # stop/replace tasks on DRAINING instances, as ECS would
    assert tasks_on(fleet, victim) == []

Everything goes through boto3 against the emulator, except the lifecycle
actions and instance refresh statuses, which use the emulator's
``/_autopilot/`` control endpoints.
"""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

import boto3

DEFAULT_AMI = "ami-0123456789abcdef0"
ACCOUNT = "123456789012"
MANAGED_TAG = "ecs-autopilot:managed"
CLUSTER_TAG = "ecs-autopilot:cluster"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"


# --------------------------------------------------------------------------
# plumbing
# --------------------------------------------------------------------------


_CLIENTS: dict[tuple[str, str, str, str], Any] = {}


def in_account(boto_client: Any, account: str) -> Any:
    """Make ``boto_client`` act in ``account`` of the emulator: every request carries
    moto's ``x-moto-account-id`` header (moto resolves the account from it before the
    access key). For seeding and reading another account's resources as its owner
    would; the functions under test reach it through STS AssumeRole instead."""
    if account != ACCOUNT:
        def stamp(request: Any, **_: Any) -> None:
            request.headers["x-moto-account-id"] = account

        boto_client.meta.events.register("before-sign.*.*", stamp)
    return boto_client


def client(endpoint: str, service: str, region: str = "us-east-1", account: str = ACCOUNT) -> Any:
    """A boto3 client, made once per endpoint, service, region and account (making one
    costs tens of milliseconds, and fleets ask for them all the time). ``account``: the
    emulator account to act in (default: moto's default account, the hub's)."""
    key = (endpoint, service, region, account)
    if key not in _CLIENTS:
        _CLIENTS[key] = in_account(boto3.client(
            service,
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ), account)
    return _CLIENTS[key]


class ControlError(RuntimeError):
    def __init__(self, status: int, payload: Any) -> None:
        super().__init__(f"HTTP {status}: {payload}")
        self.status = status
        self.payload = payload


def control(endpoint: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Call an emulator control endpoint (``path`` like ``/_autopilot/...``)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        endpoint.rstrip("/") + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = raw.decode(errors="replace")
        raise ControlError(e.code, payload) from None


def unique(prefix: str) -> str:
    """A name that is no substring of another (fixed-length random suffix)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# --------------------------------------------------------------------------
# the fleet
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# seeding
# --------------------------------------------------------------------------


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
        asg.put_lifecycle_hook(
            LifecycleHookName=terminate_hook,
            AutoScalingGroupName=group_name,
            LifecycleTransition=TERMINATING,
            HeartbeatTimeout=heartbeat_timeout,
            DefaultResult="CONTINUE",
        )
        asg.put_lifecycle_hook(
            LifecycleHookName=launch_hook,
            AutoScalingGroupName=group_name,
            LifecycleTransition=LAUNCHING,
            HeartbeatTimeout=heartbeat_timeout,
            DefaultResult="ABANDON",
        )
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


# --------------------------------------------------------------------------
# looking at tasks and playing the ECS scheduler
# --------------------------------------------------------------------------


def tasks_on(fleet: Fleet, instance: str | FleetInstance, desired_status: str = "RUNNING") -> list[dict[str, Any]]:
    """Described tasks on one instance (EC2 id, container instance ARN/id or FleetInstance)."""
    arns = fleet.ecs.list_tasks(
        cluster=fleet.cluster_name,
        containerInstance=fleet.container_instance_arn(instance),
        desiredStatus=desired_status,
    )["taskArns"]
    return describe_tasks(fleet, arns)


def all_tasks(fleet: Fleet, desired_status: str = "RUNNING") -> list[dict[str, Any]]:
    arns = fleet.ecs.list_tasks(cluster=fleet.cluster_name, desiredStatus=desired_status)["taskArns"]
    return describe_tasks(fleet, arns)


def describe_tasks(fleet: Fleet, arns: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(0, len(arns), 100):
        out += fleet.ecs.describe_tasks(cluster=fleet.cluster_name, tasks=arns[i : i + 100])["tasks"]
    return out


def service_of(task: dict[str, Any]) -> str | None:
    group = task.get("group") or ""
    return group[len("service:") :] if group.startswith("service:") else None


def stop_tasks(
    fleet: Fleet,
    instance: str | FleetInstance | None = None,
    *,
    task_arns: Iterable[str] | None = None,
    service: str | None = None,
    include_standalone: bool = True,
    reason: str = "Task stopped by the test",
) -> list[str]:
    """Stop tasks: the given ARNs, or those RUNNING on ``instance`` (optionally
    of one ``service`` only, optionally sparing standalone tasks)."""
    if task_arns is None:
        tasks = tasks_on(fleet, instance) if instance is not None else all_tasks(fleet)
        selected = []
        for t in tasks:
            svc = service_of(t)
            if service is not None and svc != service:
                continue
            if svc is None and not include_standalone:
                continue
            selected.append(t["taskArn"])
        task_arns = selected
    stopped = []
    for arn in task_arns:
        fleet.ecs.stop_task(cluster=fleet.cluster_name, task=arn, reason=reason)
        stopped.append(arn)
    return stopped


def play_scheduler(fleet: Fleet, *, replace: bool = True, stop_daemons: bool = True, rng: random.Random | None = None) -> dict[str, list[str]]:
    """One pass of what ECS does for DRAINING container instances: stop their
    REPLICA service tasks and (``replace``) start each on an ACTIVE instance;
    once only daemon tasks remain, stop those (``stop_daemons``). Standalone
    tasks are left alone (ECS does not stop them on drain).

    Returns {"stopped": [...], "started": [...]}.
    """
    rng = rng or random.Random(0)
    cis = fleet.container_instances()
    draining = [c["containerInstanceArn"] for c in cis if c["status"] == "DRAINING"]
    active = [c["containerInstanceArn"] for c in cis if c["status"] == "ACTIVE"]
    stopped: list[str] = []
    started: list[str] = []
    for ci in draining:
        tasks = tasks_on(fleet, ci)
        replica = [t for t in tasks if service_of(t) and service_of(t) != fleet.daemon_service]
        for t in replica:
            svc = service_of(t)
            fleet.ecs.stop_task(
                cluster=fleet.cluster_name,
                task=t["taskArn"],
                reason="Task stopped because the container instance is being drained.",
            )
            stopped.append(t["taskArn"])
            if replace and active and svc in fleet.task_definitions:
                target = rng.choice(active)
                started += start_service_tasks(fleet, svc, target, 1)
        if stop_daemons:
            remaining = tasks_on(fleet, ci)
            if all(service_of(t) == fleet.daemon_service for t in remaining):
                for t in remaining:
                    fleet.ecs.stop_task(
                        cluster=fleet.cluster_name,
                        task=t["taskArn"],
                        reason="Task stopped because the container instance is being drained.",
                    )
                    stopped.append(t["taskArn"])
    return {"stopped": stopped, "started": started}


def set_draining(fleet: Fleet, *instances: str | FleetInstance) -> None:
    fleet.ecs.update_container_instances_state(
        cluster=fleet.cluster_name,
        containerInstances=[fleet.container_instance_arn(i) for i in instances],
        status="DRAINING",
    )


# --------------------------------------------------------------------------
# lifecycle actions and instance refreshes
# --------------------------------------------------------------------------


def _transition(value: str) -> str:
    if value in ("terminate", "terminating", TERMINATING):
        return TERMINATING
    if value in ("launch", "launching", LAUNCHING):
        return LAUNCHING
    raise ValueError(f"unknown lifecycle transition {value!r}")


def create_lifecycle_action(
    endpoint: str,
    *,
    region: str = "us-east-1",
    group: str,
    hook: str,
    transition: str,
    instance_id: str | None = None,
    token: str | None = None,
    decrement: bool = True,
    origin: str | None = None,
    destination: str | None = None,
    account: str = ACCOUNT,
) -> dict[str, Any]:
    """POST /_autopilot/lifecycle-actions; returns the created action. ``origin`` and
    ``destination``: EC2, AutoScalingGroup or WarmPool (warm-pool moves)."""
    body: dict[str, Any] = {
        "region": region,
        "account": account,
        "group": group,
        "hook": hook,
        "transition": _transition(transition),
        "decrement": decrement,
    }
    if instance_id:
        body["instance_id"] = instance_id
    if token:
        body["token"] = token
    if origin:
        body["origin"] = origin
    if destination:
        body["destination"] = destination
    return control(endpoint, "POST", "/_autopilot/lifecycle-actions", body)


def lifecycle_event(action: dict[str, Any], *, metadata: str | None = None) -> dict[str, Any]:
    """The EventBridge event Auto Scaling emits for a lifecycle action."""
    terminating = action["transition"] == TERMINATING
    detail: dict[str, Any] = {
        "LifecycleActionToken": action["token"],
        "AutoScalingGroupName": action["group"],
        "LifecycleHookName": action["hook"],
        "EC2InstanceId": action["instance_id"],
        "LifecycleTransition": action["transition"],
        "Origin": action.get("origin") or ("AutoScalingGroup" if terminating else "EC2"),
        "Destination": action.get("destination") or ("EC2" if terminating else "AutoScalingGroup"),
    }
    if metadata is not None:
        detail["NotificationMetadata"] = metadata
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "EC2 Instance-terminate Lifecycle Action" if terminating else "EC2 Instance-launch Lifecycle Action",
        "source": "aws.autoscaling",
        "account": action.get("account", ACCOUNT),
        "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": action.get("region", "us-east-1"),
        "resources": [action["group_arn"]] if action.get("group_arn") else [],
        "detail": detail,
    }


def fire_lifecycle(
    endpoint: str,
    fleet: Fleet | None = None,
    instance_id: str | FleetInstance | None = None,
    transition: str = "terminate",
    *,
    region: str | None = None,
    group: str | None = None,
    hook: str | None = None,
    token: str | None = None,
    decrement: bool = True,
    metadata: str | None = None,
    origin: str | None = None,
    destination: str | None = None,
    account: str | None = None,
) -> dict[str, Any]:
    """Create a lifecycle action in the emulator and return the EventBridge
    event ("EC2 Instance-terminate Lifecycle Action" / "EC2 Instance-launch
    Lifecycle Action") that Auto Scaling would have sent.

    With a ``fleet``, group/hook/region default to the fleet's. For a launch
    without ``instance_id`` the emulator launches a new instance in
    ``Pending:Wait`` (its id is in ``event["detail"]["EC2InstanceId"]``).
    Terminate: the instance goes to ``Terminating:Wait`` and (``decrement``)
    the desired capacity drops by one, as on a scale-in.
    """
    trans = _transition(transition)
    if fleet is not None:
        region = region or fleet.region
        group = group or fleet.asg_name
        hook = hook or (fleet.terminate_hook if trans == TERMINATING else fleet.launch_hook)
        account = account or fleet.account
    if isinstance(instance_id, FleetInstance):
        instance_id = instance_id.ec2_instance_id
    if not group or not hook:
        raise ValueError("group and hook are required (or pass a fleet)")
    action = create_lifecycle_action(
        endpoint,
        region=region or "us-east-1",
        group=group,
        hook=hook,
        transition=trans,
        instance_id=instance_id,
        token=token,
        decrement=decrement,
        origin=origin,
        destination=destination,
        account=account or ACCOUNT,
    )
    return lifecycle_event(action, metadata=metadata)


def lifecycle_actions(endpoint: str, region: str = "us-east-1", **filters: str) -> list[dict[str, Any]]:
    """GET /_autopilot/lifecycle-actions (filters: group, status, instance_id, token, account)."""
    query = "&".join(f"{k}={urllib.request.quote(str(v))}" for k, v in {"region": region, **filters}.items())
    return control(endpoint, "GET", f"/_autopilot/lifecycle-actions?{query}")["lifecycle_actions"]


def expire_lifecycle_action(endpoint: str, token: str, region: str = "us-east-1", account: str = ACCOUNT) -> dict[str, Any]:
    """Apply the hook's DefaultResult as if the heartbeat timeout had passed."""
    return control(endpoint, "POST", "/_autopilot/lifecycle-actions/timeout",
                   {"region": region, "token": token, "account": account})


def set_refresh_status(
    endpoint: str,
    group: str,
    status: str,
    *,
    region: str = "us-east-1",
    refresh_id: str | None = None,
    status_reason: Any = ...,
    percentage: int | None = None,
    replace_instances: bool = True,
    replace: int | None = None,
    account: str = ACCOUNT,
) -> dict[str, Any]:
    """POST /_autopilot/instance-refresh: move a refresh (default: the latest)
    to ``status``. ``status_reason``: leave as is (default), a string, or None
    to remove it. ``replace``: with a running status, replace that many of the
    instances the refresh still has to replace now."""
    body: dict[str, Any] = {"region": region, "group": group, "status": status, "replace_instances": replace_instances,
                            "account": account}
    if replace is not None:
        body["replace"] = replace
    if refresh_id:
        body["id"] = refresh_id
    if status_reason is not ...:
        body["status_reason"] = status_reason
    if percentage is not None:
        body["percentage"] = percentage
    return control(endpoint, "POST", "/_autopilot/instance-refresh", body)


def instance_refreshes(endpoint: str, region: str = "us-east-1", group: str | None = None,
                       account: str = ACCOUNT) -> list[dict[str, Any]]:
    query = f"region={region}&account={account}" + (f"&group={urllib.request.quote(group)}" if group else "")
    return control(endpoint, "GET", f"/_autopilot/instance-refresh?{query}")["instance_refreshes"]


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
