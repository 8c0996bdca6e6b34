"""A simulated clock that every process of a demo shares: the API, the workers, beat and the
demo's own driver read the same time, running faster than the real one or stepped forward.

``FULFILL_CLOCK_FILE`` names a small file holding an anchor (a simulated instant and the real
instant it was set at) and a speed: the time is ``simulated + speed * (real now - real then)``.
Speed 0 freezes the clock between the steps its writer takes (``--speed max``: the next step
when the service has caught up). Readers map the file and read it with a sequence lock, so a
reading costs a microsecond and never sees half a write. Without the variable, time is real.
"""

from __future__ import annotations

import mmap
import os
import struct
import time
from datetime import UTC, datetime
from pathlib import Path

ENV = "FULFILL_CLOCK_FILE"
_LAYOUT = struct.Struct("<Qddd")  # sequence (odd while written), simulated, real, speed


class SharedClock:
    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.exists() or path.stat().st_size < _LAYOUT.size:
            path.write_bytes(_LAYOUT.pack(0, time.time(), time.time(), 1.0))
        self._file = path.open("r+b")
        self._map = mmap.mmap(self._file.fileno(), _LAYOUT.size)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp(), UTC)

    def timestamp(self) -> float:
        while True:
            before, simulated, real, speed = _LAYOUT.unpack_from(self._map)
            if before % 2 == 0 and _LAYOUT.unpack_from(self._map)[0] == before:
                return float(simulated + speed * (time.time() - real))

    def set(self, at: datetime, speed: float) -> None:
        """From now on, the time is ``at`` running at ``speed`` (0: stopped)."""
        sequence = _LAYOUT.unpack_from(self._map)[0]
        struct.pack_into("<Q", self._map, 0, sequence + 1)
        struct.pack_into("<ddd", self._map, 8, at.timestamp(), time.time(), speed)
        struct.pack_into("<Q", self._map, 0, sequence + 2)

    def advance(self, seconds: float) -> datetime:
        """Move a stopped clock on by ``seconds``; the new time."""
        at = datetime.fromtimestamp(self.timestamp() + seconds, UTC)
        self.set(at, 0.0)
        return at

    def close(self) -> None:
        self._map.close()
        self._file.close()


def from_environment() -> SharedClock | None:
    path = os.environ.get(ENV)
    return SharedClock(Path(path)) if path else None
