"""The queue seam on both backends: in-process (embedded) and Pub/Sub (the emulator, marker ``cloud``).

Each test publishes chunks, runs real consumer threads until a condition holds (or a timeout fails the test),
and asserts what reached the handlers: every chunk once when handlers succeed, a refused chunk again with the
next delivery attempt, a chunk refused ``max_delivery_attempts`` times among the dead letters the coordinator
reads. Pub/Sub tests each use a project of their own.

Mutations tried, each failing here: acknowledging on False (no redelivery), nacking on True (duplicates),
an exception escaping the consumer, dead-lettering one delivery early or never, dead_letters dropping a
message its handler refused.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from tests.emulators.google import pubsub_emulator, unique_project  # noqa: F401
from tests.storage.backends import registered_backends, unknown_backend

from nbaprops.storage.queue import InProcessQueue
from nbaprops.storage.seams import Queue, WorkMessage

MAX_DELIVERIES = 5  # Pub/Sub's minimum for a dead-letter policy
TIMEOUT_S = 30.0


@pytest.fixture(params=registered_backends())
def queue(request: pytest.FixtureRequest) -> Queue:
    if request.param == "duckdb":  # the embedded backend's queue
        return InProcessQueue(max_delivery_attempts=MAX_DELIVERIES)
    if request.param != "gcp":
        unknown_backend("queue", request.param)
    request.getfixturevalue("pubsub_emulator")
    from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

    from nbaprops.storage.gcp.queue import PubSubNames, PubSubQueue, ensure_pubsub

    names = PubSubNames(project=unique_project())
    publisher, subscriber = PublisherClient(), SubscriberClient()
    ensure_pubsub(
        names,
        publisher=publisher,
        subscriber=subscriber,
        ack_deadline_seconds=10,
        max_delivery_attempts=MAX_DELIVERIES,
    )
    return PubSubQueue(names, publisher=publisher, subscriber=subscriber, pull_timeout_s=0.5)


def chunks(n: int, batch_id: str = "b1") -> list[WorkMessage]:
    return [WorkMessage(batch_id, (f"player_{2 * i:03d}", f"player_{2 * i + 1:03d}")) for i in range(n)]


@pytest.fixture
def consumers(queue: Queue) -> Iterator[Callable[..., None]]:
    """Start ``n`` consumer threads with a handler; all stop at the end of the test."""
    stopping = threading.Event()
    threads: list[threading.Thread] = []

    def start(handler: Callable[[WorkMessage], bool], n: int = 4, max_messages: int = 2) -> None:
        for _ in range(n):
            thread = threading.Thread(
                target=queue.consume,
                args=(handler,),
                kwargs={"stop": stopping.is_set, "max_messages": max_messages},
                daemon=True,
            )
            thread.start()
            threads.append(thread)

    yield start
    stopping.set()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads), "a consumer did not stop"


def wait_for(condition: Callable[[], bool], *, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


class Recorder:
    """A handler that records every delivery and refuses the ones ``refuse`` says to."""

    def __init__(self, refuse: Callable[[WorkMessage], bool] = lambda m: False) -> None:
        self.refuse = refuse
        self.deliveries: list[WorkMessage] = []
        self._lock = threading.Lock()

    def __call__(self, message: WorkMessage) -> bool:
        with self._lock:
            self.deliveries.append(message)
        return not self.refuse(message)

    def count(self) -> Counter[tuple[str, ...]]:
        with self._lock:
            return Counter(m.players for m in self.deliveries)


def test_every_published_chunk_reaches_one_consumer_once(
    queue: Queue, consumers: Callable[..., None]
) -> None:
    published = chunks(40)
    assert queue.publish(published) == 40
    handler = Recorder()
    consumers(handler, n=4)
    wait_for(lambda: len(handler.deliveries) >= 40, what="40 deliveries")
    time.sleep(0.5)  # a duplicate would arrive in this window
    assert handler.count() == Counter(m.players for m in published)
    assert {m.batch_id for m in handler.deliveries} == {"b1"}
    assert {m.delivery_attempt for m in handler.deliveries} == {1}


def test_a_refused_chunk_comes_back_with_the_next_attempt(
    queue: Queue, consumers: Callable[..., None]
) -> None:
    published = chunks(6)
    refused_once = published[2].players
    seen_refused: list[int] = []

    def refuse(message: WorkMessage) -> bool:
        if message.players != refused_once:
            return False
        seen_refused.append(message.delivery_attempt)
        if len(seen_refused) == 2:
            raise RuntimeError("a handler's exception also means: deliver again")
        return len(seen_refused) < 3

    handler = Recorder(refuse)
    queue.publish(published)
    consumers(handler, n=2)
    wait_for(lambda: len(seen_refused) >= 3, what="the refused chunk's third delivery")
    time.sleep(0.5)
    assert seen_refused == [1, 2, 3]
    counts = handler.count()
    assert counts[refused_once] == 3
    assert all(counts[m.players] == 1 for m in published if m.players != refused_once)


def test_a_chunk_refused_every_time_is_dead_lettered_for_the_coordinator(
    queue: Queue, consumers: Callable[..., None]
) -> None:
    published = chunks(3)
    poison = published[1].players
    handler = Recorder(lambda m: m.players == poison)
    queue.publish(published)
    consumers(handler, n=2)
    dead: list[WorkMessage] = []

    def coordinator_reads() -> bool:
        queue.dead_letters(lambda m: dead.append(m) or True)
        return bool(dead)

    wait_for(coordinator_reads, what="the dead letter")
    assert [(m.batch_id, m.players) for m in dead] == [("b1", poison)]
    assert dead[0].delivery_attempt == MAX_DELIVERIES
    assert sorted(m.delivery_attempt for m in handler.deliveries if m.players == poison) == list(
        range(1, MAX_DELIVERIES + 1)
    )
    time.sleep(0.3)
    assert queue.dead_letters(lambda m: True) == 0  # acknowledged dead letters are gone


def test_a_dead_letter_the_coordinator_could_not_handle_stays(
    queue: Queue, consumers: Callable[..., None]
) -> None:
    queue.publish(chunks(1))
    consumers(Recorder(lambda m: True), n=1)
    refused: list[WorkMessage] = []
    wait_for(
        lambda: queue.dead_letters(lambda m: refused.append(m) or False) == 0 and bool(refused),
        what="refusal",
    )
    handled: list[WorkMessage] = []
    wait_for(
        lambda: queue.dead_letters(lambda m: handled.append(m) or True) == 1, what="the kept dead letter"
    )
    assert [m.players for m in handled] == [refused[0].players]
