"""The Pub/Sub queue: one message per chunk of a batch's requests; workers pull; redelivery is the retry.

A message's body is JSON ``{"batch_id": …, "players": […]}``. Workers use **synchronous pull** (a pull is
bounded by ``max_messages``, which is the flow control a chunk worker wants: it never holds more work than it
is handling). A handler returning True acknowledges the message; False or an exception nacks it (ack deadline
0), so it comes back at once; after ``max_delivery_attempts`` the subscription's dead-letter policy moves it to
the dead-letter topic, whose own subscription :meth:`PubSubQueue.dead_letters` reads so the coordinator can end
those requests ``failed`` with the reason. Push is not used: on the emulator it allows 2 requests in flight
and, with a retry policy, stops delivering (``../shared/emulators.md``).

Messages only wake work up; the ledger is the truth (a lost message is recovered by the sweeper's lease expiry
and a re-publish, a duplicate finds its requests no longer ``pending``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from google.api_core import exceptions as google_errors
from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

from nbaprops.errors import InputError
from nbaprops.storage.gcp.errors import gcp_errors
from nbaprops.storage.queue import deliver
from nbaprops.storage.seams import WorkMessage

log = logging.getLogger(__name__)

PULL_TIMEOUT_S = 2.0  # one pull waits at most this long for messages before ``stop()`` is looked at again
IDLE_SLEEP_S = 0.05  # pause after an empty pull, so an idle worker does not spin
# Pub/Sub names the delivery count of a dead-lettered message in this attribute.
DEAD_LETTER_COUNT_ATTRIBUTE = "CloudPubSubDeadLetterSourceDeliveryCount"


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
) -> list[str]:
    """Create the topic, the dead-letter topic, their subscriptions and the dead-letter policy; idempotent.

    Run once per deployment by ``nbaprops gcp setup`` (an account with ``roles/pubsub.editor``), never when a
    process starts: real Pub/Sub answers a creation by an account with only the publisher or subscriber role
    with permission denied, not already-exists. An existing topic or subscription is left as it is.
    ``max_delivery_attempts`` must be 5–100 (Pub/Sub's range). On real Pub/Sub the service account
    ``service-PROJECT_NUMBER@gcp-sa-pubsub`` also needs the publisher role on the dead-letter topic and the
    subscriber role on the workers' subscription (docs/cloud.md).

    Returns:
        the paths of the topics and subscriptions this call created (those that existed are not listed).
    """
    created: list[str] = []
    with gcp_errors(f"create Pub/Sub topics and subscriptions in {names.project}"):
        for topic in (names.topic_path, names.dead_letter_topic_path):
            with contextlib.suppress(google_errors.AlreadyExists):
                publisher.create_topic(request={"name": topic})
                created.append(topic)
        # The dead-letter topic needs a subscription of its own, or dead letters are dropped on arrival.
        subscriptions: list[dict[str, Any]] = [
            {"name": names.dead_letter_subscription_path, "topic": names.dead_letter_topic_path},
            {
                "name": names.subscription_path,
                "topic": names.topic_path,
                "ack_deadline_seconds": ack_deadline_seconds,
                # The keyword form of create_subscription does not take the policy (emulators.md).
                "dead_letter_policy": {
                    "dead_letter_topic": names.dead_letter_topic_path,
                    "max_delivery_attempts": max_delivery_attempts,
                },
            },
        ]
        for request in subscriptions:
            with contextlib.suppress(google_errors.AlreadyExists):
                subscriber.create_subscription(request=request)
                created.append(request["name"])
    return created


def _encode(message: WorkMessage) -> bytes:
    return json.dumps({"batch_id": message.batch_id, "players": list(message.players)}).encode()


def _decode(data: bytes, delivery_attempt: int) -> WorkMessage:
    try:
        body = json.loads(data)
        return WorkMessage(str(body["batch_id"]), tuple(str(p) for p in body["players"]), delivery_attempt)
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"not a work message ({exc}): {data[:200]!r}") from exc


class PubSubQueue:
    """The :class:`~nbaprops.storage.seams.Queue` seam on a Pub/Sub topic and pull subscription.

    Args:
        names: the topic and subscriptions (``nbaprops gcp setup`` creates them: :func:`ensure_pubsub`).
        publisher: a ``PublisherClient`` (honours ``PUBSUB_EMULATOR_HOST``); made when omitted.
        subscriber: a ``SubscriberClient``; made when omitted.
        pull_timeout_s: how long one pull waits for messages before ``stop()`` is looked at again.
    """

    def __init__(
        self,
        names: PubSubNames,
        *,
        publisher: PublisherClient | None = None,
        subscriber: SubscriberClient | None = None,
        pull_timeout_s: float = PULL_TIMEOUT_S,
    ) -> None:
        self.names = names
        self.pull_timeout_s = pull_timeout_s
        self.publisher = publisher or PublisherClient()
        self.subscriber = subscriber or SubscriberClient()

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

    def _pull(self, subscription: str, max_messages: int) -> list[Any]:
        try:
            response = self.subscriber.pull(
                request={"subscription": subscription, "max_messages": max_messages},
                timeout=self.pull_timeout_s,
            )
        except google_errors.DeadlineExceeded:
            return []  # nothing arrived within the pull's wait
        return list(response.received_messages)

    def _settle(self, subscription: str, *, acks: list[str], nacks: list[str]) -> None:
        if acks:
            self.subscriber.acknowledge(request={"subscription": subscription, "ack_ids": acks})
        if nacks:
            self.subscriber.modify_ack_deadline(
                request={"subscription": subscription, "ack_ids": nacks, "ack_deadline_seconds": 0}
            )

    def consume(
        self,
        handler: Callable[[WorkMessage], bool],
        *,
        stop: Callable[[], bool],
        max_messages: int = 1,
    ) -> None:
        """Pull up to ``max_messages`` at a time and hand each to ``handler`` until ``stop()``.

        ``WorkMessage.delivery_attempt`` is Pub/Sub's count (set because the subscription has a dead-letter
        policy). An unreadable body is acknowledged and logged: redelivering it could never succeed.
        """
        subscription = self.names.subscription_path
        while not stop():
            with gcp_errors(f"pull from {subscription}"):
                received = self._pull(subscription, max_messages)
            if not received:
                time.sleep(IDLE_SLEEP_S)  # the emulator (and a real pull) may answer an empty pull at once
                continue
            acks: list[str] = []
            nacks: list[str] = []
            for item in received:
                try:
                    message = _decode(item.message.data, int(item.delivery_attempt or 1))
                except InputError as exc:
                    log.error("dropping message %s: %s", item.message.message_id, exc)
                    acks.append(item.ack_id)
                    continue
                (acks if deliver(handler, message) else nacks).append(item.ack_id)
            with gcp_errors(f"acknowledge on {subscription}"):
                self._settle(subscription, acks=acks, nacks=nacks)

    def dead_letters(self, handler: Callable[[WorkMessage], bool], *, max_messages: int = 100) -> int:
        """Pull once from the dead-letter subscription and hand each message to ``handler``; those it returns
        True for are acknowledged (gone), the others come back on a later call. Returns how many were handled.

        ``delivery_attempt`` of a dead letter is the number of deliveries it failed, where Pub/Sub says.
        """
        subscription = self.names.dead_letter_subscription_path
        with gcp_errors(f"pull from {subscription}"):
            received = self._pull(subscription, max_messages)
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
