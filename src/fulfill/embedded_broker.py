"""The embedded broker: kombu's filesystem transport, with every message written whole.

kombu writes a message file in place, and a worker polling the folder can take it while it is
still empty: the worker then dies on a message it cannot decode (celery/kombu#1551). Here a
message is written under a name no reader takes, then renamed into the queue, which readers see
at once and in full.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import dumps

TRANSPORT = f"{__name__}:Transport"


class Channel(filesystem.Channel):
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]  # as kombu's own
        folder = Path(self.data_folder_out)
        # The name kombu reads by: the time first (its order), then ".{queue}.msg".
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        partial = folder / f".{name}.part"  # ".part" is no queue's suffix: never read
        try:
            partial.write_bytes(dumps(payload).encode())  # type: ignore[no-untyped-call]
            os.replace(partial, folder / name)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise ChannelError(f"cannot add a message to {folder}") from exc


class Transport(filesystem.Transport):
    Channel = Channel
