"""The Celery app and the beat schedule.

Reliability settings follow one rule: a task is acknowledged only after it ran, and a worker
that dies returns its task to the queue. Tasks are therefore idempotent, take ids, and keep
work for later as rows (``next_run_at``), never as long countdowns.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from celery import Celery
from celery.schedules import crontab
from celery.signals import after_setup_logger, worker_process_init, worker_shutting_down

from fulfill import embedded_broker
from fulfill.commit_kick import set_default_kick
from fulfill.config import Settings, get_settings

log = logging.getLogger(__name__)

TASK_MODULES = [
    "fulfill.relay",
    "fulfill.maintenance",
    "fulfill.dispatch.tasks",
    "fulfill.fulfillers.tasks",
    "fulfill.restock.tasks",
    "fulfill.tracking.tasks",
]
# What every sweep says each few seconds (a task sent, received, succeeded): said at INFO, these
# bury what matters, so they are shown only at DEBUG.
ROUTINE_LOGGERS = ("celery.beat", "celery.worker.strategy", "celery.app.trace")
VISIBILITY_TIMEOUT_S = 2 * 3600  # above every task's time limit
DEFAULT_QUEUE = "fulfill"
PLANNING_QUEUE = "planning"


def make_celery(settings: Settings) -> Celery:
    celery = Celery("fulfill", broker=settings.resolved_broker_url, include=TASK_MODULES)
    celery.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=DEFAULT_QUEUE,
        # Planning gets its own queue (``fulfill worker`` takes both): a wave's plan never
        # waits behind a burst of relays.
        task_routes={"dispatch.*": {"queue": PLANNING_QUEUE}},
        task_soft_time_limit=settings.task_soft_time_limit_s,
        task_time_limit=settings.task_time_limit_s,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=settings.broker_retries,
        broker_transport_options=_transport_options(settings),
        worker_hijack_root_logger=False,
        timezone="UTC",
        beat_schedule=beat_schedule(settings),
        beat_schedule_filename=str((settings.data_dir / "celerybeat-schedule").resolve()),
    )
    if settings.is_embedded_broker:
        celery.conf.broker_transport = embedded_broker.TRANSPORT
        # The filesystem transport has no broadcast, so workers cannot be remote-controlled.
        celery.conf.worker_enable_remote_control = False
    return celery


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    return {
        "outbox-sweep": {"task": "outbox.relay", "schedule": settings.outbox_sweep_s},
        "idempotency-purge": {"task": "maintenance.purge_idempotency_keys", "schedule": 3600.0},
        "dispatch-sweep": {"task": "dispatch.sweep", "schedule": settings.dispatch_sweep_s},
        "third-party-sync": {"task": "third_party.sync", "schedule": settings.mcf_sync_s},
        "tracking-poll": {"task": "tracking.poll", "schedule": settings.tracking_poll_s},
        "tracking-sweep": {"task": "tracking.sweep", "schedule": 60.0},
        "restock-refresh": {
            "task": "restock.refresh",
            "schedule": crontab(minute=0, hour=settings.restock_hour_utc),
        },
    }


def _transport_options(settings: Settings) -> dict[str, Any]:
    if not settings.is_embedded_broker:
        return {"visibility_timeout": VISIBILITY_TIMEOUT_S}
    queue_dir = settings.broker_dir / "queue"
    control_dir = settings.broker_dir / "control"
    for folder in (queue_dir, control_dir):
        folder.mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(queue_dir),
        "data_folder_out": str(queue_dir),
        "control_folder": str(control_dir),
        "store_processed": False,
        # The default (1 s) lets a worker take about one message a second: a burst of outbox
        # kicks then queued a wave's plan behind it for 40 s (bench/dispatch.py).
        "polling_interval": 0.1,
    }


class CoalescingKick:
    """Asks for a relay at most once per ``window_s``: a burst of commits costs one message,
    and the relay it starts takes every event due by then."""

    def __init__(self, send: Callable[[], object], window_s: float = 0.05) -> None:
        self._send = send
        self._window_s = window_s
        self._lock = threading.Lock()
        self._pending = False

    def __call__(self) -> None:
        with self._lock:
            if self._pending:
                return
            self._pending = True
        timer = threading.Timer(self._window_s, self._fire)
        timer.daemon = True
        timer.start()

    def _fire(self) -> None:
        with self._lock:
            self._pending = False
        try:
            self._send()
        except Exception:  # the periodic sweep relays it instead
            log.warning("could not ask a worker now; the periodic sweep will", exc_info=True)


app = make_celery(get_settings())


@worker_process_init.connect
def _relay_what_tasks_enqueue(**_: Any) -> None:
    set_default_kick(CoalescingKick(lambda: app.send_task("outbox.relay")))


@after_setup_logger.connect
def _quiet_routine_lines(loglevel: int | str | None = None, **_: Any) -> None:
    level = logging.getLevelName(loglevel) if isinstance(loglevel, str) else loglevel
    if isinstance(level, int) and level > logging.DEBUG:
        for name in ROUTINE_LOGGERS:
            logging.getLogger(name).setLevel(max(level, logging.WARNING))


class ShutdownWatch:
    """Tells a stop someone asked for (a signal) from a worker that fell over.

    Celery ends with status 0 in both cases when the broker connection breaks badly (kombu's
    restore of unacknowledged messages can raise past the consumer), so a supervisor that
    restarts on failure would leave the worker stopped."""

    def __init__(self) -> None:
        self.requested = False
        worker_shutting_down.connect(self._on_request, weak=False)

    def _on_request(self, **_: Any) -> None:
        self.requested = True

    def exit_status(self, celery_status: object) -> int:
        status = celery_status if isinstance(celery_status, int) else 1
        if status == 0 and not self.requested:
            return 1
        return status
