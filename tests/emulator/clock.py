"""Lifecycle actions lapse by the emulator's clock (POST /_autopilot/clock)."""

from __future__ import annotations

from typing import Any

from moto.autoscaling.models import AutoScalingBackend, autoscaling_backends
from moto.core import DEFAULT_ACCOUNT_ID

from .common import ControlError
from .state import LifecycleAction, _CLOCK, _actions, _iso, _now
from . import effects


MAX_GLOBAL_TIMEOUT = 172800


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
        effects._apply_completion(backend, action, action.default_result)
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
