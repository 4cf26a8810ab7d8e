"""State kept on moto's backends: lifecycle actions, instance refreshes, and the emulator's clock."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from moto.autoscaling.exceptions import ValidationError
from moto.autoscaling.models import AutoScalingBackend


# A clock tests can move forward (POST /_autopilot/clock): lifecycle actions are
# stamped with it, and a hook's DefaultResult is applied once its heartbeat or global
# timeout has lapsed on it, as Auto Scaling does by real time.
_CLOCK: dict[str, float] = {"offset_seconds": 0.0}


def _now() -> datetime:
    # Moved on by POST /_autopilot/clock (clock.py).
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
