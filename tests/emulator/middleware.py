"""The WSGI middleware serving /_autopilot/* in front of moto, and its routes."""

from __future__ import annotations

import json
from typing import Any

from .common import ControlError, _LOCK
from .ami import control_register_image
from . import control
from .control import (
    control_list_instance_refreshes,
    control_put_ssm_parameter,
    control_register_container_instances,
    control_set_instance_refresh,
    control_timeout_lifecycle_action,
)
from .clock import control_advance_clock
from .drain_bed import control_container_instance, control_instance_status, control_scheduled_event
from .sts import control_assume_role_calls


def _health(_: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True}


# (method, route) -> handler of the POST body or the GET query. drain_bed wraps the two
# lifecycle-actions handlers on the control module, so they are looked up there per call.
ROUTES: dict[tuple[str, str], Any] = {
    ("GET", "health"): _health,
    ("POST", "lifecycle-actions"): lambda body: control.control_create_lifecycle_action(body),
    ("GET", "lifecycle-actions"): lambda query: control.control_list_lifecycle_actions(query),
    ("POST", "lifecycle-actions/timeout"): control_timeout_lifecycle_action,
    ("POST", "instance-refresh"): control_set_instance_refresh,
    ("GET", "instance-refresh"): control_list_instance_refreshes,
    ("POST", "ssm-parameter"): control_put_ssm_parameter,
    ("POST", "container-instances"): control_register_container_instances,
    ("POST", "images"): control_register_image,
    ("GET", "assume-role-calls"): control_assume_role_calls,
    ("POST", "scheduled-events"): control_scheduled_event,
    ("POST", "clock"): control_advance_clock,
    ("POST", "container-instance"): control_container_instance,
    ("POST", "instance-status"): control_instance_status,
}


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
            if (method, route) in ROUTES:
                return ROUTES[(method, route)](body if method == "POST" else query)
        raise ControlError(404, f"no route {method} /_autopilot/{route}")
