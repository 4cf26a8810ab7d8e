"""The recording proxy: an HTTP proxy in front of the emulator that records (and counts)
every AWS call, and injects faults.

    with AwsProxy(emulator.url) as proxy:
        env = emulator.env(AWS_ENDPOINT_URL=proxy.url)      # the function talks through it
        proxy.inject("throttle", service="ecs", operation="DescribeTasks", times=2)
        ... run the function ...
        [c.operation for c in proxy.calls()]              # what it called, in order
        proxy.counts()["ecs:DescribeTasks"]               # how often
        proxy.mutations()                                  # the calls that change state

Seed state with boto3 straight to the emulator, so the log holds only the function's calls.

A call is named from its SigV4 credential scope (the service) and its X-Amz-Target
header (JSON protocols: ECS, SSM, SQS) or its ``Action`` form field (Query protocols:
Auto Scaling, EC2, SNS). Requests without a signature (moto's and the emulator's own
control endpoints) pass through unrecorded.

Faults answer the way AWS does for that protocol, so the SDK classifies and retries them
as it would in production:

* ``throttle``: 400 ``ThrottlingException`` (JSON), ``Throttling`` (Query), 503
  ``RequestLimitExceeded`` (EC2).
* ``500`` / ``503``: ``InternalFailure`` / ``ServiceUnavailable``.
* ``kms-disabled``: 400 ``KMSDisabled`` (SNS Publish to a topic whose KMS key is disabled; not retryable).
* ``timeout``: holds the request for ``delay`` seconds, then closes the connection; the
  request never reaches the emulator.
* ``reset``: closes the connection at once; the request never reaches the emulator.
* ``lost-response``: forwards the request (the emulator applies it), then closes the
  connection instead of answering: the caller cannot tell whether the call took effect.

``times=N`` faults the next N matching calls (a transient fault the SDK's retries ride
out); ``times=None`` faults every matching call (a persistent fault).

Accounts: each call has the ``region`` of its credential scope and the ``account`` its
credentials act in. A key the proxy saw come back from an STS ``AssumeRole`` acts in the
role's account (as moto and AWS resolve it); any other key in ``default_account`` (the
hub's: moto's default account). ``proxy.calls(account="111111111111")``,
``proxy.assume_role_calls()``.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

from .events import ACCOUNT as DEFAULT_ACCOUNT
from .runtime_api import LocalServer, QuietHandler, read_body

FAULT_KINDS = ("throttle", "500", "503", "kms-disabled", "timeout", "reset", "lost-response")
READ_ONLY_PREFIXES = ("Describe", "List", "Get", "Receive")
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "upgrade"}


@dataclass
class Call:
    service: str
    operation: str
    params: dict[str, Any]
    status: int = 0  # what the caller got; 0 when the connection was dropped
    fault: str | None = None
    upstream_seconds: float = 0.0  # time spent waiting on the emulator
    at: float = field(default_factory=time.monotonic)
    region: str = ""  # of the SigV4 credential scope
    access_key: str = ""
    account: str = ""  # the account the credentials act in (see the module's docstring)
    assumed: bool = False  # made with credentials an AssumeRole through this proxy handed out

    @property
    def mutating(self) -> bool:
        return not self.operation.startswith(READ_ONLY_PREFIXES)

    def mentions(self, value: str) -> bool:
        """Whether ``value`` appears anywhere in the request's parameters."""
        return value in json.dumps(self.params)


@dataclass
class Fault:
    kind: str
    service: str | None = None
    operation: str | None = None
    times: int | None = None  # None: every matching call
    match: Callable[[Call], bool] | None = None
    delay: float = 12.0  # for "timeout": longer than the SDK's 10 s attempt timeout
    injected: int = 0

    def applies(self, call: Call) -> bool:
        if self.times is not None and self.injected >= self.times:
            return False
        if self.service and self.service != call.service:
            return False
        if self.operation and self.operation != call.operation:
            return False
        return self.match is None or self.match(call)


def _scope(headers: Any) -> list[str]:
    """[access key, date, region, service, "aws4_request"] of a SigV4 signature, or []."""
    auth = headers.get("Authorization") or ""
    marker = "Credential="
    if marker not in auth:
        return []
    return auth.split(marker, 1)[1].split(",", 1)[0].split("/")


def _service(headers: Any) -> str:
    scope = _scope(headers)
    return scope[3] if len(scope) > 3 else ""


def _request(headers: Any, body: bytes, path: str) -> tuple[str, dict[str, Any], str]:
    """(operation, params, protocol) of a signed request."""
    target = headers.get("X-Amz-Target")
    if target:
        try:
            params = json.loads(body) if body else {}
        except ValueError:
            params = {"_raw": body.decode(errors="replace")}
        return target.rsplit(".", 1)[-1], params if isinstance(params, dict) else {"_body": params}, "json"
    query = urllib.parse.urlsplit(path).query
    form = urllib.parse.parse_qs(body.decode(errors="replace") + "&" + query, keep_blank_values=True)
    params = {k: v[0] if len(v) == 1 else v for k, v in form.items()}
    return str(params.pop("Action", "")), params, "query"


def _error_response(kind: str, service: str, protocol: str) -> tuple[int, str, bytes]:
    """(status, content type, body) AWS sends for a throttle or server fault."""
    if kind == "throttle":
        status, code, message = 400, "ThrottlingException" if protocol == "json" else "Throttling", "Rate exceeded"
        if service == "ec2":
            status, code, message = 503, "RequestLimitExceeded", "Request limit exceeded."
    elif kind == "500":
        status, code, message = 500, "InternalFailure", "We encountered an internal error. Please try again."
    elif kind == "kms-disabled":
        # SNS Publish to a topic encrypted with a disabled key: KMSDisabledException
        # (https://docs.aws.amazon.com/sns/latest/api/API_Publish.html#API_Publish_Errors).
        status, code, message = 400, "KMSDisabled", "Invalid request: The request was rejected because the specified Amazon Web Services KMS key isn't enabled."
    else:
        status, code, message = 503, "ServiceUnavailable", "Service is unavailable. Please try again."
    request_id = str(uuid.uuid4())
    if protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        return status, "application/x-amz-json-1.1", body
    if service == "ec2":
        body = (
            f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{code}</Code>"
            f"<Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
        )
        return status, "text/xml", body.encode()
    side = "Sender" if status < 500 else "Receiver"
    body = (
        f"<ErrorResponse><Error><Type>{side}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return status, "text/xml", body.encode()


_ACCESS_KEY_ID = re.compile(rb"<AccessKeyId>([^<]+)</AccessKeyId>")


class AwsProxy(LocalServer):
    def __init__(self, upstream: str, host: str = "127.0.0.1", port: int = 0,
                 default_account: str = DEFAULT_ACCOUNT) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream_host = parsed.hostname or "127.0.0.1"
        self.upstream_port = parsed.port or 80
        self.default_account = default_account
        self._key_accounts: dict[str, str] = {}  # access key from AssumeRole -> the role's account
        self._calls: list[Call] = []
        self._history: list[Call] = []  # every call since the start: clear_calls() keeps it
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(QuietHandler):
            def _handle(self) -> None:
                body = read_body(self)
                service = _service(self.headers)
                if not service:
                    self._relay(*proxy._forward(self.command, self.path, self.headers, body))
                    return
                operation, params, protocol = _request(self.headers, body, self.path)
                scope = _scope(self.headers)
                call = Call(service, operation, params, region=scope[2] if len(scope) > 2 else "",
                            access_key=scope[0])
                call.account = proxy._key_accounts.get(call.access_key, proxy.default_account)
                call.assumed = call.access_key in proxy._key_accounts
                fault = proxy._take_fault(call)
                with proxy._lock:
                    proxy._calls.append(call)
                    proxy._history.append(call)
                if fault is None:
                    started = time.monotonic()
                    status, headers, payload = proxy._forward(self.command, self.path, self.headers, body)
                    call.upstream_seconds = time.monotonic() - started
                    call.status = status
                    if service == "sts" and operation == "AssumeRole" and status == 200:
                        proxy._learn_key(str(params.get("RoleArn", "")), payload)
                    self._relay(status, headers, payload)
                    return
                call.fault = fault.kind
                if fault.kind in ("throttle", "500", "503", "kms-disabled"):
                    status, content_type, payload = _error_response(fault.kind, service, protocol)
                    call.status = status
                    self._relay(status, [("Content-Type", content_type)], payload)
                    return
                if fault.kind == "timeout":
                    time.sleep(fault.delay)
                elif fault.kind == "lost-response":
                    proxy._forward(self.command, self.path, self.headers, body)
                self.close_connection = True
                try:
                    self.connection.shutdown(2)
                except OSError:
                    pass

            def _relay(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
                try:
                    self.send_response(status)
                    for key, value in headers:
                        if key.lower() not in HOP_HEADERS:
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the caller gave up (its timeout)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle  # noqa: N815

        self._serve(host, port, Handler, "aws-proxy")
        self.url = f"http://{self.host}:{self.port}"
        self._local = threading.local()

    # -- lifecycle (start, stop: LocalServer) --------------------------------

    def __enter__(self) -> "AwsProxy":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- the call log ------------------------------------------------------

    def calls(self, service: str | None = None, operation: str | None = None, *,
              account: str | None = None, region: str | None = None) -> list[Call]:
        with self._lock:
            calls = list(self._calls)
        return [c for c in calls if (service is None or c.service == service) and (operation is None or c.operation == operation)
                and (account is None or c.account == account) and (region is None or c.region == region)]

    def history(self) -> list[Call]:
        """Every call since the proxy started, whatever ``clear_calls`` dropped from the
        log (for checks over a whole test, like the least-privilege one)."""
        with self._lock:
            return list(self._history)

    def assume_role_calls(self, account: str | None = None) -> list[Call]:
        """The STS AssumeRole calls (optionally into ``account``'s roles), answered or not."""
        return [c for c in self.calls("sts", "AssumeRole")
                if account is None or str(c.params.get("RoleArn", "")).split(":")[4:5] == [account]]

    def accounts(self) -> dict[str, int]:
        """{account: calls} over the log: where the credentials of each call acted."""
        out: dict[str, int] = {}
        for c in self.calls():
            out[c.account] = out.get(c.account, 0) + 1
        return out

    def _learn_key(self, role_arn: str, payload: bytes) -> None:
        parts = role_arn.split(":")
        found = _ACCESS_KEY_ID.search(payload)
        if len(parts) > 5 and found:
            with self._lock:
                self._key_accounts[found.group(1).decode()] = parts[4]

    def mutations(self) -> list[Call]:
        """Calls that change state (not Describe/List/Get/Receive), faulted or not."""
        return [c for c in self.calls() if c.mutating]

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def counts(self) -> Counter[str]:
        """{"ecs:DescribeTasks": 2, ...} over the log (0 for a call never made)."""
        return Counter(f"{c.service}:{c.operation}" for c in self.calls())

    # -- faults ------------------------------------------------------------

    def inject(
        self,
        kind: str,
        *,
        service: str | None = None,
        operation: str | None = None,
        times: int | None = None,
        match: Callable[[Call], bool] | None = None,
        delay: float = 12.0,
    ) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {FAULT_KINDS}")
        fault = Fault(kind, service, operation, times, match, delay)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, call: Call) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.applies(call):
                    fault.injected += 1
                    return fault
        return None

    # -- upstream ----------------------------------------------------------

    def _forward(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        """Sends the request to the emulator on this thread's keep-alive connection."""
        sent = {k: v for k, v in headers.items() if k.lower() not in HOP_HEADERS}
        for attempt in (1, 2):
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=120)
                self._local.conn = conn
            try:
                conn.request(method, path, body=body, headers=sent)
                resp = conn.getresponse()
                return resp.status, resp.getheaders(), resp.read()
            except (http.client.HTTPException, ConnectionError, OSError):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")
