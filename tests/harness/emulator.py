"""Run tests/emulator/launcher.py in a subprocess and talk to it.

    with EmulatorProcess() as emu:
        ecs = emu.client("ecs")
        env = emu.env()        # for the Rust binaries
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3

LAUNCHER = Path(__file__).resolve().parent.parent / "emulator" / "launcher.py"
REPO_ROOT = Path(__file__).resolve().parents[2]


class EmulatorProcess:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = "us-east-1",
        python: str | None = None,
        extra_args: list[str] | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.host = host
        self.port = port
        self.region = region
        self.python = python or os.environ.get("ECS_AUTOPILOT_EMULATOR_PYTHON") or sys.executable
        self.extra_args = list(extra_args or [])
        self.startup_timeout = startup_timeout
        self.url: str | None = None
        self.proc: subprocess.Popen[str] | None = None
        self.log_path: str | None = None
        self._log_file: Any = None

    def start(self) -> "EmulatorProcess":
        fd, self.log_path = tempfile.mkstemp(prefix="ecs-autopilot-emulator-", suffix=".log")
        os.close(fd)
        self._log_file = open(self.log_path, "w")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": self.region})
        self.proc = subprocess.Popen(
            [self.python, str(LAUNCHER), "--host", self.host, "--port", str(self.port), *self.extra_args],
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        ready: list[str] = []
        done = threading.Event()

        def read_ready() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                if line.startswith("READY ") and not ready:
                    ready.append(line.split(None, 1)[1].strip())
                    done.set()
            done.set()

        threading.Thread(target=read_ready, daemon=True).start()
        if not done.wait(self.startup_timeout) or not ready:
            self.stop()
            raise RuntimeError(f"emulator did not start; log:\n{self.log()}")
        self.url = ready[0]
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> "EmulatorProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def log(self) -> str:
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path) as f:
            return f.read()

    # -- talking to it -----------------------------------------------------

    def client(self, service: str, region: str | None = None) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=region or self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a function binary pointed at the emulator."""
        assert self.url is not None
        env = {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        env.update(extra)
        return env

    def reset(self) -> None:
        """Wipe every moto backend (POST /moto-api/reset); emulator state goes too."""
        req = urllib.request.Request(f"{self.url}/moto-api/reset", data=b"", method="POST")
        urllib.request.urlopen(req, timeout=30).read()

    def wait_healthy(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/_autopilot/health", timeout=2).read()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def find_function_binary(name: str) -> Path | None:
    """A built function: $ECS_AUTOPILOT_BIN_DIR/<name>[/bootstrap] when set, else the
    newest of target/lambda/<name>/bootstrap (cargo lambda), target/release/<name> and
    target/debug/<name>, so a release build left by `make bench` never shadows the debug
    build `make test` just made. None if not built."""
    def runnable(paths: list[Path]) -> list[Path]:
        return [p for p in paths if p.is_file() and os.access(p, os.X_OK)]

    bin_dir = os.environ.get("ECS_AUTOPILOT_BIN_DIR")
    if bin_dir:
        found = runnable([Path(bin_dir) / name / "bootstrap", Path(bin_dir) / name])
        return found[0] if found else None
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO_ROOT / "target")
    found = runnable([target / "lambda" / name / "bootstrap", target / "release" / name, target / "debug" / name])
    return max(found, key=lambda p: p.stat().st_mtime) if found else None
