"""The Auto Scaling API actions moto lacks, bound onto moto's AutoScalingResponse."""

from __future__ import annotations

import uuid
from typing import Any

from moto.autoscaling.exceptions import AutoscalingClientError, ValidationError
from moto.autoscaling.models import AutoScalingBackend
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult

from .common import ActiveInstanceRefreshNotFound, InstanceRefreshInProgress, REFRESH_ACTIVE, TERMINATING, _LOCK
from .state import LifecycleAction, _actions, _find_active_action, _iso, _no_active_action, _now, _real_now, _refreshes
from . import effects
from .clock import _expire_lapsed


def _named_action(self: AutoScalingResponse) -> tuple[str, str, str | None, str | None]:
    """The lifecycle action a Complete/RecordHeartbeat call names: group, hook, and its
    token and/or instance id (one of them is required)."""
    group = self._get_param("AutoScalingGroupName")
    hook = self._get_param("LifecycleHookName")
    token = self._get_param("LifecycleActionToken")
    instance_id = self._get_param("InstanceId")
    if not token and not instance_id:
        raise ValidationError("Either LifecycleActionToken or InstanceId must be specified.")
    return group, hook, token, instance_id


def _active_action(backend: AutoScalingBackend, named: tuple[str, str, str | None, str | None]) -> LifecycleAction:
    action = _find_active_action(backend, *named)
    if action is None:
        raise _no_active_action(named[2], named[3])
    return action


def complete_lifecycle_action(self: AutoScalingResponse) -> ActionResult:
    named = _named_action(self)
    result = self._get_param("LifecycleActionResult")
    if result not in ("CONTINUE", "ABANDON"):
        raise ValidationError(
            f"Value '{result}' at 'lifecycleActionResult' failed to satisfy constraint: "
            "Member must satisfy enum value set: [CONTINUE, ABANDON]"
        )
    backend = self.autoscaling_backend
    with _LOCK:
        action = _active_action(backend, named)
        action.status = "completed"
        action.result = result
        action.completed_by = "CompleteLifecycleAction"
        action.completed_at = _now()
        effects._apply_completion(backend, action, result)
    return ActionResult({})


def record_lifecycle_action_heartbeat(self: AutoScalingResponse) -> ActionResult:
    named = _named_action(self)
    backend = self.autoscaling_backend
    with _LOCK:
        action = _active_action(backend, named)
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
