"""`make demo`: the whole suite against one simulated fleet, one story per function."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS_DIR))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from drain_demo import run_drain_demo  # noqa: E402
from finding_demo import run_finding_demo  # noqa: E402
from harness.emulator import EmulatorProcess  # noqa: E402
from retirement_demo import run_retirement_demo  # noqa: E402
from rollout_demo import run_rollout_demo  # noqa: E402
from status_demo import run_status_demo  # noqa: E402

STORIES = [
    ("instance-drain: a busy host leaves its Auto Scaling group", run_drain_demo),
    ("ami-rollout: a new AMI is published and rolled out", run_rollout_demo),
    ("guardduty-responder: a reverse shell in a task", run_finding_demo),
    ("task-retirement: AWS schedules a task retirement", run_retirement_demo),
    # Last: the operator's view of the fleet the stories left.
    ("ecs-autopilot status: what the operator sees now", run_status_demo),
]


def main() -> int:
    with EmulatorProcess() as emulator:
        print(f"emulator (moto + ecs-autopilot extensions) at {emulator.url}\n")
        for title, story in STORIES:
            print("=" * 100)
            print(title)
            print("=" * 100)
            story(emulator)
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
