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


EXTRA_ROUTES: dict[tuple[str, str], Any] = {
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
            if route == "health" and method == "GET":
                return {"ok": True}
            if route == "lifecycle-actions" and method == "POST":
                return control.control_create_lifecycle_action(body)  # drain_bed wraps it
            if route == "lifecycle-actions" and method == "GET":
                return control.control_list_lifecycle_actions(query)  # drain_bed wraps it
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
