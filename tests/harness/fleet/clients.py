"""Talking to the emulator: boto3 clients per endpoint, region and account, and its
``/_autopilot/`` control endpoints."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from typing import Any

import boto3

from ..events import ACCOUNT


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
