"""The test-control endpoints (/_autopilot/...) for lifecycle actions, refreshes, SSM parameters and container instances."""

from __future__ import annotations

import json
import math
import uuid
from datetime import datetime
from typing import Any

from moto.autoscaling.models import AutoScalingBackend, autoscaling_backends
from moto.core import DEFAULT_ACCOUNT_ID

from .common import ControlError, DEFAULT_REGION, REFRESH_STATUSES, REFRESH_TERMINAL, TERMINATING, TRANSITIONS
from .state import LifecycleAction, _actions, _find_active_action, _iso, _now, _real_now, _refreshes
from . import effects
from .effects import _decrement_desired, _instance_state, _launch_instances, _remove_and_terminate
from .autoscaling_api import _refresh_view, _resolve_launch_template


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
    effects._apply_completion(backend, action, action.default_result)
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


def _json_ready(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    return value
