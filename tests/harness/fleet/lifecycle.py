"""Lifecycle actions and instance refreshes, through the emulator's control endpoints."""

from __future__ import annotations

import urllib.request
from typing import Any

from ..events import ACCOUNT, lifecycle_event
from .clients import control
from .model import LAUNCHING, TERMINATING, Fleet, FleetInstance


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


def fire_lifecycle(
    endpoint: str,
    fleet: Fleet | None = None,
    instance_id: str | FleetInstance | None = None,
    transition: str = "terminate",
    *,
    region: str | None = None,
    group: str | None = None,
    hook: str | None = None,
    metadata: str | None = None,
    account: str | None = None,
    **action: Any,
) -> dict[str, Any]:
    """Create a lifecycle action in the emulator and return the EventBridge
    event ("EC2 Instance-terminate Lifecycle Action" / "EC2 Instance-launch
    Lifecycle Action") that Auto Scaling would have sent.

    With a ``fleet``, group/hook/region default to the fleet's. For a launch
    without ``instance_id`` the emulator launches a new instance in
    ``Pending:Wait`` (its id is in ``event["detail"]["EC2InstanceId"]``).
    Terminate: the instance goes to ``Terminating:Wait`` and (``decrement``)
    the desired capacity drops by one, as on a scale-in. ``action``: the rest of
    ``create_lifecycle_action``'s options (token, decrement, origin, destination).
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
    created = create_lifecycle_action(endpoint, region=region or "us-east-1", group=group, hook=hook, transition=trans,
                                      instance_id=instance_id, account=account or ACCOUNT, **action)
    return lifecycle_event(created, metadata=metadata)


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
