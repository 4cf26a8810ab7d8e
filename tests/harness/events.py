"""Every event the functions are given in the tests, the demos and the bench, and the
account ids, ids and timestamps they carry: one place to build what AWS would send.

    spot_event(instance)                                   # EventBridge, EC2 Spot warning
    lifecycle_event(action)                                # from an emulator lifecycle action
    ecs_retirement_event([f"{cluster}|web"], starts_in=timedelta(days=7))   # AWS Health
    parameter_event(region, name); scheduled_event(region); refresh_event(region, group, id)
    finding_event(fleet, task_arn, severity=9.5)           # GuardDuty, from tests/fixtures

Times are UTC: ``iso()`` (EventBridge ``time``), ``iso_ms()`` (SNS/GuardDuty, with
milliseconds), ``rfc1123()`` (AWS Health). ``MAINTENANCE_WINDOW`` values for a window that
is open or closed now: ``window_at``, ``closed_window``, ``window_around_now``,
``closed_days_ahead``, ``ALWAYS_OPEN_WINDOW``.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

ACCOUNT = "123456789012"  # moto's default account: the hub's, where the functions run
REGION = "us-east-1"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


# --------------------------------------------------------------------------
# ids and timestamps
# --------------------------------------------------------------------------


def ami(tag: str = "") -> str:
    """A well-formed, unique AMI id (`tag` is for people reading the test)."""
    return "ami-" + uuid.uuid4().hex[:17]


def iso(t: datetime | None = None) -> str:
    """EventBridge's `time`: `2024-06-12T20:30:00Z` (now by default)."""
    return (t or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_iso() -> str:
    return iso()


def iso_ms(t: datetime | None = None) -> str:
    """SNS's and GuardDuty's timestamps: `2024-06-12T20:30:00.000Z`."""
    return (t or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def ago(**delta: float) -> str:
    """`iso()` of a moment in the past: ``ago(minutes=10)``."""
    return iso(datetime.now(timezone.utc) - timedelta(**delta))


def rfc1123(t: datetime) -> str:
    """AWS Health's time format: `Wed, 16 Aug 2023 23:18:51 GMT`."""
    return format_datetime(t.astimezone(timezone.utc).replace(microsecond=0), usegmt=True)


# --------------------------------------------------------------------------
# maintenance windows
# --------------------------------------------------------------------------


ALWAYS_OPEN_WINDOW = "Mon-Sun 00:00-24:00"


def window_at(start: datetime, minutes: int = 60) -> str:
    """A MAINTENANCE_WINDOW opening at `start` (minute precision, UTC) on that weekday."""
    start = start.astimezone(timezone.utc)
    end = start + timedelta(minutes=minutes)
    return f"{DAYS[start.weekday()]} {start:%H:%M}-{end:%H:%M}"


def closed_window(hours_from_now: int = 3) -> str:
    """A one-hour window that is closed now and opens in `hours_from_now` hours."""
    return window_at(datetime.now(timezone.utc) + timedelta(hours=hours_from_now))


def closed_days_ahead(days: int = 2) -> str:
    """A window that is closed now: a four-hour slot `days` days from today (longer than
    ami-rollout's default WINDOW_END_MARGIN_SECONDS, 2 h 20 min)."""
    return f"{DAYS[(time.gmtime().tm_wday + days) % 7]} 02:00-06:00"


def window_around_now(opened_minutes_ago: int, closes_in_minutes: int) -> str:
    """A MAINTENANCE_WINDOW that opened `opened_minutes_ago` and closes in
    `closes_in_minutes` (UTC; a span past midnight belongs to the day it starts)."""
    now = time.time()
    start = time.gmtime(now - opened_minutes_ago * 60)
    end = time.gmtime(now + closes_in_minutes * 60)
    end_text = f"{end.tm_hour:02d}:{end.tm_min:02d}"
    return f"{DAYS[start.tm_wday]} {start.tm_hour:02d}:{start.tm_min:02d}-{end_text}"


# --------------------------------------------------------------------------
# EventBridge events
# --------------------------------------------------------------------------


def eventbridge(detail_type: str, source: str, detail: dict[str, Any], *, region: str = REGION,
                resources: list[str] | None = None, account: str = ACCOUNT) -> dict[str, Any]:
    """The envelope EventBridge wraps every event in."""
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": source,
        "account": account, "time": iso(), "region": region, "resources": list(resources or []), "detail": detail,
    }


def _instance_id(instance: Any) -> str:
    return instance if isinstance(instance, str) else instance.ec2_instance_id


def spot_event(instance: Any, region: str = REGION) -> dict[str, Any]:
    """The `EC2 Spot Instance Interruption Warning` EventBridge sends (``instance``: an id
    or a harness.fleet.FleetInstance)."""
    return eventbridge("EC2 Spot Instance Interruption Warning", "aws.ec2",
                       {"instance-id": _instance_id(instance), "instance-action": "terminate"}, region=region)


def lifecycle_event(action: dict[str, Any], *, metadata: str | None = None) -> dict[str, Any]:
    """The EventBridge event Auto Scaling emits for a lifecycle action (as the emulator's
    /_autopilot/lifecycle-actions answers it)."""
    terminating = action["transition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
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
    return eventbridge(
        "EC2 Instance-terminate Lifecycle Action" if terminating else "EC2 Instance-launch Lifecycle Action",
        "aws.autoscaling", detail, region=action.get("region", REGION),
        resources=[action["group_arn"]] if action.get("group_arn") else [], account=action.get("account", ACCOUNT),
    )


def hook_test_notification(group: str = "g") -> dict[str, Any]:
    """What a hook's test notification looks like on the queue."""
    return {"AccountId": ACCOUNT, "RequestId": "r", "AutoScalingGroupName": group, "Service": "AWS Auto Scaling",
            "Event": "autoscaling:TEST_NOTIFICATION", "Time": "2024-06-12T20:30:00.000Z"}


# -- AWS Health and rebalance (task-retirement) ------------------------------


def health_event(
    service: str,
    code: str,
    entities: list[str],
    *,
    starts_in: timedelta = timedelta(days=7),
    status: str = "upcoming",
    event_arn: str | None = None,
    resources: list[str] | None = None,
    updated_at: datetime | None = None,
    region: str = REGION,
) -> dict[str, Any]:
    """An `AWS Health Event` as EventBridge delivers it (see tests/fixtures/retirement-*.json)."""
    now = datetime.now(timezone.utc)
    event_arn = event_arn or f"arn:aws:health:{region}::event/{service}/{code}/{code}_{uuid.uuid4().hex[:12]}"
    return eventbridge("AWS Health Event", "aws.health", {
        "eventArn": event_arn,
        "service": service,
        "eventTypeCode": code,
        "eventTypeCategory": "scheduledChange",
        "eventScopeCode": "ACCOUNT_SPECIFIC",
        "communicationId": uuid.uuid4().hex,
        "startTime": rfc1123(now + starts_in),
        "lastUpdatedTime": rfc1123(updated_at or now),
        "statusCode": status,
        "eventRegion": region,
        "eventDescription": [{"language": "en_US", "latestDescription": f"{code} notice for testing."}],
        "affectedEntities": [{"entityValue": e, "tags": {"team": "test"}} for e in entities],
    }, region=region, resources=list(entities if resources is None else resources))


def ecs_retirement_event(entities: list[str], **kwargs: Any) -> dict[str, Any]:
    return health_event("ECS", "AWS_ECS_TASK_PATCHING_RETIREMENT", entities, **kwargs)


def ec2_retirement_event(instance_ids: list[str], code: str = "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED", **kwargs: Any) -> dict[str, Any]:
    return health_event("EC2", code, instance_ids, **kwargs)


def rebalance_event(instance_id: str, region: str = REGION) -> dict[str, Any]:
    return eventbridge("EC2 Instance Rebalance Recommendation", "aws.ec2", {"instance-id": instance_id}, region=region,
                       resources=[f"arn:aws:ec2:{region}:{ACCOUNT}:instance/{instance_id}"])


# -- ami-rollout ---------------------------------------------------------------


def scheduled_event(region: str) -> dict[str, Any]:
    return eventbridge("Scheduled Event", "aws.events", {}, region=region,
                       resources=[f"arn:aws:events:{region}:{ACCOUNT}:rule/ami-rollout-schedule"])


def window_guard_event(region: str) -> dict[str, Any]:
    """What AmiRolloutWindowGuardRule's input transformer delivers: a Scheduled Event
    whose detail is {"check": "window"}."""
    event = scheduled_event(region)
    event["resources"] = [f"arn:aws:events:{region}:{ACCOUNT}:rule/ami-rollout-window-guard"]
    event["detail"] = {"check": "window"}
    return event


def parameter_event(region: str, name: str, operation: str = "Update") -> dict[str, Any]:
    return eventbridge("Parameter Store Change", "aws.ssm",
                       {"operation": operation, "name": name, "type": "String", "description": ""}, region=region,
                       resources=[f"arn:aws:ssm:{region}:{ACCOUNT}:parameter{name if name.startswith('/') else '/' + name}"])


REFRESH_PHASES = {
    "succeeded": "EC2 Auto Scaling Instance Refresh Succeeded",
    "failed": "EC2 Auto Scaling Instance Refresh Failed",
    "cancelled": "EC2 Auto Scaling Instance Refresh Cancelled",
    "rollback-succeeded": "EC2 Auto Scaling Instance Refresh Rollback Succeeded",
}


def refresh_event(region: str, group: str, refresh_id: str, phase: str = "succeeded") -> dict[str, Any]:
    return eventbridge(REFRESH_PHASES[phase], "aws.autoscaling",
                       {"InstanceRefreshId": refresh_id, "AutoScalingGroupName": group}, region=region,
                       resources=[f"arn:aws:autoscaling:{region}:{ACCOUNT}:autoScalingGroup:x:autoScalingGroupName/{group}"])


def ami_release_sns_event(release: str = "2023.0.20240702") -> dict[str, Any]:
    """What the `ecs-optimized-amazon-ami-update` topic delivers to a subscribed function."""
    message = {"ECSAgent": {"ReleaseVersion": "1.84.0"},
               "ECSAmis": [{"ReleaseVersion": release, "OsType": "linux", "Regions": {}}]}
    topic = "arn:aws:sns:us-east-1:177427601217:ecs-optimized-amazon-ami-update"
    return {"Records": [{
        "EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": f"{topic}:{uuid.uuid4()}",
        "Sns": {"Type": "Notification", "MessageId": str(uuid.uuid4()), "TopicArn": topic,
                "Subject": "New ECS-optimized AMIs", "Message": json.dumps(message),
                "Timestamp": iso_ms(), "MessageAttributes": {}}}]}


# -- GuardDuty findings (from the AWS-shaped fixtures in tests/fixtures) --------


EC2_FINDING = "guardduty-reverse-shell-ec2.json"
FARGATE_FINDING = "guardduty-bitcoin-tool-fargate.json"
MEDIUM_FINDING = "guardduty-docker-socket-medium.json"
SAMPLE_FINDING = "guardduty-sample-finding.json"
HOST_FINDING = "guardduty-host-new-binary-instance.json"
SEQUENCE_FINDING = "guardduty-attack-sequence-ecs.json"


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
    event["time"] = iso(now)
    event["region"] = fleet.region
    d["region"] = fleet.region
    d["updatedAt"] = iso_ms(now)
    return event



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
    event["id"] = str(uuid.uuid4())
    event["time"] = iso()
    event["region"] = d["region"] = fleet.region
    return event
