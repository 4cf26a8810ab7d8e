"""Demo's last word: `ecs-autopilot status`, the operator's table, over the fleet the
stories left behind (us-east-1: the drain, finding and retirement clusters; eu-west-1:
the rolled-out group).

    python tests/demo/status_demo.py      (starts its own, empty, emulator)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

TESTS_DIR = Path(__file__).resolve().parent.parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from harness.emulator import EmulatorProcess, find_function_binary  # noqa: E402

REGIONS = ("us-east-1", "eu-west-1")  # the stories' regions (rollout_demo: eu-west-1)


def run_status_demo(
    emulator: EmulatorProcess,
    binary: str | Path | None = None,
    out: Callable[[str], None] = print,
) -> dict[str, Any]:
    binary = binary or find_function_binary("ecs-autopilot")
    if binary is None:
        raise RuntimeError("ecs-autopilot is not built: cargo build --workspace --all-targets")
    tables = {}
    for region in REGIONS:
        out(f"$ ecs-autopilot status --region {region}")
        run = subprocess.run([str(binary), "status", "--region", region], env=emulator.env(),
                             capture_output=True, text=True, timeout=120)
        text = run.stdout if run.returncode == 0 else run.stderr
        for line in text.rstrip("\n").splitlines():
            out(line)
        out("")
        tables[region] = (run.returncode, text)
    return tables


if __name__ == "__main__":
    with EmulatorProcess() as emulator:
        run_status_demo(emulator)
