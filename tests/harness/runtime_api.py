"""A Lambda Runtime API emulator and a wrapper that runs a function binary against it.

    with LambdaProcess("target/debug/instance-drain", env=emulator.env()) as fn:
        result = fn.invoke({"detail-type": "...", ...})
        assert result.ok, result.error
        print(result.body, result.logs)

The emulator implements the parts of the Runtime API that a `lambda_runtime`
(Rust) client uses:

* ``GET  /2018-06-01/runtime/invocation/next`` (long poll until an event is queued)
* ``POST /2018-06-01/runtime/invocation/{request_id}/response``
* ``POST /2018-06-01/runtime/invocation/{request_id}/error``
* ``POST /2018-06-01/runtime/init/error``

One event at a time, like one Lambda execution environment. ``LocalServer`` and
``QuietHandler`` are also what the AWS proxy (aws_proxy.py) serves with.
"""

from __future__ import annotations

import array
import fcntl
import json
import os
import queue
import secrets
import subprocess
import threading
import termios
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Self

from .events import ACCOUNT as DEFAULT_ACCOUNT

API_PREFIX = "/2018-06-01/runtime"


# --------------------------------------------------------------------------
# the Runtime API server
# --------------------------------------------------------------------------


@dataclass
class Invocation:
    request_id: str
    payload: bytes
    deadline_ms: int
    function_arn: str
    trace_id: str
    picked_up: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    outcome: str | None = None  # "response" | "error"
    body: bytes = b""
    error_type_header: str | None = None
    picked_up_at: float | None = None
    finished_at: float | None = None


class LocalServer:
    """A ThreadingHTTPServer on a daemon thread: what the harness's local servers share."""

    def _serve(self, host: str, port: int, handler: type[BaseHTTPRequestHandler], name: str) -> None:
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self.host, self.port = self._server.server_address[:2]
        self._thread = threading.Thread(target=self._server.serve_forever, name=name, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class QuietHandler(BaseHTTPRequestHandler):
    """The request handler of the harness's local servers: HTTP/1.1 keep-alive, no request log."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class RuntimeAPI(LocalServer):
    """HTTP server on 127.0.0.1 (random free port by default)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._queue: "queue.Queue[Invocation]" = queue.Queue()
        self._invocations: dict[str, Invocation] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.polling = threading.Event()  # set while a client waits on /next
        self.next_calls = 0
        self.init_error: dict[str, Any] | None = None
        self.init_error_type: str | None = None
        self.init_error_event = threading.Event()
        api = self

        class Handler(QuietHandler):
            def _body(self) -> bytes:
                return read_body(self)

            def _send(self, status: int, body: bytes | dict[str, Any], headers: dict[str, str] | None = None) -> None:
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the function went away (stopped/killed)

            def do_GET(self) -> None:  # noqa: N802
                if self.path.rstrip("/") != f"{API_PREFIX}/invocation/next":
                    self._send(404, {"errorMessage": "not found", "errorType": "NotFound"})
                    return
                api.next_calls += 1
                api.polling.set()
                inv = None
                while not api._stopping.is_set():
                    try:
                        inv = api._queue.get(timeout=0.1)
                        break
                    except queue.Empty:
                        continue
                api.polling.clear()
                if inv is None:
                    self._send(500, {"errorMessage": "runtime API shutting down", "errorType": "ShuttingDown"})
                    return
                inv.picked_up_at = time.monotonic()
                inv.picked_up.set()
                self._send(
                    200,
                    inv.payload,
                    {
                        "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                        "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
                        "Lambda-Runtime-Invoked-Function-Arn": inv.function_arn,
                        "Lambda-Runtime-Trace-Id": inv.trace_id,
                    },
                )

            def do_POST(self) -> None:  # noqa: N802
                body = self._body()
                path = self.path.rstrip("/")
                if path == f"{API_PREFIX}/init/error":
                    api.init_error = _json_or_raw(body)
                    api.init_error_type = self.headers.get("Lambda-Runtime-Function-Error-Type")
                    api.init_error_event.set()
                    self._send(202, {"status": "OK"})
                    return
                prefix = f"{API_PREFIX}/invocation/"
                if path.startswith(prefix):
                    rest = path[len(prefix) :]
                    request_id, _, kind = rest.rpartition("/")
                    if kind in ("response", "error"):
                        with api._lock:
                            inv = api._invocations.get(request_id)
                        if inv is None or inv.done.is_set():
                            self._send(400, {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"})
                            return
                        inv.outcome = kind
                        inv.body = body
                        inv.error_type_header = self.headers.get("Lambda-Runtime-Function-Error-Type")
                        inv.finished_at = time.monotonic()
                        inv.done.set()
                        self._send(202, {"status": "OK"})
                        return
                self._send(404, {"errorMessage": "not found", "errorType": "NotFound"})

        self._serve(host, port, Handler, "runtime-api")
        self.address = f"{self.host}:{self.port}"

    def stop(self) -> None:
        self._stopping.set()
        super().stop()

    def enqueue(self, payload: Any, *, function_arn: str, timeout: float) -> Invocation:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        inv = Invocation(
            request_id=str(uuid.uuid4()),
            payload=raw,
            deadline_ms=int((time.time() + timeout) * 1000),
            function_arn=function_arn,
            trace_id=_trace_id(),
        )
        with self._lock:
            self._invocations[inv.request_id] = inv
        self._queue.put(inv)
        return inv

    def withdraw(self, inv: Invocation) -> bool:
        """Take a not-yet-picked-up invocation back out of the queue."""
        with self._queue.mutex:
            try:
                self._queue.queue.remove(inv)
                return True
            except ValueError:
                return False


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body a BaseHTTPRequestHandler is reading, sized or chunked."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().strip().split(b";")[0], 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def _trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"


def _json_or_raw(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return {"raw": body.decode(errors="replace")}


# --------------------------------------------------------------------------
# the function process
# --------------------------------------------------------------------------


@dataclass
class LogLine:
    stream: str  # "stdout" | "stderr"
    text: str
    at: float

    @property
    def json(self) -> Any:
        """The line parsed as JSON, or None."""
        text = self.text.strip()
        if not text.startswith("{"):
            return None
        try:
            return json.loads(text)
        except ValueError:
            return None


@dataclass
class InvokeResult:
    ok: bool
    body: Any = None  # parsed JSON response (dict for our functions); None on error
    error: dict[str, Any] | None = None  # {"errorType", "errorMessage", ...}
    request_id: str | None = None
    duration_ms: float | None = None
    raw: bytes = b""
    logs: list[LogLine] = field(default_factory=list)

    @property
    def json_logs(self) -> list[dict[str, Any]]:
        return [j for j in (line.json for line in self.logs) if isinstance(j, dict)]


class LambdaProcessError(RuntimeError):
    pass


class LambdaProcess:
    """Runs a Lambda function binary (a `bootstrap`) against a private RuntimeAPI.

    ``env`` is merged over the Lambda variables this sets. AWS_* variables of
    the calling process are *not* inherited (so real credentials never reach
    the function); PATH, HOME etc. are.
    """

    def __init__(
        self,
        binary_path: str | os.PathLike[str],
        env: dict[str, str] | None = None,
        *,
        function_name: str | None = None,
        region: str | None = None,
        timeout: float = 30.0,
        auto_restart: bool = False,
        args: list[str] | None = None,
        cwd: str | None = None,
        start: bool = True,
    ) -> None:
        self.binary_path = str(binary_path)
        self.user_env = dict(env or {})
        self.region = region or self.user_env.get("AWS_REGION") or "us-east-1"
        if function_name:
            self.function_name = function_name
        elif os.path.basename(self.binary_path) == "bootstrap":  # target/lambda/<name>/bootstrap
            self.function_name = os.path.basename(os.path.dirname(os.path.abspath(self.binary_path)))
        else:
            self.function_name = os.path.basename(self.binary_path)
        self.function_arn = f"arn:aws:lambda:{self.region}:{DEFAULT_ACCOUNT}:function:{self.function_name}"
        self.timeout = timeout
        self.auto_restart = auto_restart
        self.args = list(args or [])
        self.cwd = cwd
        self.api: RuntimeAPI | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._lines: list[LogLine] = []
        self._lines_lock = threading.Lock()
        self._readers: list[threading.Thread] = []
        self._invoke_lock = threading.Lock()
        self.starts = 0
        if start:
            self.start()

    # -- lifecycle ---------------------------------------------------------

    def environment(self) -> dict[str, str]:
        # Lambda's environment: none of this machine's AWS_* settings, nor its trust-store
        # overrides (SSL_CERT_FILE/SSL_CERT_DIR would change what a cold start reads).
        base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
        assert self.api is not None
        base.update(
            {
                "AWS_LAMBDA_RUNTIME_API": self.api.address,
                "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.function_name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": f"{time.strftime('%Y/%m/%d')}/[$LATEST]{secrets.token_hex(16)}",
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "AWS_EXECUTION_ENV": "AWS_Lambda_provided.al2023",
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region,
                "LAMBDA_TASK_ROOT": os.path.dirname(os.path.abspath(self.binary_path)),
                "_HANDLER": "bootstrap",
                "TZ": ":UTC",
                "RUST_BACKTRACE": "1",
            }
        )
        base.update(self.user_env)
        return base

    def start(self) -> "LambdaProcess":
        if self.proc is not None and self.proc.poll() is None:
            return self
        if self.api is not None:
            self.api.stop()
        self.api = RuntimeAPI().start()
        self.proc = subprocess.Popen(
            [self.binary_path, *self.args],
            env=self.environment(),
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.starts += 1
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, "stdout"), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, "stderr"), daemon=True),
        ]
        for t in self._readers:
            t.start()
        return self

    def restart(self) -> "LambdaProcess":
        self.stop()
        return self.start()

    def stop(self, grace: float = 5.0) -> int | None:
        """Terminate the process and the Runtime API. Returns the exit code."""
        code = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(grace)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(grace)
            code = self.proc.returncode
            for t in self._readers:
                t.join(timeout=2)
        if self.api is not None:
            self.api.stop()
        return code

    def __enter__(self) -> "LambdaProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- state -------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    @property
    def init_error(self) -> dict[str, Any] | None:
        """What the function posted to /runtime/init/error, if anything."""
        return None if self.api is None else self.api.init_error

    def wait_ready(self, timeout: float = 15.0) -> bool:
        """Wait until the function polls for its first event (True) or it
        fails to initialise / exits (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.api is not None
            if self.api.polling.is_set() or self.api.next_calls:
                return True
            if self.api.init_error is not None or not self.alive:
                return False
            time.sleep(0.02)
        raise LambdaProcessError(f"{self.function_name} neither polled nor exited within {timeout}s")

    def wait_exit(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        code = self.proc.wait(timeout)
        for t in self._readers:
            t.join(timeout=2)
        return code

    # -- logs --------------------------------------------------------------

    def _read(self, pipe: Any, stream: str) -> None:
        for raw in iter(pipe.readline, b""):
            line = LogLine(stream, raw.decode(errors="replace").rstrip("\r\n"), time.time())
            with self._lines_lock:
                self._lines.append(line)
        pipe.close()

    def _unread_bytes(self) -> int:
        """Bytes the process wrote that the reader threads have not taken yet."""
        total = 0
        for pipe in (self.proc.stdout, self.proc.stderr) if self.proc else ():
            try:
                buf = array.array("i", [0])
                fcntl.ioctl(pipe.fileno(), termios.FIONREAD, buf)
                total += buf[0]
            except (OSError, ValueError):  # closed: nothing more will come
                pass
        return total

    def _settle(self, cap: float = 1.0) -> None:
        """Waits until what the process wrote before its response is read: its pipes hold
        no unread bytes and no line came in during the last poll (a fixed sleep lost
        lines when the machine was busy)."""
        deadline = time.monotonic() + cap
        seen = -1
        while time.monotonic() < deadline:
            time.sleep(0.005)
            count = len(self.lines)
            if count == seen and self._unread_bytes() == 0:
                return
            seen = count

    @property
    def lines(self) -> list[LogLine]:
        with self._lines_lock:
            return list(self._lines)

    @property
    def stdout_lines(self) -> list[str]:
        return [line.text for line in self.lines if line.stream == "stdout"]

    @property
    def stderr_lines(self) -> list[str]:
        return [line.text for line in self.lines if line.stream == "stderr"]

    def json_logs(self) -> list[dict[str, Any]]:
        """Every stdout/stderr line that parses as a JSON object."""
        return [j for j in (line.json for line in self.lines) if isinstance(j, dict)]

    def output(self) -> str:
        return "\n".join(f"[{line.stream}] {line.text}" for line in self.lines)

    def wait_for_log(self, predicate: Callable[[LogLine], bool], timeout: float = 10.0) -> LogLine:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            lines = self.lines
            for line in lines[seen:]:
                if predicate(line):
                    return line
            seen = len(lines)
            if time.monotonic() > deadline:
                raise TimeoutError(f"no matching log line within {timeout}s; output:\n{self.output()}")
            time.sleep(0.02)

    # -- invoking ----------------------------------------------------------

    def invoke(self, payload: Any, timeout: float | None = None) -> InvokeResult:
        """Send one event and wait for the function's response or error.

        Never raises for function failures: ``ok`` is False and ``error`` says
        why (the function's own error, ``Runtime.ExitError`` when the process
        died, with ``init_error`` attached if it reported one, or
        ``Sandbox.Timedout``, after which the process is killed like Lambda does).
        """
        timeout = self.timeout if timeout is None else timeout
        with self._invoke_lock:
            if not self.alive and self.auto_restart:
                self.restart()
            first_line = len(self.lines)
            if not self.alive:
                return self._died(None, first_line)
            assert self.api is not None
            inv = self.api.enqueue(payload, function_arn=self.function_arn, timeout=timeout)
            started = time.monotonic()
            deadline = started + timeout
            while not inv.done.wait(0.02):
                if not self.alive:
                    if not inv.picked_up.is_set():
                        self.api.withdraw(inv)
                    # give the reader threads a moment to drain the last lines
                    for t in self._readers:
                        t.join(timeout=1)
                    return self._died(inv, first_line)
                if time.monotonic() > deadline:
                    if not inv.picked_up.is_set():
                        self.api.withdraw(inv)
                    self.stop()
                    return InvokeResult(
                        ok=False,
                        error={
                            "errorType": "Sandbox.Timedout",
                            "errorMessage": f"Task timed out after {timeout:.2f} seconds",
                        },
                        request_id=inv.request_id,
                        duration_ms=(time.monotonic() - started) * 1000,
                        logs=self.lines[first_line:],
                    )
            duration = (time.monotonic() - started) * 1000
            self._settle()  # the log lines written just before the response
            logs = self.lines[first_line:]
            if inv.outcome == "response":
                body = _json_or_raw(inv.body)
                return InvokeResult(ok=True, body=body, request_id=inv.request_id, duration_ms=duration, raw=inv.body, logs=logs)
            error = _json_or_raw(inv.body) or {}
            if not isinstance(error, dict):
                error = {"errorMessage": str(error)}
            if inv.error_type_header and "errorType" not in error:
                error["errorType"] = inv.error_type_header
            return InvokeResult(ok=False, error=error, request_id=inv.request_id, duration_ms=duration, raw=inv.body, logs=logs)

    def _died(self, inv: Invocation | None, first_line: int) -> InvokeResult:
        code = self.exit_code
        error: dict[str, Any] = {
            "errorType": "Runtime.ExitError",
            "errorMessage": f"RequestId: {inv.request_id if inv else '-'} Error: Runtime exited with error: exit status {code}",
            "exitCode": code,
        }
        if self.init_error is not None:
            error["initError"] = self.init_error
            if isinstance(self.init_error, dict) and self.init_error.get("errorType"):
                error["errorType"] = "Runtime.InitError"
        return InvokeResult(
            ok=False,
            error=error,
            request_id=inv.request_id if inv else None,
            logs=self.lines[first_line:],
        )
