#!/usr/bin/env python3
"""moto server with the Auto Scaling calls ecs-autopilot needs and moto 5 lacks.

Run it in the foreground:

    python tests/emulator/launcher.py --host 127.0.0.1 --port 5055

It prints ``READY http://127.0.0.1:5055`` once the server answers and serves
until SIGTERM/SIGINT. Or use it in-process::

    from emulator import launcher
    server = launcher.start(5055)   # port 0 picks a free port; see server.url
    ...
    launcher.stop()

What the patch adds to moto (5.2.x) before the server starts:

* Auto Scaling ``CompleteLifecycleAction``, ``RecordLifecycleActionHeartbeat``,
  ``StartInstanceRefresh``, ``DescribeInstanceRefreshes``,
  ``CancelInstanceRefresh`` and ``DescribeScalingActivities`` (one activity per
  lifecycle action), with state kept on moto's per account/region
  Auto Scaling backend (so ``POST /moto-api/reset`` clears it too) and the
  Query-protocol error responses AWS sends.
* Test-control endpoints under ``/_autopilot/``, because moto never creates
  lifecycle actions and never moves an instance refresh along:

  - ``POST /_autopilot/lifecycle-actions``: create an active lifecycle action
  - ``GET  /_autopilot/lifecycle-actions?region=&group=&status=``: list them
  - ``POST /_autopilot/lifecycle-actions/timeout``: apply the hook's default result
  - ``POST /_autopilot/instance-refresh``: set a refresh's status
  - ``GET  /_autopilot/instance-refresh?region=&group=``: list refreshes
  - ``POST /_autopilot/ssm-parameter``: write any SSM parameter, incl. /aws/service/...
  - ``POST /_autopilot/container-instances``: register a group's instances in a cluster
    at once, as their ECS agents would at boot (fast seeding of large fleets)
  - ``POST /_autopilot/images``: make an AMI id describable
  - ``POST /_autopilot/clock``: move the lifecycle actions' clock (lapsed hooks take
    their DefaultResult)
  - ``POST /_autopilot/container-instance``: connect or disconnect a host's ECS agent
  - ``POST /_autopilot/instance-status``: set a host's EC2 status checks (impaired)
  - ``GET  /_autopilot/assume-role-calls``: every STS AssumeRole answered, per target account
  - ``GET  /_autopilot/health``

* ECS closer to AWS (turn off with ``--plain-moto-ecs``): ``ListTasks`` with
  an exact cluster match instead of moto's substring match, ``desiredStatus``
  defaulting to RUNNING, and ``serviceName`` matching the task group
  ``service:NAME``; StartTask tasks get launchType EC2 and startedAt;
  StopTask sets stoppedAt/stopCode and is a no-op on a stopped task; cluster
  and service running/pending counts computed from the tasks.
* STS AssumeRole as AWS answers it: AccessDenied (403) into a role that does not exist
  or whose trust policy doesn't let the caller in; otherwise moto's credentials of the
  role's account (several accounts: see tests/emulator/README.md).
* ECS task status left in RUNNING until StopTask (``--manual-tasks``, the
  default). Without it moto moves a task one state towards STOPPED on each
  DescribeTasks.

The exact request and response shapes are in tests/emulator/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import signal
import socket
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timezone
from typing import Any

from moto.autoscaling.exceptions import AutoscalingClientError, ValidationError
from moto.autoscaling.models import AutoScalingBackend, autoscaling_backends
from moto.autoscaling.responses import AutoScalingResponse
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.responses import ActionResult

DEFAULT_REGION = "us-east-1"

TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TRANSITIONS = (TERMINATING, LAUNCHING)

# Instance refresh statuses that block a new StartInstanceRefresh.
REFRESH_ACTIVE = ("Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking")
REFRESH_TERMINAL = ("Successful", "Failed", "Cancelled", "RollbackFailed", "RollbackSuccessful")
REFRESH_STATUSES = REFRESH_ACTIVE + REFRESH_TERMINAL

# "manual" progression with a tick count that is never reached.
# Note: times=-1 does NOT work: moto tests `tick >= times`, so -1 moves the
# task on every read of its status.
ECS_TASK_HOLD_TRANSITION = {"progression": "manual", "times": 2**62}

OPTIONS: dict[str, Any] = {
    # Clean up ECS when a lifecycle action or refresh terminates an instance:
    # stop its tasks ("Host EC2 (instance i-...) terminated.") and deregister
    # its container instance.
    "ecs_cleanup": True,
}

_LOCK = threading.RLock()


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------


class InstanceRefreshInProgress(AutoscalingClientError):
    code = "InstanceRefreshInProgress"
    message = (
        "An Instance Refresh is already in progress and blocks the execution "
        "of this Instance Refresh."
    )

    def __init__(self) -> None:
        super().__init__(self.message)


class ActiveInstanceRefreshNotFound(AutoscalingClientError):
    code = "ActiveInstanceRefreshNotFound"

    def __init__(self, group: str) -> None:
        super().__init__(
            f"No in progress or pending Instance Refresh found for Auto Scaling group {group}"
        )


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --------------------------------------------------------------------------
# state kept on the moto backends
# --------------------------------------------------------------------------


def _now() -> datetime:
    # Moved on by POST /_autopilot/clock (instance-drain test bed, below).
    return datetime.fromtimestamp(time.time() + _CLOCK["offset_seconds"], timezone.utc)


def _real_now() -> datetime:
    """Real time, for everything but lifecycle actions: SSM, EC2 and ECS keep real time,
    so a refresh must too (its StartTime is compared with a parameter's LastModifiedDate)."""
    return datetime.now(timezone.utc)


def _iso(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value else None


class LifecycleAction:
    def __init__(
        self,
        *,
        region: str,
        account: str,
        group: str,
        hook: str,
        instance_id: str,
        transition: str,
        token: str,
        heartbeat_timeout: int,
        default_result: str,
        decrement: bool,
    ) -> None:
        self.region = region
        self.account = account
        self.group = group
        self.hook = hook
        self.instance_id = instance_id
        self.transition = transition
        self.token = token
        self.heartbeat_timeout = heartbeat_timeout
        self.default_result = default_result
        self.decrement = decrement
        self.status = "active"
        self.result: str | None = None
        self.completed_by: str | None = None
        self.heartbeats = 0
        self.created_at = _now()
        self.last_heartbeat_at: datetime | None = None
        self.completed_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "account": self.account,
            "group": self.group,
            "hook": self.hook,
            "instance_id": self.instance_id,
            "transition": self.transition,
            "token": self.token,
            "status": self.status,
            "result": self.result,
            "completed_by": self.completed_by,
            "heartbeats": self.heartbeats,
            "heartbeat_timeout": self.heartbeat_timeout,
            "default_result": self.default_result,
            "decrement": self.decrement,
            "created_at": _iso(self.created_at),
            "last_heartbeat_at": _iso(self.last_heartbeat_at),
            "completed_at": _iso(self.completed_at),
        }


def _actions(backend: AutoScalingBackend) -> list[LifecycleAction]:
    store = getattr(backend, "_autopilot_lifecycle_actions", None)
    if store is None:
        store = []
        backend._autopilot_lifecycle_actions = store  # type: ignore[attr-defined]
    return store


def _refreshes(backend: AutoScalingBackend) -> dict[str, list[dict[str, Any]]]:
    store = getattr(backend, "_autopilot_instance_refreshes", None)
    if store is None:
        store = {}
        backend._autopilot_instance_refreshes = store  # type: ignore[attr-defined]
    return store


def _find_active_action(
    backend: AutoScalingBackend,
    group: str | None,
    hook: str | None,
    token: str | None,
    instance_id: str | None,
) -> LifecycleAction | None:
    for action in _actions(backend):
        if action.status != "active":
            continue
        if group and action.group != group:
            continue
        if hook and action.hook != hook:
            continue
        if token and action.token != token:
            continue
        if instance_id and action.instance_id != instance_id:
            continue
        return action
    return None


def _no_active_action(token: str | None, instance_id: str | None) -> ValidationError:
    if instance_id:
        return ValidationError(f"No active Lifecycle Action found with instance ID {instance_id}")
    return ValidationError(f"No active Lifecycle Action found with token {token}")


# --------------------------------------------------------------------------
# effects on groups, EC2 and ECS
# --------------------------------------------------------------------------


def _instance_state(group: Any, instance_id: str) -> Any:
    for state in group.instance_states:
        if state.instance.id == instance_id:
            return state
    return None


def _ecs_cleanup(account: str, region: str, instance_ids: list[str]) -> None:
    """What ECS does once an EC2 instance is gone: its tasks stop and its
    container instance leaves the cluster (moto has no INACTIVE state that
    ListContainerInstances hides, so it is deregistered outright)."""
    if not OPTIONS["ecs_cleanup"] or not instance_ids:
        return
    from moto.ecs.models import ecs_backends

    ecs = ecs_backends[account][region]
    for cluster_name, instances in list(ecs.container_instances.items()):
        if cluster_name not in ecs.clusters:
            continue
        for ci_id, ci in list(instances.items()):
            if ci.ec2_instance_id not in instance_ids:
                continue
            arn = ci.container_instance_arn
            for task_arn, task in list(ecs.tasks.get(cluster_name, {}).items()):
                if task.container_instance_arn == arn and task.desired_status != "STOPPED":
                    task.stop_code = "TerminationNotice"
                    ecs.stop_task(
                        cluster_name,
                        task_arn,
                        f"Host EC2 (instance {ci.ec2_instance_id}) terminated.",
                    )
            ci.agent_connected = False
            ci.running_tasks_count = 0
            ecs.deregister_container_instance(cluster_name, ci_id, True)
            ecs.container_instances.get("orphaned", {}).pop(ci_id, None)


def _remove_and_terminate(backend: AutoScalingBackend, group: Any, instance_ids: list[str]) -> None:
    """Take instances out of the group and terminate them without letting moto
    launch replacements (moto's ASG only reacts to the EC2 TerminateInstances
    *API*, not to the backend call used here)."""
    group.instance_states = [s for s in group.instance_states if s.instance.id not in instance_ids]
    existing = []
    for iid in instance_ids:
        try:
            backend.ec2_backend.get_instance(iid)
            existing.append(iid)
        except Exception:
            pass
    if existing:
        backend.ec2_backend.terminate_instances(existing)
        try:
            from moto.elbv2.models import elbv2_backends

            elbv2_backends[backend.account_id][backend.region_name].notify_terminate_instances(existing)
        except Exception:
            pass
    backend.update_attached_elbs(group.name)
    backend.update_attached_target_groups(group.name)
    _ecs_cleanup(backend.account_id, backend.region_name, instance_ids)


def _decrement_desired(group: Any) -> None:
    group.desired_capacity = max(0, (group.desired_capacity or 0) - 1)
    if group.min_size is not None and group.min_size > group.desired_capacity:
        group.min_size = group.desired_capacity


def _launch_instances(group: Any, count: int) -> list[Any]:
    before = {s.instance.id for s in group.instance_states}
    group.replace_autoscaling_group_instances(count, group.get_propagated_tags())
    return [s for s in group.instance_states if s.instance.id not in before]


def _apply_completion(backend: AutoScalingBackend, action: LifecycleAction, result: str) -> None:
    group = backend.autoscaling_groups.get(action.group)
    if group is None:
        return
    state = _instance_state(group, action.instance_id)
    if action.transition == TERMINATING:
        # CONTINUE or ABANDON: the instance is terminated either way.
        _remove_and_terminate(backend, group, [action.instance_id])
        if not action.decrement:
            _launch_instances(group, 1)
    else:
        if result == "CONTINUE":
            if state is not None:
                state.lifecycle_state = "InService"
        else:
            _remove_and_terminate(backend, group, [action.instance_id])
            _decrement_desired(group)


# --------------------------------------------------------------------------
# Auto Scaling API actions (bound onto moto's AutoScalingResponse)
# --------------------------------------------------------------------------


def complete_lifecycle_action(self: AutoScalingResponse) -> ActionResult:
    group = self._get_param("AutoScalingGroupName")
    hook = self._get_param("LifecycleHookName")
    token = self._get_param("LifecycleActionToken")
    instance_id = self._get_param("InstanceId")
    result = self._get_param("LifecycleActionResult")
    if not token and not instance_id:
        raise ValidationError("Either LifecycleActionToken or InstanceId must be specified.")
    if result not in ("CONTINUE", "ABANDON"):
        raise ValidationError(
            f"Value '{result}' at 'lifecycleActionResult' failed to satisfy constraint: "
            "Member must satisfy enum value set: [CONTINUE, ABANDON]"
        )
    backend = self.autoscaling_backend
    with _LOCK:
        action = _find_active_action(backend, group, hook, token, instance_id)
        if action is None:
            raise _no_active_action(token, instance_id)
        action.status = "completed"
        action.result = result
        action.completed_by = "CompleteLifecycleAction"
        action.completed_at = _now()
        _apply_completion(backend, action, result)
    return ActionResult({})


def record_lifecycle_action_heartbeat(self: AutoScalingResponse) -> ActionResult:
    group = self._get_param("AutoScalingGroupName")
    hook = self._get_param("LifecycleHookName")
    token = self._get_param("LifecycleActionToken")
    instance_id = self._get_param("InstanceId")
    if not token and not instance_id:
        raise ValidationError("Either LifecycleActionToken or InstanceId must be specified.")
    backend = self.autoscaling_backend
    with _LOCK:
        action = _find_active_action(backend, group, hook, token, instance_id)
        if action is None:
            raise _no_active_action(token, instance_id)
        action.heartbeats += 1
        action.last_heartbeat_at = _now()
    return ActionResult({})


def _resolve_launch_template(backend: AutoScalingBackend, spec: dict[str, Any]) -> Any:
    tid = spec.get("LaunchTemplateId")
    name = spec.get("LaunchTemplateName")
    if bool(tid) == bool(name):
        raise ValidationError("Valid requests must contain either launchTemplateId or LaunchTemplateName")
    try:
        if tid:
            return backend.ec2_backend.get_launch_template(tid)
        return backend.ec2_backend.get_launch_template_by_name(name)
    except Exception:
        if tid:
            raise ValidationError(f"The specified launch template, with template ID {tid}, does not exist.")
        raise ValidationError(f"The specified launch template, with template name {name}, does not exist.")


def start_instance_refresh(self: AutoScalingResponse) -> ActionResult:
    group_name = self._get_param("AutoScalingGroupName")
    strategy = self._get_param("Strategy") or "Rolling"
    desired = self._get_param("DesiredConfiguration")
    preferences = self._get_param("Preferences")
    backend = self.autoscaling_backend
    with _LOCK:
        group = backend.autoscaling_groups.get(group_name)
        if group is None:
            raise ValidationError(
                f"AutoScalingGroup name not found - AutoScalingGroup {group_name} not found"
            )
        if strategy not in ("Rolling", "ReplaceRootVolume"):
            raise ValidationError(
                f"Value '{strategy}' at 'strategy' failed to satisfy constraint: "
                "Member must satisfy enum value set: [Rolling, ReplaceRootVolume]"
            )
        desired = _plain(desired) if desired else None
        if desired and desired.get("LaunchTemplate"):
            _resolve_launch_template(backend, desired["LaunchTemplate"])
        refreshes = _refreshes(backend).setdefault(group_name, [])
        if any(r["Status"] in REFRESH_ACTIVE for r in refreshes):
            raise InstanceRefreshInProgress()
        to_replace = _instances_to_replace(backend, group, desired, _plain(preferences) if preferences else {})
        refresh: dict[str, Any] = {
            "InstanceRefreshId": str(uuid.uuid4()),
            "AutoScalingGroupName": group_name,
            "Status": "Pending",
            "StartTime": _real_now(),
            "PercentageComplete": 0,
            "InstancesToUpdate": len(to_replace),
            "Strategy": strategy,
            "_to_replace": to_replace,
        }
        if preferences:
            refresh["Preferences"] = _plain(preferences)
        if desired:
            refresh["DesiredConfiguration"] = desired
        refreshes.append(refresh)
    return ActionResult({"InstanceRefreshId": refresh["InstanceRefreshId"]})


def _concrete_version(template: Any, version: Any) -> str:
    try:
        return str(template.get_version(version or "$Default").number)
    except Exception:
        return str(version)


def _instances_to_replace(backend: AutoScalingBackend, group: Any, desired: dict[str, Any] | None,
                          preferences: dict[str, Any]) -> list[str]:
    """The in-service instances a refresh replaces. With SkipMatching, instances already
    launched from the desired launch template version (or, without a desired
    configuration, from the group's own) are left alone: "it only replaces the instances
    that don't match your desired configuration" — AWS compares launch template and
    version, not the AMI an instance runs ("Use an instance refresh with skip matching",
    https://docs.aws.amazon.com/autoscaling/ec2/userguide/asg-instance-refresh-skip-matching.html).
    So an instance launched from a `resolve:ssm:` template before the parameter changed
    matches too."""
    in_service = [s for s in group.instance_states if s.lifecycle_state == "InService"]
    if str(preferences.get("SkipMatching", "false")).lower() != "true":
        return [s.instance.id for s in in_service]
    spec = (desired or {}).get("LaunchTemplate")
    if spec:
        template = _resolve_launch_template(backend, spec)
        version = _concrete_version(template, spec.get("Version"))
    elif group.ec2_launch_template is not None:
        template = group.ec2_launch_template
        version = _concrete_version(template, group.launch_template_version)
    else:
        return [s.instance.id for s in in_service]

    def matches(state: Any) -> bool:
        stamp = getattr(state, "_autopilot_launch_template", None) or {}
        return stamp.get("LaunchTemplateId") == template.id and str(stamp.get("Version")) == version

    return [s.instance.id for s in in_service if not matches(s)]


def describe_instance_refreshes(self: AutoScalingResponse) -> ActionResult:
    group_name = self._get_param("AutoScalingGroupName")
    ids = self._get_param("InstanceRefreshIds") or []
    max_records = int(self._get_param("MaxRecords") or 50)
    token = self._get_param("NextToken")
    backend = self.autoscaling_backend
    with _LOCK:
        items = list(reversed(_refreshes(backend).get(group_name, [])))
        if ids:
            items = [r for r in items if r["InstanceRefreshId"] in ids]
        start = 0
        if token:
            try:
                start = int(token)
            except ValueError:
                raise AutoscalingClientError("InvalidNextToken", "The token is invalid.")
        page = [_refresh_view(r) for r in items[start : start + max_records]]
        next_token = str(start + max_records) if len(items) > start + max_records else None
    return ActionResult({"InstanceRefreshes": page, "NextToken": next_token})


def cancel_instance_refresh(self: AutoScalingResponse) -> ActionResult:
    group_name = self._get_param("AutoScalingGroupName")
    backend = self.autoscaling_backend
    with _LOCK:
        if group_name not in backend.autoscaling_groups:
            raise ValidationError(
                f"AutoScalingGroup name not found - AutoScalingGroup {group_name} not found"
            )
        for refresh in reversed(_refreshes(backend).get(group_name, [])):
            if refresh["Status"] in ("Pending", "InProgress", "Baking"):
                refresh["Status"] = "Cancelling"
                refresh["StatusReason"] = "Cancelling the instance refresh."
                return ActionResult({"InstanceRefreshId": refresh["InstanceRefreshId"]})
        raise ActiveInstanceRefreshNotFound(group_name)


def _refresh_view(refresh: dict[str, Any]) -> dict[str, Any]:
    view = {k: v for k, v in refresh.items() if not k.startswith("_")}
    view["ProgressDetails"] = {
        "LivePoolProgress": {
            "PercentageComplete": refresh["PercentageComplete"],
            "InstancesToUpdate": refresh["InstancesToUpdate"],
        }
    }
    return view


def _plain(value: Any) -> Any:
    """moto's parsed params may be XFormedDict & co; make plain dict/list."""
    if hasattr(value, "original_dict"):
        value = value.original_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def describe_scaling_activities(self: AutoScalingResponse) -> ActionResult:
    """moto answers no activities at all. AWS records one per instance launched or
    terminated; while a lifecycle hook holds the instance its StatusCode is
    ``MidLifecycleAction`` and its StartTime is when the transition began, which is how
    an operator tells how long a hook has held it
    (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_Activity.html,
    https://docs.aws.amazon.com/autoscaling/ec2/userguide/lifecycle-hooks.html). Here:
    one activity per lifecycle action of the group, newest first."""
    group_name = self._get_param("AutoScalingGroupName")
    ids = self._get_param("ActivityIds") or []
    max_records = min(int(self._get_param("MaxRecords") or 100), 100)
    backend = self.autoscaling_backend
    with _LOCK:
        _expire_lapsed(backend)
        activities = []
        for action in _actions(backend):
            if group_name and action.group != group_name:
                continue
            verb = "Terminating EC2 instance" if action.transition == TERMINATING else "Launching a new EC2 instance"
            status = {"active": "MidLifecycleAction"}.get(action.status, "Successful")
            activity = {
                "ActivityId": str(uuid.uuid5(uuid.NAMESPACE_URL, action.token)),
                "AutoScalingGroupName": action.group,
                "Description": f"{verb}: {action.instance_id}",
                "Cause": f"At {_iso(action.created_at)} an instance was moved by a lifecycle transition.",
                "StartTime": action.created_at,
                "StatusCode": status,
                "Progress": 50 if status == "MidLifecycleAction" else 100,
            }
            if action.completed_at is not None:
                activity["EndTime"] = action.completed_at
            activities.append(activity)
        if ids:
            activities = [a for a in activities if a["ActivityId"] in ids]
        activities.sort(key=lambda a: a["StartTime"], reverse=True)
    return ActionResult({"Activities": activities[:max_records]})


PATCHED_ACTIONS = {
    "describe_scaling_activities": describe_scaling_activities,
    "complete_lifecycle_action": complete_lifecycle_action,
    "record_lifecycle_action_heartbeat": record_lifecycle_action_heartbeat,
    "start_instance_refresh": start_instance_refresh,
    "describe_instance_refreshes": describe_instance_refreshes,
    "cancel_instance_refresh": cancel_instance_refresh,
}


# --------------------------------------------------------------------------
# ECS fidelity patches
# --------------------------------------------------------------------------


def _aws_list_tasks(
    self: Any,
    cluster_str: str | None = None,
    container_instance: str | None = None,
    family: str | None = None,
    started_by: str | None = None,
    service_name: str | None = None,
    desiredStatus: str | None = None,
) -> list[Any]:
    """ListTasks as AWS does it: exact cluster match (moto: substring of the
    ARN), exact container instance (ARN or id), serviceName (moto: ignored)
    matched against the task group ``service:NAME``, and desiredStatus
    defaulting to RUNNING (moto: all tasks)."""
    tasks = [t for ts in self.tasks.values() for t in ts.values()]
    if cluster_str:
        cluster = self._get_cluster(cluster_str)
        tasks = [t for t in tasks if t.cluster_arn == cluster.arn]
    if container_instance:
        ci_id = container_instance.split("/")[-1]
        tasks = [
            t
            for t in tasks
            if t.container_instance_arn and t.container_instance_arn.split("/")[-1] == ci_id
        ]
    if family:
        arns = self.list_task_definitions(family)
        tasks = [t for t in tasks if t.task_definition_arn in arns]
    if started_by:
        tasks = [t for t in tasks if t.started_by == started_by]
    if service_name:
        name = service_name.split("/")[-1]
        tasks = [t for t in tasks if t.group == f"service:{name}"]
    wanted = desiredStatus or "RUNNING"
    return [t for t in tasks if t.desired_status == wanted]


def _tasks_named(backend: Any, cluster_str: str, task_strs: list[str]) -> list[Any]:
    """The named cluster's tasks whose id ends one of ``task_strs`` (ids, ARNs of either
    format), as AWS matches them."""
    cluster = backend._get_cluster(cluster_str)
    wanted = {t.split("/")[-1] for t in task_strs}
    return [task for arn, task in backend.tasks.get(cluster.name, {}).items() if arn.split("/")[-1] in wanted]


def _find_task(backend: Any, cluster_str: str, task_str: str) -> Any:
    return next(iter(_tasks_named(backend, cluster_str, [task_str])), None)


def _patch_ecs() -> None:
    from moto.core.utils import utcnow
    from moto.ecs import models as ecs_models

    backend_cls = ecs_models.EC2ContainerServiceBackend
    backend_cls.list_tasks = _aws_list_tasks  # type: ignore[method-assign]

    orig_start = backend_cls.start_task
    orig_stop = backend_cls.stop_task

    def start_task(self: Any, cluster_str: str, *args: Any, **kwargs: Any) -> Any:
        tasks = orig_start(self, cluster_str, *args, **kwargs)
        now = utcnow()
        for task in tasks:
            task.launch_type = task.launch_type or "EC2"
            task.created_at = getattr(task, "created_at", None) or now
            task.started_at = now
            task.pull_started_at = now
            task.pull_stopped_at = now
            task.connectivity = "CONNECTED"
            task.connectivity_at = now
            task.health_status = "UNKNOWN"
        return tasks

    def stop_task(self: Any, cluster_str: str, task_str: str, reason: str) -> Any:
        existing = _find_task(self, cluster_str, task_str)
        if existing is not None and existing.desired_status == "STOPPED":
            # AWS: stopping a stopped task is a no-op (moto would give the
            # container instance its resources back a second time).
            return existing
        task = orig_stop(self, cluster_str, task_str, reason)
        now = utcnow()
        task.stopping_at = now
        task.execution_stopped_at = now
        task.stopped_at = now
        task.stop_code = getattr(task, "stop_code", None) or "UserInitiated"
        return task

    def describe_tasks(self: Any, cluster_str: str, tasks: list[str]) -> list[Any]:
        # AWS: only the named cluster's tasks (moto: any cluster's task whose id is a
        # substring of a requested ARN); the old ARN format (task/<id>) names no cluster.
        self._get_cluster(cluster_str)
        if not tasks:
            raise ecs_models.InvalidParameterException("Tasks cannot be empty.")
        found = _tasks_named(self, cluster_str, tasks)
        for task in found:
            task.advance()
        return found

    backend_cls.start_task = start_task  # type: ignore[method-assign]
    backend_cls.stop_task = stop_task  # type: ignore[method-assign]
    backend_cls.describe_tasks = describe_tasks  # type: ignore[method-assign]

    # AWS applies the cluster query language filter; moto ignores it. The one expression
    # ecs-autopilot sends, `ec2InstanceId == i-...`, is applied here; others still list all.
    from moto.ecs import responses as ecs_responses

    def list_container_instances(self: Any) -> ActionResult:
        cluster_str = self._get_param("cluster", "default")
        arns = self.ecs_backend.list_container_instances(cluster_str, status=self._get_param("status"))
        match = re.fullmatch(r"\s*ec2InstanceId\s*==\s*(\S+)\s*", self._get_param("filter") or "")
        if match:
            cluster = self.ecs_backend.container_instances.get(cluster_str.split("/")[-1], {})
            on_host = {ci.container_instance_arn for ci in cluster.values() if ci.ec2_instance_id == match.group(1)}
            arns = [a for a in arns if a in on_host]
        return ActionResult({"containerInstanceArns": arns})

    ecs_responses.EC2ContainerServiceResponse.list_container_instances = list_container_instances  # type: ignore[method-assign]

    # Counts derived from the tasks the test placed (moto: fixed numbers, the
    # cluster's runningTasksCount even goes negative after StopTask).
    def _ecs_backend_for(obj: Any) -> Any:
        account = obj.arn.split(":")[4] if hasattr(obj, "arn") else obj._account_id
        return ecs_models.ecs_backends[account][obj.region_name]

    def _running(backend: Any, cluster_name: str, group: str | None = None) -> int:
        return sum(
            1
            for t in backend.tasks.get(cluster_name, {}).values()
            if t.desired_status == "RUNNING" and (group is None or t.group == group)
        )

    def _ignore(self: Any, value: Any) -> None:
        pass

    cluster_cls = ecs_models.Cluster
    cluster_cls.running_tasks_count = property(  # type: ignore[assignment]
        lambda self: _running(_ecs_backend_for(self), self.name), _ignore
    )
    cluster_cls.pending_tasks_count = property(lambda self: 0, _ignore)  # type: ignore[assignment]
    cluster_cls.active_services_count = property(  # type: ignore[assignment]
        lambda self: sum(
            1
            for s in _ecs_backend_for(self).services.values()
            if s.cluster_name == self.name and s.status == "ACTIVE"
        ),
        _ignore,
    )
    cluster_cls.registered_container_instances_count = property(  # type: ignore[assignment]
        lambda self: len(_ecs_backend_for(self).container_instances.get(self.name, {})), _ignore
    )

    service_cls = ecs_models.Service

    def _get_desired(self: Any) -> int:
        if getattr(self, "scheduling_strategy", "REPLICA") == "DAEMON":
            # AWS: one per ACTIVE container instance (moto: 0)
            backend = self._backend
            return sum(
                1
                for ci in backend.container_instances.get(self.cluster_name, {}).values()
                if ci.status == "ACTIVE"
            )
        return self._autopilot_desired

    def _set_desired(self: Any, value: Any) -> None:
        self._autopilot_desired = value

    service_cls.desired_count = property(_get_desired, _set_desired)  # type: ignore[assignment]
    service_cls.running_count = property(  # type: ignore[assignment]
        lambda self: _running(self._backend, self.cluster_name, f"service:{self.name}"), _ignore
    )
    service_cls.pending_count = property(  # type: ignore[assignment]
        lambda self: max(0, (self.desired_count or 0) - self.running_count),
        _ignore,
    )


# --------------------------------------------------------------------------
# patching
# --------------------------------------------------------------------------

_PATCHED = False


def patch_moto(ecs_fidelity: bool = True) -> None:
    """Idempotently add the missing actions to moto (in this process)."""
    global _PATCHED
    if _PATCHED:
        return
    for name, fn in PATCHED_ACTIONS.items():
        setattr(AutoScalingResponse, name, fn)

    orig_delete = AutoScalingBackend.delete_auto_scaling_group

    def delete_auto_scaling_group(self: AutoScalingBackend, group_name: str) -> None:
        orig_delete(self, group_name)
        with _LOCK:
            _refreshes(self).pop(group_name, None)
            for action in _actions(self):
                if action.group == group_name and action.status == "active":
                    action.status = "completed"
                    action.completed_by = "GroupDeleted"
                    action.completed_at = _now()

    AutoScalingBackend.delete_auto_scaling_group = delete_auto_scaling_group  # type: ignore[method-assign]
    _patch_instance_launch_template()
    _patch_launch_template_client_token()
    _patch_ssm_public_parameters()
    _patch_image_lookup()
    _patch_image_platform_details()
    _patch_mixed_group_launch_template()
    _patch_group_launches()
    _patch_instance_index()
    _patch_ec2_evidence()
    _patch_capacity_rebalance_update()
    _patch_scheduled_events()
    _patch_drain_test_bed()
    _patch_assume_role()
    if ecs_fidelity:
        _patch_ecs()
        _patch_ecs_deployments()
    _PATCHED = True


def _patch_ec2_evidence() -> None:
    """guardduty-responder's evidence and isolation calls, as EC2 answers them.

    - CreateSnapshots with CopyTagsFromSource=volume copies each volume's tags onto its
      snapshot, next to the TagSpecifications tags ("CopyTagsFromSource: Copies the tags
      from the specified volume to corresponding snapshot",
      https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSnapshots.html);
      moto ignores the parameter.
    - ModifyNetworkInterfaceAttribute with Groups naming a security group that does not
      exist fails with InvalidGroup.NotFound ("The specified security group does not
      exist", https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html;
      the Groups parameter "replaces the security groups of the network interface",
      https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyNetworkInterfaceAttribute.html);
      moto stored None as the interface's group and broke every later describe."""
    from moto.ec2.exceptions import InvalidSecurityGroupNotFoundError
    from moto.ec2.models.elastic_block_store import EBSBackend
    from moto.ec2.models.elastic_network_interfaces import NetworkInterfaceBackend
    from moto.ec2.responses.elastic_block_store import ElasticBlockStore

    orig_response = ElasticBlockStore.create_snapshots
    orig_snapshots = EBSBackend.create_snapshots

    def create_snapshots_response(self: Any) -> Any:
        copy = self._get_param("CopyTagsFromSource") == "volume"
        backend = self.ec2_backend
        if not copy:
            return orig_response(self)

        def with_volume_tags(inner: Any, instance_spec: Any, description: str, tags: dict[str, str]) -> Any:
            made = orig_snapshots(inner, instance_spec, description, tags)
            for snapshot in made:
                volume_tags = {t["key"]: t["value"] for t in inner.describe_tags(filters={"resource-id": [snapshot.volume.id]})}
                snapshot.add_tags({**volume_tags, **tags})
            return made

        backend.create_snapshots = lambda *a, **k: with_volume_tags(backend, *a, **k)
        try:
            return orig_response(self)
        finally:
            del backend.create_snapshots

    ElasticBlockStore.create_snapshots = create_snapshots_response  # type: ignore[method-assign]

    orig_modify = NetworkInterfaceBackend.modify_network_interface_attribute

    def modify_network_interface_attribute(self: Any, eni_id: str, group_ids: list[str], *args: Any, **kwargs: Any) -> None:
        for group_id in group_ids or []:
            if self.get_security_group_from_id(group_id) is None:
                raise InvalidSecurityGroupNotFoundError(group_id)
        orig_modify(self, eni_id, group_ids, *args, **kwargs)

    NetworkInterfaceBackend.modify_network_interface_attribute = modify_network_interface_attribute  # type: ignore[method-assign]


def _patch_capacity_rebalance_update() -> None:
    """UpdateAutoScalingGroup applies `CapacityRebalance` (moto reads it only on
    CreateAutoScalingGroup and drops it on update). AWS: "CapacityRebalance — Enables or
    disables Capacity Rebalancing" is an UpdateAutoScalingGroup parameter, and
    DescribeAutoScalingGroups returns the group's `CapacityRebalance`
    (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_UpdateAutoScalingGroup.html,
    https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-capacity-rebalancing.html).
    """
    orig_update = AutoScalingResponse.update_auto_scaling_group

    def update_auto_scaling_group(self: AutoScalingResponse) -> ActionResult:
        result = orig_update(self)
        value = self._get_bool_param("CapacityRebalance", None)
        if value is not None:
            group = self.autoscaling_backend.autoscaling_groups[self._get_param("AutoScalingGroupName")]
            group.capacity_rebalance = value
        return result

    AutoScalingResponse.update_auto_scaling_group = update_auto_scaling_group  # type: ignore[method-assign]


def _patch_ecs_deployments() -> None:
    """Deployments as task-retirement's disruption budget and deployment-controller
    handling see them (moto: every ECS-controller deployment stays IN_PROGRESS forever,
    because its running count is an environment variable; and any controller accepts
    forceNewDeployment).

    * rolloutState: AWS marks a deployment COMPLETED once it reached steady state, i.e.
      its tasks run at the desired count
      (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Deployment.html,
      `rolloutState`). Here the PRIMARY deployment of an ECS-controller service is
      IN_PROGRESS while a RUNNING task of the service was started before the deployment
      (forceNewDeployment resets `createdAt`: its old tasks are still to be replaced) or
      fewer tasks than desired run, else COMPLETED. A test "finishes" a deployment by
      stopping the old tasks and starting new ones (harness.fleet.start_service_tasks).
    * forceNewDeployment on a service with the CODE_DEPLOY or EXTERNAL deployment
      controller is rejected with InvalidParameterException: AWS only lets UpdateService
      change a few fields of those services and a new deployment goes through CodeDeploy
      or the external controller
      (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_UpdateService.html,
      "If your service uses the CODE_DEPLOY deployment controller ..."; and
      https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-external.html).
    * deploymentConfiguration: AWS always returns it; for a REPLICA service created
      without one the defaults are minimumHealthyPercent 100 and maximumPercent 200
      (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentConfiguration.html).
    """
    from moto.ecs import models as ecs_models

    service_cls = ecs_models.Service

    def _get_deployments(self: Any) -> list[dict[str, Any]]:
        deployments = self.__dict__.get("_autopilot_deployments", [])
        controller = (self.deployment_controller or {}).get("type", "ECS")
        if controller != "ECS":
            return deployments
        backend = self._backend
        group = f"service:{self.name}"
        running = [
            t
            for t in backend.tasks.get(self.cluster_name, {}).values()
            if t.desired_status == "RUNNING" and t.group == group
        ]
        for d in deployments:
            if d.get("status") != "PRIMARY":
                continue
            created = d.get("createdAt")
            old = [t for t in running if created is not None and getattr(t, "started_at", None) is not None and t.started_at < created]
            done = not old and len(running) >= (self.desired_count or 0)
            d["rolloutState"] = "COMPLETED" if done else "IN_PROGRESS"
            d["rolloutStateReason"] = f"ECS deployment {d['id']} {'completed' if done else 'in progress'}."
            d["runningCount"] = len(running) - len(old)
        return deployments

    def _set_deployments(self: Any, value: Any) -> None:
        self.__dict__["_autopilot_deployments"] = value

    service_cls.deployments = property(_get_deployments, _set_deployments)  # type: ignore[assignment]

    def _get_deployment_configuration(self: Any) -> Any:
        value = self.__dict__.get("_autopilot_deployment_configuration")
        if value:
            return value
        if getattr(self, "scheduling_strategy", "REPLICA") == "DAEMON":
            return {"maximumPercent": 100, "minimumHealthyPercent": 0}
        return {"maximumPercent": 200, "minimumHealthyPercent": 100}

    def _set_deployment_configuration(self: Any, value: Any) -> None:
        self.__dict__["_autopilot_deployment_configuration"] = value

    service_cls.deployment_configuration = property(  # type: ignore[assignment]
        _get_deployment_configuration, _set_deployment_configuration
    )

    backend_cls = ecs_models.EC2ContainerServiceBackend
    orig_update = backend_cls.update_service

    def update_service(self: Any, service_properties: dict[str, Any]) -> Any:
        if service_properties.get("force_new_deployment"):
            cluster_str = service_properties.get("cluster", "default")
            service = self._get_service(cluster_str, service_properties["service"].split("/")[-1])
            controller = (service.deployment_controller or {}).get("type", "ECS")
            if controller != "ECS":
                raise ecs_models.InvalidParameterException(
                    f"Cannot force a new deployment on services with a {controller} deployment controller. "
                    + ("Use AWS CodeDeploy to trigger a new deployment." if controller == "CODE_DEPLOY" else "Create a new task set.")
                )
        return orig_update(self, service_properties)

    backend_cls.update_service = update_service  # type: ignore[method-assign]

    from moto.ecs import responses as ecs_responses

    response_cls = ecs_responses.EC2ContainerServiceResponse
    orig_create_response = response_cls.create_service

    def create_service(self: Any) -> ActionResult:
        result = orig_create_response(self)
        config = self._get_param("deploymentConfiguration")
        if config:
            service = self.ecs_backend._get_service(self._get_param("cluster", "default"), self._get_param("serviceName"))
            service.deployment_configuration = {
                k: config[k] for k in ("maximumPercent", "minimumHealthyPercent") if k in config
            }
        return result

    response_cls.create_service = create_service  # type: ignore[method-assign]


def _patch_instance_index() -> None:
    """EC2 `get_instance` by an index instead of a scan of every instance (moto: O(n) per
    lookup, so registering n container instances cost O(n²) and a 20,000-host bench fleet
    took many minutes to seed). Same answers: moto never removes a reservation, and a
    reservation is indexed again when its instance count changes (run_instances stores it
    before appending its instances)."""
    from moto.ec2.exceptions import InvalidInstanceIdError
    from moto.ec2.models.instances import InstanceBackend

    def get_instance(self: Any, instance_id: str) -> Any:
        index: dict[str, Any] = self.__dict__.setdefault("_autopilot_instance_index", {})
        counts: dict[str, int] = self.__dict__.setdefault("_autopilot_indexed_counts", {})
        found = index.get(instance_id)
        if found is None:
            with _LOCK:
                for rid, reservation in list(self.reservations.items()):
                    if counts.get(rid) != len(reservation.instances):
                        for instance in list(reservation.instances):
                            index[instance.id] = instance
                        counts[rid] = len(reservation.instances)
            found = index.get(instance_id)
        if found is None:
            raise InvalidInstanceIdError(instance_id)
        return found

    InstanceBackend.get_instance = get_instance  # type: ignore[method-assign]


def _patch_image_lookup() -> None:
    """Every new EC2 instance looks up its AMI with DescribeImages(image-id filter), which
    moto answers by fnmatch-ing ~1,300 bundled images: 60 ms per instance, 20 minutes for
    a 20,000-instance fleet. An exact image-id filter is answered from the id index with
    the same result."""
    from moto.ec2.models.amis import AmiBackend

    orig = AmiBackend.describe_images

    def describe_images(self: Any, ami_ids: Any = None, filters: Any = None, exec_users: Any = None, owners: Any = None) -> Any:
        wanted = (filters or {}).get("image-id") if not (ami_ids or exec_users or owners) else None
        if isinstance(wanted, list) and len(wanted) == 1:
            wanted = wanted[0]
        if len(filters or {}) == 1 and isinstance(wanted, str) and not any(c in wanted for c in "*?["):
            return [self.amis[wanted]] if wanted in self.amis else []
        return orig(self, ami_ids=ami_ids, filters=filters, exec_users=exec_users, owners=owners)

    AmiBackend.describe_images = describe_images  # type: ignore[method-assign]


# --------------------------------------------------------------------------
# AMI fields moto lacks (ami-rollout compares images before rolling a group)
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# test-control HTTP endpoints
# --------------------------------------------------------------------------


def _backend(body: dict[str, Any]) -> AutoScalingBackend:
    region = body.get("region") or DEFAULT_REGION
    account = body.get("account") or DEFAULT_ACCOUNT_ID
    return autoscaling_backends[account][region]


def _require(body: dict[str, Any], *keys: str) -> None:
    missing = [k for k in keys if not body.get(k)]
    if missing:
        raise ControlError(400, f"missing field(s): {', '.join(missing)}")


def control_create_lifecycle_action(body: dict[str, Any]) -> dict[str, Any]:
    _require(body, "group", "hook", "transition")
    transition = body["transition"]
    if transition not in TRANSITIONS:
        raise ControlError(400, f"transition must be one of {TRANSITIONS}")
    backend = _backend(body)
    group = backend.autoscaling_groups.get(body["group"])
    if group is None:
        raise ControlError(404, f"Auto Scaling group {body['group']} not found")
    hook = backend.lifecycle_hooks.get(f"{body['group']}_{body['hook']}")
    if hook is None:
        raise ControlError(404, f"lifecycle hook {body['hook']} not found on group {body['group']}")
    if hook.lifecycle_transition != transition:
        raise ControlError(
            400, f"hook {body['hook']} is for {hook.lifecycle_transition}, not {transition}"
        )
    decrement = bool(body.get("decrement", True))
    instance_id = body.get("instance_id")
    if transition == TERMINATING:
        _require(body, "instance_id")
        state = _instance_state(group, instance_id)
        if state is None:
            raise ControlError(404, f"instance {instance_id} is not in group {group.name}")
        if state.lifecycle_state != "InService":
            raise ControlError(409, f"instance {instance_id} is {state.lifecycle_state}, not InService")
        state.lifecycle_state = "Terminating:Wait"
        if decrement:
            _decrement_desired(group)
    else:
        if instance_id:
            state = _instance_state(group, instance_id)
            if state is None:
                raise ControlError(404, f"instance {instance_id} is not in group {group.name}")
        else:
            if group.max_size is not None and (group.desired_capacity or 0) + 1 > group.max_size:
                raise ControlError(409, f"group {group.name} is at its max size {group.max_size}")
            group.desired_capacity = (group.desired_capacity or 0) + 1
            state = _launch_instances(group, 1)[0]
            instance_id = state.instance.id
        state.lifecycle_state = "Pending:Wait"
    token = body.get("token") or str(uuid.uuid4())
    if any(a.token == token for a in _actions(backend)):
        raise ControlError(409, f"token {token} already used")
    action = LifecycleAction(
        region=backend.region_name,
        account=backend.account_id,
        group=group.name,
        hook=hook.name,
        instance_id=instance_id,
        transition=transition,
        token=token,
        heartbeat_timeout=hook.heartbeat_timeout,
        default_result=hook.default_result,
        decrement=decrement,
    )
    _actions(backend).append(action)
    result = action.to_json()
    result["group_arn"] = group.arn
    return result


def control_list_lifecycle_actions(query: dict[str, str]) -> dict[str, Any]:
    backend = _backend(query)
    items = [a.to_json() for a in _actions(backend)]
    for key in ("group", "status", "instance_id", "token"):
        if query.get(key):
            items = [a for a in items if a[key] == query[key]]
    return {"lifecycle_actions": items}


def control_timeout_lifecycle_action(body: dict[str, Any]) -> dict[str, Any]:
    backend = _backend(body)
    action = _find_active_action(backend, body.get("group"), body.get("hook"), body.get("token"), body.get("instance_id"))
    if action is None or not (body.get("token") or body.get("instance_id")):
        raise ControlError(404, "no matching active lifecycle action")
    action.status = "completed"
    action.result = action.default_result
    action.completed_by = "HeartbeatTimeout"
    action.completed_at = _now()
    _apply_completion(backend, action, action.default_result)
    return action.to_json()


def control_set_instance_refresh(body: dict[str, Any]) -> dict[str, Any]:
    _require(body, "group", "status")
    status = body["status"]
    if status not in REFRESH_STATUSES:
        raise ControlError(400, f"status must be one of {REFRESH_STATUSES}")
    backend = _backend(body)
    refreshes = _refreshes(backend).get(body["group"], [])
    if not refreshes:
        raise ControlError(404, f"no instance refresh for group {body['group']}")
    if body.get("id"):
        matches = [r for r in refreshes if r["InstanceRefreshId"] == body["id"]]
        if not matches:
            raise ControlError(404, f"instance refresh {body['id']} not found")
        refresh = matches[0]
    else:
        refresh = refreshes[-1]
    refresh["Status"] = status
    if "status_reason" in body:
        if body["status_reason"] is None:
            refresh.pop("StatusReason", None)
        else:
            refresh["StatusReason"] = body["status_reason"]
    if body.get("percentage") is not None:
        refresh["PercentageComplete"] = int(body["percentage"])
    elif status == "Successful":
        refresh["PercentageComplete"] = 100
    # InstancesToUpdate = instances still to replace (AWS: 0 once Successful)
    initial = refresh.setdefault("_initial_instances", refresh["InstancesToUpdate"])
    refresh["InstancesToUpdate"] = (
        0 if status == "Successful" else math.ceil(initial * (100 - refresh["PercentageComplete"]) / 100)
    )
    if status in REFRESH_TERMINAL:
        refresh["EndTime"] = _real_now()
    else:
        refresh.pop("EndTime", None)
    replaced: list[dict[str, str]] = []
    group = backend.autoscaling_groups.get(body["group"])
    if body.get("replace") and status not in REFRESH_TERMINAL and group is not None:
        # Part of the refresh is done: the next N instances it replaces are replaced now,
        # launched from its desired configuration (the group keeps its own until success).
        replaced = _replace_from(backend, group, refresh, int(body["replace"]))
    if status == "Successful" and not refresh.get("_applied"):
        refresh["_applied"] = True
        group = backend.autoscaling_groups.get(body["group"])
        if group is not None:
            replaced = _apply_refresh(backend, group, refresh, bool(body.get("replace_instances", True)))
    view = _json_ready(_refresh_view(refresh))
    view["replaced_instances"] = replaced
    return view


def _replace_from(backend: AutoScalingBackend, group: Any, refresh: dict[str, Any], count: int) -> list[dict[str, str]]:
    """Replace up to `count` instances still to be replaced by `refresh`, launching from
    its desired launch template version if it has one."""
    live = {s.instance.id for s in group.instance_states if s.lifecycle_state == "InService"}
    old = [i for i in refresh.get("_to_replace", sorted(live)) if i in live][:count]
    if not old:
        return []
    lt_spec = (refresh.get("DesiredConfiguration") or {}).get("LaunchTemplate")
    saved = (group.ec2_launch_template, group.launch_template_version)
    if lt_spec:
        group.ec2_launch_template = _resolve_launch_template(backend, lt_spec)
        group.launch_template_version = lt_spec.get("Version") or "$Default"
    try:
        _remove_and_terminate(backend, group, old)
        new = _launch_instances(group, len(old))
    finally:
        group.ec2_launch_template, group.launch_template_version = saved
    refresh["_to_replace"] = [i for i in refresh.get("_to_replace", []) if i not in old]
    return [{"old": o, "new": n.instance.id} for o, n in zip(old, new)]


def _apply_refresh(backend: AutoScalingBackend, group: Any, refresh: dict[str, Any], replace: bool) -> list[dict[str, str]]:
    lt_spec = (refresh.get("DesiredConfiguration") or {}).get("LaunchTemplate")
    if lt_spec:
        template = _resolve_launch_template(backend, lt_spec)
        version = lt_spec.get("Version")
        group.ec2_launch_template = template
        group.launch_template_version = version or "$Default"
        group.provided_launch_template_version = version
        group.launch_config = None
    if not replace:
        return []
    live = [s.instance.id for s in group.instance_states if s.lifecycle_state == "InService"]
    # Only what the refresh still had to replace (skip matching left the rest).
    old = [i for i in refresh.get("_to_replace", live) if i in live]
    if not old:
        return []
    _remove_and_terminate(backend, group, old)
    new = _launch_instances(group, len(old))
    return [{"old": o, "new": n.instance.id} for o, n in zip(old, new)]


def control_list_instance_refreshes(query: dict[str, str]) -> dict[str, Any]:
    backend = _backend(query)
    out = []
    for group, items in _refreshes(backend).items():
        if query.get("group") and query["group"] != group:
            continue
        out.extend(_json_ready(_refresh_view(r)) for r in items)
    return {"instance_refreshes": out}


def control_put_ssm_parameter(body: dict[str, Any]) -> dict[str, Any]:
    """Write an SSM parameter, including AWS-reserved public ones such as
    /aws/service/ecs/optimized-ami/... (PutParameter refuses those) - e.g. to
    publish a "new recommended ECS AMI". Adds a version like an overwrite."""
    _require(body, "name", "value")
    from moto.core.utils import utcnow
    from moto.ssm.models import Parameter, ssm_backends

    region = body.get("region") or DEFAULT_REGION
    account = body.get("account") or DEFAULT_ACCOUNT_ID
    backend = ssm_backends[account][region]
    name = body["name"]
    value = body["value"]
    if not isinstance(value, str):
        value = json.dumps(value)
    versions = backend._parameters[name]  # loads moto's bundled public parameters first
    previous = versions[-1] if versions else None
    param = Parameter(
        account_id=account,
        name=name,
        value=value,
        parameter_type=body.get("type") or (previous.parameter_type if previous else "String"),
        description=previous.description if previous else None,
        allowed_pattern=None,
        keyid=None,
        last_modified_date=utcnow(),
        version=(previous.version + 1) if previous else 1,
        data_type=body.get("data_type") or (previous.data_type if previous else "text"),
        tier=previous.tier if previous else "Standard",
    )
    versions.append(param)
    return {"name": name, "value": value, "version": param.version}


def control_register_container_instances(body: dict[str, Any]) -> dict[str, Any]:
    """Register every InService/Pending instance of ``group`` that is not yet a container
    instance of ``cluster``: one call instead of one RegisterContainerInstance per host,
    for seeding fleets of thousands of instances."""
    _require(body, "cluster", "group")
    from moto.ecs.models import ecs_backends

    group = _backend(body).autoscaling_groups.get(body["group"])
    if group is None:
        raise ControlError(404, f"Auto Scaling group {body['group']} not found")
    ecs = ecs_backends[body.get("account") or DEFAULT_ACCOUNT_ID][body.get("region") or DEFAULT_REGION]
    if body["cluster"] not in ecs.clusters:
        raise ControlError(404, f"cluster {body['cluster']} not found")
    known = {ci.ec2_instance_id for ci in ecs.container_instances.get(body["cluster"], {}).values()}
    out = []
    for state in group.instance_states:
        if state.instance.id in known or state.lifecycle_state not in ("InService", "Pending:Wait", "Pending"):
            continue
        ci = ecs.register_container_instance(body["cluster"], state.instance.id)
        out.append({
            "ec2_instance_id": state.instance.id,
            "container_instance_arn": ci.container_instance_arn,
            "availability_zone": state.instance.availability_zone,
        })
    return {"container_instances": out}


# --------------------------------------------------------------------------
# instance-drain test bed (issue 12): hooks' clocks, several hooks per group,
# warm pools, disconnected agents, and SQS delays a test may skip
# --------------------------------------------------------------------------

# A clock tests can move forward (POST /_autopilot/clock): lifecycle actions are
# stamped with it, and a hook's DefaultResult is applied once its heartbeat or global
# timeout has lapsed on it, as Auto Scaling does by real time.
_CLOCK: dict[str, float] = {"offset_seconds": 0.0}
MAX_GLOBAL_TIMEOUT = 172800
PLACES = ("EC2", "AutoScalingGroup", "WarmPool")


def _hook_global_timeout(heartbeat_timeout: int) -> int:
    """"The maximum amount of time that you can keep an instance in a wait state is 48
    hours or 100 times the heartbeat timeout, whichever is smaller."
    (https://docs.aws.amazon.com/autoscaling/ec2/userguide/lifecycle-hooks-overview.html)
    DescribeLifecycleHooks reports it as GlobalTimeout; moto always says 172800."""
    return min(MAX_GLOBAL_TIMEOUT, 100 * int(heartbeat_timeout))


def _expire_lapsed(backend: AutoScalingBackend) -> list[LifecycleAction]:
    """Applies the hook's DefaultResult to every active action whose heartbeat timeout
    (since its last heartbeat, or its start) or global timeout (since its start) has
    passed: "If the heartbeat timeout or global timeout is reached, Amazon EC2 Auto
    Scaling applies the default result" (lifecycle-hooks-overview.html, above)."""
    now = _now()
    expired = []
    for action in list(_actions(backend)):
        if action.status != "active":
            continue
        last = action.last_heartbeat_at or action.created_at
        hb_lapsed = (now - last).total_seconds() >= action.heartbeat_timeout
        global_lapsed = (now - action.created_at).total_seconds() >= _hook_global_timeout(action.heartbeat_timeout)
        if not (hb_lapsed or global_lapsed):
            continue
        action.status = "completed"
        action.result = action.default_result
        action.completed_by = "GlobalTimeout" if global_lapsed else "HeartbeatTimeout"
        action.completed_at = now
        _apply_completion(backend, action, action.default_result)
        expired.append(action)
    return expired


def control_advance_clock(body: dict[str, Any]) -> dict[str, Any]:
    """POST /_autopilot/clock {"advance_seconds": N}: time passes for the lifecycle
    actions of every region of the account (default: the default account)."""
    seconds = float(body.get("advance_seconds") or 0)
    if seconds < 0:
        raise ControlError(400, "advance_seconds must be >= 0")
    _CLOCK["offset_seconds"] += seconds
    account = body.get("account") or DEFAULT_ACCOUNT_ID
    expired = []
    for region in list(autoscaling_backends[account].keys()):
        expired += [a.to_json() for a in _expire_lapsed(autoscaling_backends[account][region])]
    return {"now": _iso(_now()), "expired": expired}


def control_container_instance(body: dict[str, Any]) -> dict[str, Any]:
    """POST /_autopilot/container-instance {cluster, instance_id, agent_connected}: what
    ECS shows when a host's agent loses (or regains) its connection."""
    _require(body, "cluster", "instance_id")
    from moto.ecs.models import ecs_backends

    ecs = ecs_backends[body.get("account") or DEFAULT_ACCOUNT_ID][body.get("region") or DEFAULT_REGION]
    for ci in ecs.container_instances.get(body["cluster"], {}).values():
        if ci.ec2_instance_id == body["instance_id"]:
            if "agent_connected" in body:
                ci.agent_connected = bool(body["agent_connected"])
            return {"container_instance_arn": ci.container_instance_arn, "agent_connected": ci.agent_connected,
                    "status": ci.status}
    raise ControlError(404, f"{body['instance_id']} is no container instance of {body['cluster']}")


def _set_agent(backend: AutoScalingBackend, instance_id: str, connected: bool) -> None:
    from moto.ecs.models import ecs_backends

    ecs = ecs_backends[backend.account_id][backend.region_name]
    for instances in ecs.container_instances.values():
        for ci in instances.values():
            if ci.ec2_instance_id == instance_id:
                ci.agent_connected = connected


def _patch_drain_test_bed() -> None:
    """Installs the blocks above. Warm pools: a lifecycle action's "Origin" and
    "Destination" are EC2, AutoScalingGroup or WarmPool
    (https://docs.aws.amazon.com/autoscaling/ec2/userguide/warm-pool-events.html); an
    instance in the pool is stopped (Warmed:Stopped), its ECS agent disconnected."""
    import moto.autoscaling.models as asg_models

    orig_hook_init = asg_models.LifecycleHook.__init__

    def hook_init(self: Any, *args: Any, **kwargs: Any) -> None:
        orig_hook_init(self, *args, **kwargs)
        self.global_timeout = _hook_global_timeout(self.heartbeat_timeout)

    asg_models.LifecycleHook.__init__ = hook_init  # type: ignore[method-assign]

    # Every lifecycle call and control read first lets lapsed actions expire.
    for name, fn in PATCHED_ACTIONS.items():
        if "lifecycle" in name:
            def expiring(self: AutoScalingResponse, _fn: Any = fn) -> Any:
                with _LOCK:
                    _expire_lapsed(self.autoscaling_backend)
                return _fn(self)

            setattr(AutoScalingResponse, name, expiring)
    g = globals()
    orig_list = g["control_list_lifecycle_actions"]

    def list_actions(query: dict[str, str]) -> dict[str, Any]:
        _expire_lapsed(_backend(query))
        return orig_list(query)

    g["control_list_lifecycle_actions"] = list_actions

    # Several hooks on one transition: each gets its own action, and the instance waits
    # until every one is completed ("Amazon EC2 Auto Scaling waits for all lifecycle
    # hooks to complete"); one ABANDON on a launch wins.
    orig_create = g["control_create_lifecycle_action"]

    def create(body: dict[str, Any]) -> dict[str, Any]:
        for key in ("origin", "destination"):
            if body.get(key) and body[key] not in PLACES:
                raise ControlError(400, f"{key} must be one of {PLACES}")
        backend = _backend(body)
        instance_id = body.get("instance_id")
        group = backend.autoscaling_groups.get(body.get("group") or "")
        state = _instance_state(group, instance_id) if group is not None and instance_id else None
        waiting = state is not None and any(
            a.status == "active" and a.instance_id == instance_id and a.group == body.get("group")
            and a.transition == body.get("transition") and a.hook != body.get("hook")
            for a in _actions(backend)
        )
        if body.get("origin") == "WarmPool" and instance_id:
            _set_agent(backend, instance_id, True)  # the host boots: its agent reconnects
        saved = state.lifecycle_state if state is not None else None
        if state is not None and (waiting or saved.startswith("Warmed:")):
            state.lifecycle_state = "InService"  # what the creation checks; restored below
        try:
            result = orig_create({**body, "decrement": False} if waiting else body)
        finally:
            if waiting and state is not None:
                state.lifecycle_state = saved
        action = next(a for a in _actions(backend) if a.token == result["token"])
        action.origin = body.get("origin")  # type: ignore[attr-defined]
        action.destination = body.get("destination")  # type: ignore[attr-defined]
        return action.to_json() | {"group_arn": result.get("group_arn")}

    g["control_create_lifecycle_action"] = create

    orig_to_json = LifecycleAction.to_json

    def to_json(self: LifecycleAction) -> dict[str, Any]:
        return orig_to_json(self) | {"origin": getattr(self, "origin", None),
                                     "destination": getattr(self, "destination", None)}

    LifecycleAction.to_json = to_json  # type: ignore[method-assign]

    orig_apply = g["_apply_completion"]

    def apply_completion(backend: AutoScalingBackend, action: LifecycleAction, result: str) -> None:
        others = [a for a in _actions(backend) if a is not action and a.instance_id == action.instance_id
                  and a.group == action.group and a.transition == action.transition
                  and (a.status == "active" or (a.completed_at is not None and a.completed_at >= action.created_at))]
        if any(a.status == "active" for a in others):
            return  # the instance still waits for another hook
        if action.transition == LAUNCHING and any(a.result == "ABANDON" for a in others):
            result = "ABANDON"
        if getattr(action, "destination", None) == "WarmPool" and (action.transition == TERMINATING or result == "CONTINUE"):
            group = backend.autoscaling_groups.get(action.group)
            state = _instance_state(group, action.instance_id) if group else None
            if state is not None:
                state.lifecycle_state = "Warmed:Stopped"
                backend.ec2_backend.stop_instances([action.instance_id])
                _set_agent(backend, action.instance_id, False)
            return
        orig_apply(backend, action, result)

    g["_apply_completion"] = apply_completion

    # SQS: a queue tagged emulator:skip-delays=true delivers delayed messages at once,
    # so a test need not sleep through a drain's poll interval (DRAIN_POLL_SECONDS >= 5).
    from moto.sqs.models import SQSBackend

    orig_send = SQSBackend.send_message

    def send_message(self: Any, queue_name: str, message_body: str, *args: Any, **kwargs: Any) -> Any:
        queue = self.get_queue(queue_name)
        if (getattr(queue, "tags", None) or {}).get("emulator:skip-delays") == "true":
            if len(args) >= 2:
                args = (args[0], 0, *args[2:])
            else:
                kwargs["delay_seconds"] = 0
        return orig_send(self, queue_name, message_body, *args, **kwargs)

    SQSBackend.send_message = send_message  # type: ignore[method-assign]

    _patch_placement_facts()


def _patch_placement_facts() -> None:
    """What instance-drain reads to tell whether a service can leave a host.

    * CreateService keeps ``placementConstraints`` and DescribeServices returns them
      ("placementConstraints: An array of placement constraint objects to use for tasks
      in your service", API_CreateService.html); moto dropped them. UpdateService already
      stores them (moto sets every given property).
    * A container instance has the ``ecs.cpu-architecture`` attribute (x86_64 or arm64,
      "Amazon ECS container instance attributes", task-placement-constraints.html);
      moto registered none. It follows the instance's AMI architecture.
    * DescribeInstanceStatus reports a host's status checks as set by
      ``POST /_autopilot/instance-status`` (``impaired``, ``insufficient-data``, ...):
      "impaired" is what a failed system or instance reachability check shows
      (monitoring-system-instance-status-check.html); moto always said ``ok``.
    """
    from moto.ec2.models.instances import Instance
    from moto.ecs import models as ecs_models
    from moto.ecs import responses as ecs_responses

    response_cls = ecs_responses.EC2ContainerServiceResponse
    orig_create = response_cls.create_service

    def create_service(self: Any) -> Any:
        result = orig_create(self)
        constraints = self._get_param("placementConstraints")
        if constraints:
            service = self.ecs_backend._get_service(self._get_param("cluster", "default"), self._get_param("serviceName"))
            service.placement_constraints = constraints
        return result

    response_cls.create_service = create_service  # type: ignore[method-assign]

    orig_ci_init = ecs_models.ContainerInstance.__init__

    def ci_init(ci: Any, *args: Any, **kwargs: Any) -> None:
        orig_ci_init(ci, *args, **kwargs)
        from moto.ec2.models import ec2_backends

        ec2 = ec2_backends[ci._account_id][ci.region_name]
        instance = ec2.get_instance(ci.ec2_instance_id)
        arch = getattr(instance, "architecture", None) or "x86_64"
        ci.attributes.setdefault("ecs.cpu-architecture", "arm64" if arch == "arm64" else "x86_64")

    ecs_models.ContainerInstance.__init__ = ci_init  # type: ignore[method-assign]

    def checked(kind: str) -> Any:
        orig = getattr(Instance, kind)

        def status(self: Any) -> dict[str, Any]:
            given = self.__dict__.get("_autopilot_status_checks", {}).get(kind)
            if given is None or self.state_code != 16:
                return orig.fget(self)
            detail = "failed" if given == "impaired" else ("passed" if given == "ok" else given)
            return {"Details": [{"Name": "reachability", "Status": detail}], "Status": given}

        return property(status)

    Instance.instance_status = checked("instance_status")  # type: ignore[method-assign,assignment]
    Instance.system_status = checked("system_status")  # type: ignore[method-assign,assignment]


STATUS_CHECK_VALUES = ("ok", "impaired", "insufficient-data", "initializing")


def control_instance_status(body: dict[str, Any]) -> dict[str, Any]:
    """POST /_autopilot/instance-status {instance_id, instance_status?, system_status?}:
    what EC2's status checks report for a running instance."""
    _require(body, "instance_id")
    from moto.ec2.models import ec2_backends

    ec2 = ec2_backends[body.get("account") or DEFAULT_ACCOUNT_ID][body.get("region") or DEFAULT_REGION]
    instance = ec2.get_instance(body["instance_id"])
    checks = instance.__dict__.setdefault("_autopilot_status_checks", {})
    for kind in ("instance_status", "system_status"):
        if kind in body:
            if body[kind] not in STATUS_CHECK_VALUES:
                raise ControlError(400, f"{kind} must be one of {STATUS_CHECK_VALUES}")
            checks[kind] = body[kind]
    return {"instance_id": instance.id, "instance_status": instance.instance_status["Status"],
            "system_status": instance.system_status["Status"]}


def _patch_scheduled_events() -> None:
    """DescribeInstanceStatus reports an instance's scheduled events (`Events`: Code,
    Description, NotBefore, NotAfter, InstanceEventId), as AWS does for retirements and
    maintenance (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/monitoring-instances-status-check_sched.html:
    "instance-retirement", "instance-stop", "instance-reboot", "system-reboot",
    "system-maintenance"; a finished or cancelled event keeps its entry with its
    Description starting "[Completed]" / "[Canceled]"). moto has no events; they are set
    with `POST /_autopilot/scheduled-events`."""
    from moto.ec2.models.instances import Instance

    def events(self: Any) -> list[dict[str, Any]]:
        return list(self.__dict__.get("_autopilot_events", []))

    Instance.events = property(events)  # type: ignore[attr-defined]


def control_scheduled_event(body: dict[str, Any]) -> dict[str, Any]:
    """Schedule an EC2 event on an instance: `{"region", "instance_id", "code"
    (default instance-retirement), "not_before" (ISO 8601), "not_after"?, "description"?}`."""
    _require(body, "instance_id")
    _require(body, "not_before")
    from moto.ec2.models import ec2_backends

    backend = ec2_backends[body.get("account") or DEFAULT_ACCOUNT_ID][body.get("region") or DEFAULT_REGION]
    instance = backend.get_instance(body["instance_id"])
    event = {
        "InstanceEventId": f"instance-event-{uuid.uuid4().hex[:17]}",
        "Code": body.get("code") or "instance-retirement",
        "Description": body.get("description") or "The instance is running on degraded hardware",
        "NotBefore": datetime.fromisoformat(body["not_before"].replace("Z", "+00:00")),
    }
    if body.get("not_after"):
        event["NotAfter"] = datetime.fromisoformat(body["not_after"].replace("Z", "+00:00"))
    instance.__dict__.setdefault("_autopilot_events", []).append(event)
    return {"instance_id": instance.id, "events": _json_ready(instance.events)}


# --------------------------------------------------------------------------
# STS AssumeRole across accounts (issue 16's hub and member accounts)
# --------------------------------------------------------------------------
#
# moto already answers AssumeRole with credentials of the role's account (the access key
# it makes is registered in that account's IAM backend, so every request signed with it
# lands in that account's backends). What it doesn't do is check anything: it hands out
# credentials for a role that does not exist, whoever asks. AWS:
#
# * "AssumeRole ... The trust policy of the role specifies who can assume it"; a caller the
#   trust policy does not name, or whose request fails its conditions (sts:ExternalId:
#   "the external ID ... must match the value in the role's trust policy"), is refused
#   with AccessDenied (HTTP 403)
#   (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html,
#   https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_create_for-user_externalid.html).
# * A role that does not exist gets the very same answer: AWS never says whether the role
#   exists ("User: ARN is not authorized to perform: sts:AssumeRole on resource: ROLE",
#   https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_roles.html, "I can't
#   assume a role").
#
# The trust policy check here is the cheap part of IAM's evaluation: Allow/Deny statements
# whose Action matches sts:AssumeRole and whose Principal is "*", the caller's account id,
# arn:aws:iam::ACCOUNT:root, the caller's ARN or (for an assumed-role session) its role's
# ARN; conditions on sts:ExternalId, aws:PrincipalAccount and aws:PrincipalArn with the
# String*/Arn* operators (…IfExists too). Other condition keys (aws:PrincipalOrgID,
# aws:SourceIdentity, ...) are not evaluated (taken as met). The caller's own permission
# to call sts:AssumeRole (its identity policy) is not checked, as moto checks no identity
# policy.
#
# Every AssumeRole is recorded (allowed or denied) on the target account's STS backend, so
# /moto-api/reset clears the log: GET /_autopilot/assume-role-calls.


class StsAccessDenied(Exception):
    """AccessDenied as STS sends it (Query protocol, HTTP 403)."""

    def __init__(self, caller_arn: str, role_arn: str) -> None:
        from werkzeug.exceptions import HTTPException

        self.message = f"User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
        super().__init__(self.message)
        self.http = HTTPException(description=(
            '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
            f"<Code>AccessDenied</Code><Message>{self.message}</Message></Error>"
            f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
        ))
        self.http.code = 403
        self.http.get_headers = lambda *a, **k: [("Content-Type", "text/xml"), ("X-Amzn-ErrorType", "AccessDenied")]  # type: ignore[method-assign]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _glob(pattern: str, value: str, case: bool = True) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


def _trust_principal_matches(principal: Any, caller: dict[str, str]) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    names = {caller["account"], f"arn:{caller['partition']}:iam::{caller['account']}:root", caller["arn"]}
    if caller.get("role_arn"):
        names.add(caller["role_arn"])
    return any(p == "*" or p in names for p in _as_list(principal.get("AWS")))


def _trust_conditions_hold(conditions: Any, context: dict[str, str | None]) -> bool:
    for operator, pairs in (conditions or {}).items():
        base = operator[:-len("IfExists")] if operator.endswith("IfExists") else operator
        for key, expected in (pairs or {}).items():
            key = key.lower()
            if key not in context:
                continue  # not evaluated here (see above)
            actual = context[key]
            if actual is None:
                if operator.endswith("IfExists"):
                    continue
                return False
            values = [str(v) for v in _as_list(expected)]
            if base in ("StringEquals", "ArnEquals"):
                ok = actual in values
            elif base == "StringEqualsIgnoreCase":
                ok = actual.lower() in (v.lower() for v in values)
            elif base in ("StringLike", "ArnLike"):
                ok = any(_glob(v, actual) for v in values)
            elif base in ("StringNotEquals", "ArnNotEquals"):
                ok = actual not in values
            elif base in ("StringNotLike", "ArnNotLike"):
                ok = not any(_glob(v, actual) for v in values)
            else:
                continue
            if not ok:
                return False
    return True


def _trust_allows(document: str, caller: dict[str, str], external_id: str | None) -> bool:
    try:
        policy = json.loads(urllib.parse.unquote(document) if document.lstrip().startswith("%") else document)
    except ValueError:
        return False
    context = {
        "sts:externalid": external_id,
        "aws:principalaccount": caller["account"],
        "aws:principalarn": caller.get("role_arn") or caller["arn"],
    }
    allowed = False
    for statement in _as_list(policy.get("Statement")):
        if not any(_glob(a, "sts:AssumeRole", case=False) for a in _as_list(statement.get("Action"))):
            continue
        if not _trust_principal_matches(statement.get("Principal"), caller):
            continue
        if not _trust_conditions_hold(statement.get("Condition"), context):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def _assume_role_log(account: str) -> list[dict[str, Any]]:
    from moto.sts.models import sts_backends

    backend = sts_backends[account]["aws"]
    store = backend.__dict__.get("_autopilot_assume_role_calls")
    if store is None:
        store = backend.__dict__["_autopilot_assume_role_calls"] = []
    return store


def _patch_assume_role() -> None:
    from moto.iam.models import iam_backends
    from moto.sts.responses import TokenResponse
    from moto.sts.models import sts_backends

    orig = TokenResponse.assume_role

    def assume_role(self: TokenResponse) -> Any:
        role_arn = self._get_param("RoleArn") or ""
        external_id = self._get_param("ExternalId")
        parts = role_arn.split(":")
        target = parts[4] if len(parts) > 5 else self.current_account
        partition = parts[1] if len(parts) > 5 else "aws"
        _, caller_arn, caller_account = sts_backends[self.current_account][self.partition].get_caller_identity(
            self.get_access_key(), self.region)
        caller = {"account": caller_account, "arn": caller_arn, "partition": partition}
        session = sts_backends[self.current_account][self.partition].get_assumed_role_from_access_key(self.get_access_key())
        if session is not None:
            caller["role_arn"] = session.role_arn
        record = {
            "account": target, "role_arn": role_arn, "session_name": self._get_param("RoleSessionName"),
            "external_id": external_id, "caller": caller_arn, "caller_account": caller_account,
            "region": self.region, "at": _iso(_real_now()),
        }
        try:
            role = iam_backends[target][partition].get_role_by_arn(role_arn)
        except Exception:
            role = None
        reason = None
        if role is None:
            reason = "no such role"
        elif not _trust_allows(role.assume_role_policy_document, caller, external_id):
            reason = "trust policy"
        with _LOCK:
            _assume_role_log(target).append({**record, "outcome": "denied" if reason else "allowed", "reason": reason})
        if reason:
            raise StsAccessDenied(caller_arn, role_arn).http
        return orig(self)

    TokenResponse.assume_role = assume_role  # type: ignore[method-assign]


def control_assume_role_calls(query: dict[str, str]) -> dict[str, Any]:
    """GET /_autopilot/assume-role-calls?account=&outcome=&role_arn=: every AssumeRole the
    emulator answered, oldest first, with the count per target account."""
    from moto.sts.models import sts_backends

    calls: list[dict[str, Any]] = []
    for account in list(sts_backends.keys()):
        if query.get("account") and query["account"] != account:
            continue
        backend = sts_backends[account].get("aws") if "aws" in sts_backends[account].keys() else None
        calls += list(backend.__dict__.get("_autopilot_assume_role_calls", [])) if backend is not None else []
    for key in ("outcome", "role_arn", "caller_account"):
        if query.get(key):
            calls = [c for c in calls if c[key] == query[key]]
    calls.sort(key=lambda c: c["at"])
    by_account: dict[str, int] = {}
    for c in calls:
        by_account[c["account"]] = by_account.get(c["account"], 0) + 1
    return {"calls": calls, "by_account": by_account}


EXTRA_ROUTES: dict[tuple[str, str], Any] = {
    ("GET", "assume-role-calls"): control_assume_role_calls,
    ("POST", "scheduled-events"): control_scheduled_event,
    ("POST", "clock"): control_advance_clock,
    ("POST", "container-instance"): control_container_instance,
    ("POST", "instance-status"): control_instance_status,
}


def _json_ready(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    return value


class ControlMiddleware:
    """WSGI middleware serving /_autopilot/* and passing the rest to moto."""

    PREFIX = "/_autopilot/"

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(self.PREFIX):
            return self.app(environ, start_response)
        from werkzeug.wrappers import Request, Response

        request = Request(environ)
        try:
            payload = self.handle(request.method, path[len(self.PREFIX) :].rstrip("/"), request)
            status = 200
        except ControlError as e:
            payload, status = {"error": e.message}, e.status
        except Exception as e:  # pragma: no cover - surfaced to the test
            payload, status = {"error": f"{type(e).__name__}: {e}"}, 500
        response = Response(json.dumps(payload, default=str), status=status, mimetype="application/json")
        return response(environ, start_response)

    def handle(self, method: str, route: str, request: Any) -> Any:
        query = {k: v for k, v in request.args.items()}
        body: dict[str, Any] = {}
        if method == "POST":
            raw = request.get_data(as_text=True)
            try:
                body = json.loads(raw) if raw.strip() else {}
            except ValueError:
                raise ControlError(400, "body must be JSON")
            if not isinstance(body, dict):
                raise ControlError(400, "body must be a JSON object")
        with _LOCK:
            if route == "health" and method == "GET":
                return {"ok": True}
            if route == "lifecycle-actions" and method == "POST":
                return control_create_lifecycle_action(body)
            if route == "lifecycle-actions" and method == "GET":
                return control_list_lifecycle_actions(query)
            if route == "lifecycle-actions/timeout" and method == "POST":
                return control_timeout_lifecycle_action(body)
            if route == "instance-refresh" and method == "POST":
                return control_set_instance_refresh(body)
            if route == "instance-refresh" and method == "GET":
                return control_list_instance_refreshes(query)
            if route == "ssm-parameter" and method == "POST":
                return control_put_ssm_parameter(body)
            if route == "container-instances" and method == "POST":
                return control_register_container_instances(body)
            if route == "images" and method == "POST":
                return control_register_image(body)
            if (method, route) in EXTRA_ROUTES:
                return EXTRA_ROUTES[(method, route)](body if method == "POST" else query)
        raise ControlError(404, f"no route {method} /_autopilot/{route}")


# --------------------------------------------------------------------------
# server
# --------------------------------------------------------------------------


class EmulatorServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        app = ControlMiddleware(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
        self.host, self.port = self._server.server_address[:2]
        self.url = f"http://{self.host}:{self.port}"
        self._thread: threading.Thread | None = None

    def start(self) -> "EmulatorServer":
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-emulator", daemon=True)
        self._thread.start()
        wait_ready(self.url)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=10)


def wait_ready(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_autopilot/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except Exception:
            if time.monotonic() > deadline:
                raise TimeoutError(f"emulator at {url} did not answer within {timeout}s")
            time.sleep(0.05)


_SERVER: EmulatorServer | None = None


def start(
    port: int = 0,
    host: str = "127.0.0.1",
    manual_tasks: bool = True,
    ecs_fidelity: bool = True,
    log_requests: bool = False,
) -> EmulatorServer:
    """Patch moto and start the server in a background thread of this process."""
    global _SERVER
    if not log_requests:
        import logging

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
    patch_moto(ecs_fidelity=ecs_fidelity)
    set_manual_tasks(manual_tasks)
    _SERVER = EmulatorServer(host, port).start()
    return _SERVER


def stop() -> None:
    global _SERVER
    if _SERVER is not None:
        _SERVER.stop()
        _SERVER = None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000, help="0 picks a free port")
    tasks = parser.add_mutually_exclusive_group()
    tasks.add_argument("--manual-tasks", dest="manual_tasks", action="store_true", default=True,
                       help="keep ECS tasks RUNNING until StopTask (default)")
    tasks.add_argument("--auto-tasks", dest="manual_tasks", action="store_false",
                       help="moto default: each DescribeTasks moves a task towards STOPPED")
    parser.add_argument("--plain-moto-ecs", action="store_true",
                        help="skip the ECS fidelity patches (ListTasks, StartTask/StopTask fields, counts)")
    parser.add_argument("--log-requests", action="store_true", help="log every request to stderr")
    parser.add_argument("--keep-container-instances", action="store_true",
                        help="don't stop tasks / deregister container instances of terminated instances")
    args = parser.parse_args(argv)

    OPTIONS["ecs_cleanup"] = not args.keep_container_instances
    server = start(
        args.port,
        args.host,
        manual_tasks=args.manual_tasks,
        ecs_fidelity=not args.plain_moto_ecs,
        log_requests=args.log_requests,
    )
    print(f"READY {server.url}", flush=True)

    done = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not done.wait(0.5):
        pass
    stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
