"""Enqueueing that works with or without a broker, and survives a broker outage.

With ``CELERY_BROKER_URL`` set, tasks go to Celery through a transactional outbox (the
``outbox`` app): :func:`enqueue_on_commit` records the message in the caller's transaction
and sends it right after the commit. If the broker (Redis) cannot be reached then, the
request still succeeds and the message stays in the outbox; every worker relays what is left
once the broker is back, so no work is lost and nobody has to re-run anything. Without a
broker (the embedded default) tasks run in this process: in one background thread (so an
upload returns at once) or inline when ``TASKS_IN_PROCESS_MODE=eager`` (tests). Always call
:func:`enqueue_on_commit` from inside the transaction that created the rows the task reads.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import close_old_connections, transaction

logger = logging.getLogger(__name__)
_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def _get_executor() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vidjudge-task")
        return _executor


def _run_in_thread(task: Any, args: tuple, kwargs: dict) -> None:
    close_old_connections()
    try:
        task.apply(args=args, kwargs=kwargs, throw=False)
    except Exception:  # the task records its own failure; never kill the worker thread
        logger.exception("in-process task %s failed", task.name)
    finally:
        close_old_connections()


def _outbox_enqueue(messages: list[tuple[str, tuple, dict]]) -> None:
    """Record ``messages`` (in the current transaction, if any) and send them once it commits."""
    from outbox.services import outbox_add, outbox_dispatch  # noqa: PLC0415 - apps are loaded by now

    ids = outbox_add(messages=messages)
    transaction.on_commit(lambda: outbox_dispatch(ids=ids))


def enqueue(task: Any, *args: Any, **kwargs: Any) -> None:
    """Send ``task`` now: to the broker (through the outbox: never lost, never raises for a
    broker that is down), or run it in process."""
    if not settings.TASKS_IN_PROCESS:
        _outbox_enqueue([(task.name, args, kwargs)])
    elif settings.TASKS_IN_PROCESS_MODE == "eager":
        task.apply(args=args, kwargs=kwargs, throw=True)
    else:
        _get_executor().submit(_run_in_thread, task, args, kwargs)


def enqueue_many(task: Any, arg_list: list[tuple]) -> None:
    """Send one task message per argument tuple, over one broker connection."""
    if not arg_list:
        return
    if settings.TASKS_IN_PROCESS:
        for args in arg_list:
            enqueue(task, *args)
        return
    _outbox_enqueue([(task.name, tuple(args), {}) for args in arg_list])


def enqueue_on_commit(task: Any, *args: Any, **kwargs: Any) -> None:
    """Send ``task`` once the current transaction commits (at once outside one). With a
    broker the message is recorded now, in the transaction, so it is never lost."""
    if not settings.TASKS_IN_PROCESS:
        _outbox_enqueue([(task.name, args, kwargs)])
        return
    transaction.on_commit(lambda: enqueue(task, *args, **kwargs))


def enqueue_many_on_commit(task: Any, arg_list: list[tuple]) -> None:
    if not settings.TASKS_IN_PROCESS:
        if arg_list:
            _outbox_enqueue([(task.name, tuple(args), {}) for args in arg_list])
        return
    transaction.on_commit(lambda: enqueue_many(task, list(arg_list)))


def wait_for_in_process_tasks(timeout: float = 600.0) -> None:
    """Block until the background thread has run everything submitted so far."""
    if _executor is None:
        return
    _executor.submit(lambda: None).result(timeout=timeout)
