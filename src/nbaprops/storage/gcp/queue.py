"""The Pub/Sub queue: one message per chunk of a batch's requests; workers pull; redelivery is the retry.

A message's body is JSON ``{"batch_id": …, "players": […]}``. Messages only wake work up; the ledger is the
truth (a lost message is recovered by the sweeper's lease expiry and a re-publish, a duplicate finds its
requests no longer ``pending``).

How a worker pulls, and why (issue 22):

- **Synchronous pull with long waits.** A pull is bounded by ``max_messages`` — the flow control a chunk worker
  wants: it never holds more work than it is handling (the streaming client buffers messages beyond its flow
  control and hands them out from several threads). A pull the client abandons before the server answers can
  still be handed a message, which then sits unseen until its ack deadline and counts as a delivery attempt
  (googleapis/google-cloud-python#8087; the server holds a quiet pull open for up to ~90 s, emqx/emqx#17966),
  so a pull waits ``pull_timeout_s`` (100 s), longer than the server's hold. It runs on a thread of its own so
  ``stop()`` is still seen at once; a pull abandoned by ``stop()`` nacks whatever it is handed later.
- **Lease management.** While a handler runs, the messages it holds have their ack deadline set to
  ``ack_deadline_s`` at once and renewed every third of it (``modify_ack_deadline`` on a timer; synchronous
  pull has no lease manager of its own, googleapis/python-pubsub#440), up to ``max_lease_s``: a chunk that runs
  longer than the subscription's deadline is not redelivered to another worker meanwhile.
- **Transient errors never end the consumer.** A pull, ack or nack answered with a transient error
  (``UNAVAILABLE``, a deadline, the client's own retries exhausted) is waited out with jittered exponential
  backoff (``backoff``) and the consumer pulls again; it counts them in ``transient_errors``. A terminal error (the
  subscription deleted, permission revoked) still propagates: that worker cannot work.
- **Redelivery is spaced by the subscription's retry policy** (:class:`Redelivery`, made by ``nbaprops gcp
  setup``): without one a nack comes back at once, so a passing error burns every delivery attempt within a
  second and the chunk is dead-lettered, its requests ``failed`` for good.

After ``max_delivery_attempts`` the dead-letter policy moves a message to the dead-letter topic, whose own
subscription :meth:`PubSubQueue.dead_letters` reads so the coordinator can end those requests ``failed``.
Push is not used: on the emulator it allows 2 requests in flight and, with a retry policy, stops delivering
(``../shared/emulators.md``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from google.api_core import exceptions as google_errors
from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

from nbaprops.errors import InputError, TransientError
from nbaprops.storage.gcp.errors import gcp_errors
from nbaprops.storage.gcp.retry import QUEUE_BACKOFF, Backoff
from nbaprops.storage.queue import deliver
from nbaprops.storage.seams import WorkMessage

log = logging.getLogger(__name__)

PULL_TIMEOUT_S = 100.0  # longer than the server holds a quiet pull open (see the module's notes)
DEAD_LETTER_PULL_TIMEOUT_S = 2.0  # the coordinator's poll of dead letters
STOP_POLL_S = 0.1  # how often a consumer waiting for its pull looks at ``stop()``
IDLE_SLEEP_S = 0.05  # pause after an empty pull, so an idle worker does not spin
ACK_DEADLINE_S = 60.0  # the deadline a held message is kept at (renewed every third of it)
MAX_LEASE_S = 3600.0  # a handler running longer than this lets its message come back
SETTLE_ATTEMPTS = 4  # tries of one ack or nack before the message is left to its deadline
# Pub/Sub names the delivery count of a dead-lettered message in this attribute.
DEAD_LETTER_COUNT_ATTRIBUTE = "CloudPubSubDeadLetterSourceDeliveryCount"


@dataclass(frozen=True)
class Redelivery:
    """The workers' subscription's retry policy: a nacked (or expired) message comes back after an exponential
    backoff between these bounds (Pub/Sub allows 0–600 s), not at once.

    Production uses :data:`REDELIVERY`: with 10 attempts a message is tried over ~20 minutes (10 s, 20 s, … up
    to 600 s) before it is dead-lettered, which outlasts a restart of a dependency; tests pass fractions of a
    second.
    """

    minimum_backoff_s: float = 10.0
    maximum_backoff_s: float = 600.0

    def as_request(self) -> dict[str, Any]:
        def duration(seconds: float) -> dict[str, int]:
            return {"seconds": int(seconds), "nanos": int(round((seconds - int(seconds)) * 1e9))}

        return {
            "minimum_backoff": duration(self.minimum_backoff_s),
            "maximum_backoff": duration(self.maximum_backoff_s),
        }


REDELIVERY = Redelivery()


@dataclass(frozen=True)
class PubSubNames:
    """Where the work goes: a topic, its workers' subscription, and the dead-letter topic and subscription."""

    project: str
    topic: str = "nbaprops-work"
    subscription: str = "nbaprops-workers"
    dead_letter_topic: str = "nbaprops-work-dead-letter"
    dead_letter_subscription: str = "nbaprops-work-dead-letter"

    @property
    def topic_path(self) -> str:
        return f"projects/{self.project}/topics/{self.topic}"

    @property
    def subscription_path(self) -> str:
        return f"projects/{self.project}/subscriptions/{self.subscription}"

    @property
    def dead_letter_topic_path(self) -> str:
        return f"projects/{self.project}/topics/{self.dead_letter_topic}"

    @property
    def dead_letter_subscription_path(self) -> str:
        return f"projects/{self.project}/subscriptions/{self.dead_letter_subscription}"


def ensure_pubsub(
    names: PubSubNames,
    *,
    publisher: PublisherClient,
    subscriber: SubscriberClient,
    ack_deadline_seconds: int = 60,
    max_delivery_attempts: int = 5,
    redelivery: Redelivery | None = None,
) -> list[str]:
    """Create the topic, the dead-letter topic, their subscriptions and the dead-letter policy; idempotent.

    Run once per deployment by ``nbaprops gcp setup`` (an account with ``roles/pubsub.editor``), never when a
    process starts: real Pub/Sub answers a creation by an account with only the publisher or subscriber role
    with permission denied, not already-exists. ``max_delivery_attempts`` must be 5–100 (Pub/Sub's range).
    ``redelivery`` is the retry policy (``nbaprops gcp setup`` passes :data:`REDELIVERY`; None: none, a nack
    comes back at once). An existing topic is left as it is; an existing workers' subscription gets the retry
    policy, dead-letter policy and ack deadline asked for (``update_subscription``), so running set-up again
    after an upgrade brings an old deployment's subscription up to date.
    On real Pub/Sub the service account ``service-PROJECT_NUMBER@gcp-sa-pubsub`` also needs the publisher role
    on the dead-letter topic and the subscriber role on the workers' subscription (docs/cloud.md).

    Returns:
        the paths of the topics and subscriptions this call created or updated.
    """
    created: list[str] = []
    workers: dict[str, Any] = {
        "name": names.subscription_path,
        "topic": names.topic_path,
        "ack_deadline_seconds": ack_deadline_seconds,
        # The keyword form of create_subscription does not take the policies (emulators.md).
        "dead_letter_policy": {
            "dead_letter_topic": names.dead_letter_topic_path,
            "max_delivery_attempts": max_delivery_attempts,
        },
    }
    if redelivery is not None:
        workers["retry_policy"] = redelivery.as_request()
    with gcp_errors(f"create Pub/Sub topics and subscriptions in {names.project}"):
        for topic in (names.topic_path, names.dead_letter_topic_path):
            with contextlib.suppress(google_errors.AlreadyExists):
                publisher.create_topic(request={"name": topic})
                created.append(topic)
        # The dead-letter topic needs a subscription of its own, or dead letters are dropped on arrival.
        with contextlib.suppress(google_errors.AlreadyExists):
            subscriber.create_subscription(
                request={"name": names.dead_letter_subscription_path, "topic": names.dead_letter_topic_path}
            )
            created.append(names.dead_letter_subscription_path)
        try:
            subscriber.create_subscription(request=workers)
            created.append(names.subscription_path)
        except google_errors.AlreadyExists:
            current = subscriber.get_subscription(request={"subscription": names.subscription_path})
            if subscription_drift(
                current,
                ack_deadline_seconds=ack_deadline_seconds,
                max_delivery_attempts=max_delivery_attempts,
                redelivery=redelivery,
            ):
                fields = ["ack_deadline_seconds", "dead_letter_policy"]
                fields += ["retry_policy"] if redelivery is not None else []
                subscriber.update_subscription(
                    request={
                        "subscription": {k: v for k, v in workers.items() if k != "topic"},
                        "update_mask": {"paths": fields},
                    }
                )
                created.append(names.subscription_path)
    return created


def _seconds(duration: Any) -> float:
    """A protobuf ``Duration`` (or the ``timedelta`` proto-plus makes of it) in seconds."""
    if hasattr(duration, "total_seconds"):
        return float(duration.total_seconds())
    return float(getattr(duration, "seconds", 0)) + float(getattr(duration, "nanos", 0)) / 1e9


def subscription_drift(
    subscription: Any,
    *,
    ack_deadline_seconds: int,
    max_delivery_attempts: int,
    redelivery: Redelivery | None,
) -> list[str]:
    """How an existing workers' subscription differs from what set-up makes (empty: it does not).

    ``subscription`` is what ``get_subscription`` returned. Each item names the setting, what it is and what it
    should be.
    """
    drift: list[str] = []
    if int(subscription.ack_deadline_seconds) != ack_deadline_seconds:
        drift.append(f"ack deadline {subscription.ack_deadline_seconds} s (want {ack_deadline_seconds} s)")
    attempts = int(subscription.dead_letter_policy.max_delivery_attempts or 0)
    if not subscription.dead_letter_policy.dead_letter_topic:
        drift.append("no dead-letter policy")
    elif attempts != max_delivery_attempts:
        drift.append(f"max delivery attempts {attempts} (want {max_delivery_attempts})")
    if redelivery is not None:
        policy = subscription.retry_policy
        if "retry_policy" not in subscription or policy is None:
            drift.append("no retry policy (a nack comes back at once)")
        else:
            bounds = (_seconds(policy.minimum_backoff), _seconds(policy.maximum_backoff))
            want = (redelivery.minimum_backoff_s, redelivery.maximum_backoff_s)
            if any(abs(x - y) > 1e-3 for x, y in zip(bounds, want, strict=True)):
                drift.append(f"retry backoff {bounds[0]:g}-{bounds[1]:g} s (want {want[0]:g}-{want[1]:g} s)")
    return drift


def _encode(message: WorkMessage) -> bytes:
    return json.dumps({"batch_id": message.batch_id, "players": list(message.players)}).encode()


def _decode(data: bytes, delivery_attempt: int) -> WorkMessage:
    try:
        body = json.loads(data)
        return WorkMessage(str(body["batch_id"]), tuple(str(p) for p in body["players"]), delivery_attempt)
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"not a work message ({exc}): {data[:200]!r}") from exc


class _Pull:
    """One synchronous pull on a thread of its own, so its caller can stop waiting for it.

    A pull abandoned by ``stop()`` keeps running on its (daemon) thread; whatever it is handed afterwards is
    nacked at once instead of sitting out its ack deadline.
    """

    def __init__(self, pull: Callable[[], list[Any]], nack: Callable[[list[str]], None]) -> None:
        self._pull, self._nack = pull, nack
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._abandoned = False
        self._received: list[Any] = []
        self._error: BaseException | None = None
        threading.Thread(target=self._run, name="nbaprops-pull", daemon=True).start()

    def _run(self) -> None:
        try:
            received = self._pull()
        except BaseException as exc:  # handed to the waiting caller
            self._error = exc
            received = []
        with self._lock:
            self._received = received
            abandoned = self._abandoned
            self._done.set()
        if abandoned and received:
            with contextlib.suppress(Exception):
                self._nack([item.ack_id for item in received])

    def wait(self, stop: Callable[[], bool]) -> list[Any] | None:
        """The messages, or None when ``stop()`` came first (the pull is abandoned)."""
        while not self._done.wait(STOP_POLL_S):
            if stop():
                with self._lock:
                    if not self._done.is_set():
                        self._abandoned = True
                        return None
        if self._error is not None:
            raise self._error
        return self._received


class _LeaseKeeper:
    """Keeps held messages' ack deadline at ``deadline_s``: set at once, renewed every third of it, until
    :meth:`stop` or ``max_lease_s``. A failed renewal is logged and tried again at the next tick (at worst the
    message comes back while its chunk runs, which the ledger absorbs)."""

    def __init__(
        self,
        extend: Callable[[list[str], int], None],
        ack_ids: list[str],
        *,
        deadline_s: float,
        max_lease_s: float,
    ) -> None:
        self._extend, self._ack_ids = extend, ack_ids
        self._deadline = max(1, int(round(deadline_s)))
        self._interval = max(0.1, deadline_s / 3)
        self._until = time.monotonic() + max_lease_s
        self._stopped = threading.Event()
        self.renewals = 0
        self._renew()
        self._thread = threading.Thread(target=self._run, name="nbaprops-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        try:
            self._extend(self._ack_ids, self._deadline)
            self.renewals += 1
        except Exception as exc:  # the next tick tries again
            log.warning("could not extend the ack deadline of %d message(s): %s", len(self._ack_ids), exc)

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            if time.monotonic() >= self._until:
                log.warning(
                    "a handler held %d message(s) past the maximum lease; they may come back",
                    len(self._ack_ids),
                )
                return
            self._renew()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()


class PubSubQueue:
    """The :class:`~nbaprops.storage.seams.Queue` seam on a Pub/Sub topic and pull subscription.

    Args:
        names: the topic and subscriptions (``nbaprops gcp setup`` creates them: :func:`ensure_pubsub`).
        publisher: a ``PublisherClient`` (honours ``PUBSUB_EMULATOR_HOST``); made when omitted.
        subscriber: a ``SubscriberClient``; made when omitted.
        pull_timeout_s: how long one pull may wait for messages (longer than the server's hold).
        ack_deadline_s: the ack deadline a held message is kept at while its handler runs.
        max_lease_s: how long a held message's deadline is renewed at most.
        backoff: the waits after transient pull, ack or nack errors.
    """

    def __init__(
        self,
        names: PubSubNames,
        *,
        publisher: PublisherClient | None = None,
        subscriber: SubscriberClient | None = None,
        pull_timeout_s: float = PULL_TIMEOUT_S,
        ack_deadline_s: float = ACK_DEADLINE_S,
        max_lease_s: float = MAX_LEASE_S,
        backoff: Backoff = QUEUE_BACKOFF,
    ) -> None:
        self.names = names
        self.pull_timeout_s = pull_timeout_s
        self.ack_deadline_s = ack_deadline_s
        self.max_lease_s = max_lease_s
        self.backoff = backoff
        self.publisher = publisher or PublisherClient()
        self.subscriber = subscriber or SubscriberClient()
        self.transient_errors = 0  # pull/ack/nack errors waited out (read by tests and metrics)
        self._counter = threading.Lock()

    def publish(self, messages: Sequence[WorkMessage]) -> int:
        """Publish every message and wait until Pub/Sub has stored each one."""
        with gcp_errors(f"publish to {self.names.topic_path}"):
            futures = [
                self.publisher.publish(self.names.topic_path, _encode(m), batch_id=m.batch_id)
                for m in messages
            ]
            for future in futures:
                future.result()
        return len(futures)

    def _pull(self, subscription: str, max_messages: int, timeout: float | None = None) -> list[Any]:
        try:
            response = self.subscriber.pull(
                request={"subscription": subscription, "max_messages": max_messages},
                timeout=self.pull_timeout_s if timeout is None else timeout,
            )
        except google_errors.DeadlineExceeded:
            return []  # nothing arrived within the pull's wait
        return list(response.received_messages)

    def _modify(self, subscription: str, ack_ids: list[str], seconds: int) -> None:
        with gcp_errors(f"modify ack deadlines on {subscription}"):
            self.subscriber.modify_ack_deadline(
                request={"subscription": subscription, "ack_ids": ack_ids, "ack_deadline_seconds": seconds}
            )

    def _settle(self, subscription: str, *, acks: list[str], nacks: list[str]) -> None:
        if acks:
            self.subscriber.acknowledge(request={"subscription": subscription, "ack_ids": acks})
        if nacks:
            self.subscriber.modify_ack_deadline(
                request={"subscription": subscription, "ack_ids": nacks, "ack_deadline_seconds": 0}
            )

    def _transient(self, what: str, exc: TransientError, failures: int, stop: Callable[[], bool]) -> None:
        """Count a transient error and wait it out (``stop()`` cuts the wait short)."""
        with self._counter:
            self.transient_errors += 1
        wait = self.backoff.delay(failures)
        log.warning("%s failed (%d in a row), again in %.1f s: %s", what, failures, wait, exc)
        deadline = time.monotonic() + wait
        while not stop() and time.monotonic() < deadline:
            time.sleep(min(STOP_POLL_S, max(0.0, deadline - time.monotonic())))

    def _settle_retried(
        self, subscription: str, *, acks: list[str], nacks: list[str], stop: Callable[[], bool]
    ) -> None:
        """Ack and nack, transient errors retried ``SETTLE_ATTEMPTS`` times; then the messages are left to their
        ack deadline (a lost ack is a redelivery the ledger absorbs, never a reason for the consumer to die)."""
        for failures in range(1, SETTLE_ATTEMPTS + 1):
            try:
                with gcp_errors(f"acknowledge on {subscription}"):
                    self._settle(subscription, acks=acks, nacks=nacks)
                return
            except TransientError as exc:
                if failures == SETTLE_ATTEMPTS:
                    log.error(
                        "gave up acknowledging %d message(s) on %s: %s",
                        len(acks) + len(nacks),
                        subscription,
                        exc,
                    )
                    return
                self._transient(f"acknowledge on {subscription}", exc, failures, lambda: False)

    def consume(
        self,
        handler: Callable[[WorkMessage], bool],
        *,
        stop: Callable[[], bool],
        max_messages: int = 1,
    ) -> None:
        """Pull up to ``max_messages`` at a time and hand each to ``handler`` until ``stop()``.

        ``WorkMessage.delivery_attempt`` is Pub/Sub's count (set because the subscription has a dead-letter
        policy). An unreadable body is acknowledged and logged: redelivering it could never succeed. Transient
        errors are waited out (see the module's notes); a terminal error propagates.
        """
        subscription = self.names.subscription_path

        def pull() -> list[Any]:
            with gcp_errors(f"pull from {subscription}"):
                return self._pull(subscription, max_messages)

        def nack(ack_ids: list[str]) -> None:
            self._modify(subscription, ack_ids, 0)

        failures = 0
        while not stop():
            try:
                received = _Pull(pull, nack).wait(stop)
            except TransientError as exc:
                failures += 1
                self._transient(f"pull from {subscription}", exc, failures, stop)
                continue
            failures = 0
            if received is None:
                return
            if not received:
                time.sleep(IDLE_SLEEP_S)  # the emulator (and a real pull) may answer an empty pull at once
                continue
            keeper = _LeaseKeeper(
                lambda ids, seconds: self._modify(subscription, ids, seconds),
                [item.ack_id for item in received],
                deadline_s=self.ack_deadline_s,
                max_lease_s=self.max_lease_s,
            )
            acks: list[str] = []
            nacks: list[str] = []
            try:
                for item in received:
                    try:
                        message = _decode(item.message.data, int(item.delivery_attempt or 1))
                    except InputError as exc:
                        log.error("dropping message %s: %s", item.message.message_id, exc)
                        acks.append(item.ack_id)
                        continue
                    (acks if deliver(handler, message) else nacks).append(item.ack_id)
            finally:
                keeper.stop()
            self._settle_retried(subscription, acks=acks, nacks=nacks, stop=stop)

    def dead_letters(self, handler: Callable[[WorkMessage], bool], *, max_messages: int = 100) -> int:
        """Pull once from the dead-letter subscription and hand each message to ``handler``; those it returns
        True for are acknowledged (gone), the others come back on a later call. Returns how many were handled.

        ``delivery_attempt`` of a dead letter is the number of deliveries it failed, where Pub/Sub says.
        """
        subscription = self.names.dead_letter_subscription_path
        with gcp_errors(f"pull from {subscription}"):
            # A short wait: the coordinator polls between its other work. A dead letter handed to a pull given up
            # here waits out that subscription's ack deadline; it only ends its requests a little later.
            received = self._pull(subscription, max_messages, DEAD_LETTER_PULL_TIMEOUT_S)
        acks: list[str] = []
        nacks: list[str] = []
        handled = 0
        for item in received:
            count = item.message.attributes.get(DEAD_LETTER_COUNT_ATTRIBUTE)
            try:
                message = _decode(item.message.data, int(count) if count and count.isdigit() else 0)
            except InputError as exc:
                log.error("dropping dead letter %s: %s", item.message.message_id, exc)
                acks.append(item.ack_id)
                continue
            ok = deliver(handler, message, what="dead-letter handler")
            handled += ok
            (acks if ok else nacks).append(item.ack_id)
        with gcp_errors(f"acknowledge on {subscription}"):
            self._settle(subscription, acks=acks, nacks=nacks)
        return handled
