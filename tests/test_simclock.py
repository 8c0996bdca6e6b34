"""The demo's shared simulated clock: stepped, running, and the same in every process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fulfill import simclock

DAWN = datetime(2026, 11, 23, 13, 30, tzinfo=UTC)


def test_a_stopped_clock_moves_only_when_stepped(tmp_path: Path) -> None:
    clock = simclock.SharedClock(tmp_path / "clock")
    clock.set(DAWN, 0.0)
    time.sleep(0.05)
    assert clock.now() == DAWN
    assert clock.advance(60) == DAWN + timedelta(minutes=1) == clock.now()
    clock.close()


def test_a_running_clock_goes_speed_times_faster(tmp_path: Path) -> None:
    clock = simclock.SharedClock(tmp_path / "clock")
    started = time.monotonic()
    clock.set(DAWN, 600.0)
    time.sleep(0.2)
    simulated = (clock.now() - DAWN).total_seconds()
    real = time.monotonic() - started
    assert 600 * 0.2 <= simulated <= 600 * real
    clock.close()


def test_every_process_reads_the_time_its_writer_set(tmp_path: Path) -> None:
    path = tmp_path / "clock"
    clock = simclock.SharedClock(path)
    clock.set(DAWN, 0.0)
    clock.advance(90)
    # The service's own clock, in another process, through the environment.
    read = subprocess.run(
        [sys.executable, "-c", "from fulfill.db import utcnow; print(utcnow().isoformat())"],
        env=os.environ | {simclock.ENV: str(path)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert datetime.fromisoformat(read.stdout.strip()) == DAWN + timedelta(seconds=90)
    unset = {k: v for k, v in os.environ.items() if k != simclock.ENV}
    real = subprocess.run(
        [sys.executable, "-c", "from fulfill.db import utcnow; print(utcnow().isoformat())"],
        env=unset,
        capture_output=True,
        text=True,
        check=True,
    )
    assert abs(datetime.fromisoformat(real.stdout.strip()) - datetime.now(UTC)) < timedelta(
        minutes=1
    )
    clock.close()
