"""Demo's last word: `ecs-autopilot status`, the operator's table, over the fleet the
stories left behind (us-east-1: the drain, finding and retirement clusters; eu-west-1:
the rolled-out group).

    python tests/demo/status_demo.py      (starts its own, empty, emulator)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from scaffold import Out, standalone

from harness.emulator import EmulatorProcess
from harness.functions import binary_of

REGIONS = ("us-east-1", "eu-west-1")  # the stories' regions (rollout_demo: eu-west-1)


def run_status_demo(
    emulator: EmulatorProcess,
    binary: str | Path | None = None,
    out: Out = print,
) -> dict[str, Any]:
    binary = binary or binary_of("ecs-autopilot")
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
    sys.exit(standalone(run_status_demo))
