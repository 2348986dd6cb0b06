"""The in-process queue: the :class:`~nbaprops.storage.seams.Queue` seam for the embedded backend.

Same semantics as the Pub/Sub queue, inside one process: each published message reaches one consumer at a time;
a handler returning True acknowledges it; False or an exception puts it back at the end of the queue with its
delivery attempt increased; after ``max_delivery_attempts`` deliveries it moves to the dead letters, which the
coordinator reads with :meth:`InProcessQueue.dead_letters` to end those requests ``failed`` with the reason.
A message is never lost by a failing handler; a message whose consumer thread dies is lost with the process,
exactly like its lease — the sweeper recovers both.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace

from nbaprops.storage.seams import WorkMessage

log = logging.getLogger(__name__)

POLL_SECONDS = 0.05  # how often an idle consumer looks at ``stop()``


def deliver(handler: Callable[[WorkMessage], bool], message: WorkMessage, *, what: str = "handler") -> bool:
    """Call ``handler``; an exception counts as False (the message comes back) and is logged, never raised."""
    try:
        return bool(handler(message))
    except Exception:
        log.exception("batch %s: %s failed on %d player(s)", message.batch_id, what, len(message.players))
        return False


class InProcessQueue:
    """A thread-safe in-memory queue of :class:`WorkMessage` with redelivery and dead letters.

    Args:
        max_delivery_attempts: deliveries before a message is dead-lettered (Pub/Sub's own default is 5).
    """

    def __init__(self, *, max_delivery_attempts: int = 5) -> None:
        self.max_delivery_attempts = max_delivery_attempts
        self._ready: collections.deque[WorkMessage] = collections.deque()
        self._dead: collections.deque[WorkMessage] = collections.deque()
        self._changed = threading.Condition()

    def publish(self, messages: Sequence[WorkMessage]) -> int:
        with self._changed:
            for message in messages:
                self._ready.append(replace(message, delivery_attempt=1))
            self._changed.notify_all()
        return len(messages)

    def pending(self) -> int:
        """Messages waiting for a consumer (not those being handled)."""
        with self._changed:
            return len(self._ready)

    def _next(self, stop: Callable[[], bool]) -> WorkMessage | None:
        with self._changed:
            while not self._ready:
                if stop():
                    return None
                self._changed.wait(POLL_SECONDS)
            return self._ready.popleft()

    def consume(
        self,
        handler: Callable[[WorkMessage], bool],
        *,
        stop: Callable[[], bool],
        max_messages: int = 1,
    ) -> None:
        """Hand messages to ``handler`` one at a time until ``stop()`` (``max_messages`` is Pub/Sub's knob)."""
        while not stop():
            message = self._next(stop)
            if message is None:
                return
            if not deliver(handler, message):
                self._redeliver(message)

    def _redeliver(self, message: WorkMessage) -> None:
        with self._changed:
            if message.delivery_attempt >= self.max_delivery_attempts:
                log.warning(
                    "batch %s: message of %d player(s) dead-lettered after %d deliveries",
                    message.batch_id,
                    len(message.players),
                    message.delivery_attempt,
                )
                self._dead.append(message)
            else:
                self._ready.append(replace(message, delivery_attempt=message.delivery_attempt + 1))
            self._changed.notify_all()

    def dead_letters(self, handler: Callable[[WorkMessage], bool], *, max_messages: int = 100) -> int:
        """Hand up to ``max_messages`` dead-lettered messages to ``handler``; those it returns True for are
        removed (the others stay for the next call). Returns how many were removed."""
        with self._changed:
            batch = [self._dead.popleft() for _ in range(min(max_messages, len(self._dead)))]
        handled = 0
        kept: list[WorkMessage] = []
        for message in batch:
            if deliver(handler, message, what="dead-letter handler"):
                handled += 1
            else:
                kept.append(message)
        with self._changed:
            self._dead.extend(kept)
        return handled
