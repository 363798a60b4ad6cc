"""The distributed bus: RabbitMQ through pika, with the guarantees DESIGN.md rests on.

Threads of a :class:`RabbitMQBus`::

    pika I/O thread     one SelectConnection + channel; deliveries, publishes, confirms, acks,
                        heartbeats. Nothing slow runs here.
    worker thread(s)    one per subscription (more with ``concurrency``): decode, run the
                        handler inside the middleware (runtime/bus/middleware.py: log context,
                        idempotency, error policy, alert, metrics), encode the outputs, hand
                        them to the I/O thread.
    caller threads      ``publish``/``publish_many`` block until the broker confirmed.

A delivery is acknowledged only when every message its handler returned has been confirmed
by the broker (publisher confirms), so a crash anywhere before that redelivers the input and
the handler runs again; consumers recognise the repeated outputs by their ``message_id``.

Errors, from common/errors.py, never by their text (:class:`~runtime.bus.middleware.ErrorPolicy`):

- :class:`~common.errors.PermanentError` (and a body that does not decode): rejected without
  requeue, so the queue dead-letters it to ``<queue>.dead`` at once.
- :class:`~common.errors.RetryableError`: requeued after a backoff; once the quorum queue's
  ``x-delivery-limit`` is used up, RabbitMQ dead-letters it.
- any other exception is a bug for this input: requeued like a retryable one, so a poison
  message ends in ``.dead`` after the limit instead of blocking the queue.

A run must not wait for a message that died: the dead-letter exchange also copies what the
indexer and the mergers give up on to ``<prefix>.failures``, and the process that calls
:meth:`RabbitMQBus.report_dead_letters` (the publisher) publishes the failure event of each
(planet.failed, catalogue.failed; ``common.messages.failure_of``). The copy is made by the
broker, so it covers every way a message dies: a permanent error, the delivery limit, and a
consumer that crashes on it before its error policy could run.

Replays (messages with an ``x-oec-replay`` header, and everything they cause) are published
to the work exchange, not the events exchange: they reach the work queues, never the stream.

When the connection is lost the bus reconnects with exponential backoff, declares the
topology again and resumes consuming; work in flight is left for redelivery.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from queue import Empty, SimpleQueue
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel
from pika.adapters.select_connection import IOLoop
from pika.channel import Channel
from pika.spec import Basic, BasicProperties
from pydantic import SecretStr

from common.errors import BrokerUnavailableError
from common.messages import Message, failure_of
from common.topology import FAILURES, WORK_QUEUES, Header, Topology, WorkQueue
from runtime.bus import Flushing, Handler, middleware
from runtime.bus.middleware import (
    DeadLetterAlert,
    DeadLetterHook,
    Delivery,
    ErrorPolicy,
    Metrics,
    Middleware,
    Outcome,
    Settle,
    Skip,
    UndecodableError,
)
from runtime.bus.wire import Envelope, Headers, decode_delivery, encode, message_routing_key
from runtime.config import BusSettings
from runtime.telemetry import BusMetrics, StatusSnapshot

log = logging.getLogger(__name__)


def topology_for(bus: BusSettings) -> Topology:
    return Topology(
        prefix=bus.prefix,
        delivery_limit=bus.delivery_limit,
        stream_max_age=bus.stream_max_age,
        stream_max_bytes=bus.stream_max_bytes,
    )


def connection_parameters(amqp_url: SecretStr, bus: BusSettings, name: str) -> pika.URLParameters:
    params = pika.URLParameters(amqp_url.get_secret_value())
    params.heartbeat = bus.heartbeat
    params.connection_attempts = 1  # the bus does its own backoff
    params.socket_timeout = 10
    # Shown in the management UI's connection list.
    params.client_properties = {"connection_name": f"oec-sync {name}"}
    return params


def declare(channel: BlockingChannel, topology: Topology) -> None:
    """Declare (idempotently) every exchange, queue and binding of ``topology``."""
    for name, kind in topology.exchanges():
        channel.exchange_declare(name, kind.value, durable=True)
    for destination, source, key in topology.exchange_bindings():
        channel.exchange_bind(destination, source, routing_key=key)
    for spec in topology.queues():
        channel.queue_declare(spec.name, durable=True, arguments=dict(spec.arguments))
        for key in spec.binding_keys:
            channel.queue_bind(spec.name, spec.exchange, routing_key=key)


def delete(channel: BlockingChannel, topology: Topology) -> None:
    """Remove everything ``topology`` declares (tests; decommissioning a prefix)."""
    for spec in topology.queues():
        channel.queue_delete(spec.name)
    for name, _ in topology.exchanges():
        channel.exchange_delete(name)


_HandlerWithHeaders = Callable[[Message, Headers], Iterable[Message]]


class _Batch:
    """Confirms awaited for a group of publishes; ``done(ok)`` fires exactly once."""

    __slots__ = ("done", "fired", "remaining")

    def __init__(self, size: int, done: Callable[[bool], None]) -> None:
        self.remaining = size
        self.done = done
        self.fired = False

    def settle(self, ok: bool) -> None:
        if self.fired:
            return
        if ok:
            self.remaining -= 1
            if self.remaining > 0:
                return
        self.fired = True
        self.done(ok)


@dataclass
class _Delivery:
    generation: int
    tag: int
    routing_key: str
    properties: BasicProperties
    body: bytes


@dataclass
class _Subscription:
    work: WorkQueue
    queue: str
    handler: _HandlerWithHeaders
    concurrency: int
    flush: Callable[[], None] | None = None  # a Flushing handler's
    inbox: SimpleQueue[_Delivery | None] = field(default_factory=SimpleQueue)
    threads: list[threading.Thread] = field(default_factory=list)


class RabbitMQBus:
    """A bus over RabbitMQ; see the module docstring for the threads and policy.

    ``config`` and ``amqp_url``: the bus's own settings. ``middleware`` runs around every
    handler; by default :func:`runtime.bus.middleware.standard` with the broker's error
    policy, recording into ``snapshot`` and ``metrics``, and alerting ``on_dead_letter``.
    """

    def __init__(
        self,
        config: BusSettings,
        amqp_url: SecretStr,
        service: str,
        *,
        snapshot: StatusSnapshot | None = None,
        metrics: BusMetrics | None = None,
        on_dead_letter: DeadLetterHook | None = None,
        middleware: Sequence[Middleware] | None = None,
    ) -> None:
        self.config = config
        self.service = service
        self.topology = topology_for(config)
        self.snapshot = snapshot or StatusSnapshot(service)
        self.metrics = metrics or BusMetrics()
        if middleware is None:
            alert = DeadLetterAlert(self.topology, on_dead_letter) if on_dead_letter else None
            middleware = standard_for_broker(config, self.metrics, self.snapshot, alert)
        self.middleware = list(middleware)
        self._params = connection_parameters(amqp_url, config, service)
        self._subs: list[_Subscription] = []
        self._ioloop: IOLoop | None = None
        self._io_thread: threading.Thread | None = None
        self._connection: pika.SelectConnection | None = None
        self._channel: Channel | None = None
        self._poll_channel: Channel | None = None
        self._generation = 0  # one per channel; deliveries of an older channel are stale
        self._seq = 0  # publish sequence number of the current channel (confirm tags)
        self._unconfirmed: OrderedDict[int, tuple[_Batch, str]] = OrderedDict()
        self._attempt = 0
        self._ever_ready = False
        self._consumers_ok = 0
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._io_lock = threading.Lock()
        self._io_calls: list[Callable[[], None]] = []
        self._io_wake_pending = False
        self.snapshot.needs_consumer = False

    # --- public API (any thread) ---

    def subscribe(self, queue: WorkQueue, handler: Handler, concurrency: int = 1) -> None:
        """Consume ``queue`` with ``handler``; call before :meth:`start`. A
        :class:`~runtime.bus.Flushing` handler is flushed before its deliveries are
        acknowledged."""
        flush = handler.flush if isinstance(handler, Flushing) else None
        self._subscribe(queue, lambda message, _headers: handler(message), concurrency, flush)

    def report_dead_letters(self) -> None:
        """Consume ``<prefix>.failures`` and publish the failure event of every message the
        indexer or a merger gave up on, so its run completes with the failure instead of
        waiting for its run_timeout. Call before :meth:`start`; one process is enough."""
        self._subscribe(FAILURES, self._failure_events, 1)

    def _subscribe(
        self,
        queue: WorkQueue,
        handler: _HandlerWithHeaders,
        concurrency: int,
        flush: Callable[[], None] | None = None,
    ) -> None:
        if self._io_thread is not None:
            raise RuntimeError("subscribe before start()")
        sub = _Subscription(queue, self.topology.queue(queue), handler, concurrency, flush)
        self._subs.append(sub)
        self.snapshot.needs_consumer = True

    def _failure_events(self, message: Message, headers: Headers) -> list[Message]:
        failure = failure_of(message, self.dead_letter_error(headers))
        if failure is None:
            log.warning("a dead letter no run waits for; it stays in its .dead queue")
            return []
        return [failure]

    def dead_letter_error(self, headers: Headers) -> str:
        """What the broker's dead-lettering headers say: which queue gave up on it, and why."""
        queue = str(headers.get(Header.FIRST_DEATH_QUEUE.value) or "?")
        reason = str(headers.get(Header.FIRST_DEATH_REASON.value) or "?")
        why = {
            "rejected": "refused it (a permanent error)",
            "delivery_limit": "failed on it at every delivery (x-delivery-limit reached)",
        }.get(reason, f"dead-lettered it ({reason})")
        try:
            dead = self.topology.dead_queue(self.topology.work_queue(queue))
        except KeyError:
            dead = f"{queue}.dead"
        return f"{queue} {why}; the message waits in {dead}, the error is in that service's log"

    def start(self, wait: float | None = None) -> RabbitMQBus:
        """Connect, declare the topology and start consuming.

        Waits up to ``wait`` seconds (default: the publish timeout) for the first connection,
        and raises BrokerUnavailableError if there was none; the bus keeps trying after that.
        """
        self._ioloop = IOLoop()
        self._ioloop.add_callback_threadsafe(self._connect)
        self._io_thread = threading.Thread(
            target=self._ioloop.start, name=f"pika-io-{self.service}", daemon=True
        )
        self._io_thread.start()
        for sub in self._subs:
            for i in range(sub.concurrency):
                thread = threading.Thread(
                    target=self._work, args=(sub,), name=f"worker-{sub.queue}-{i}", daemon=True
                )
                sub.threads.append(thread)
                thread.start()
        timeout = self.config.publish_timeout if wait is None else wait
        if not self._ready.wait(timeout):
            raise BrokerUnavailableError(f"no connection to RabbitMQ within {timeout:.0f} s")
        return self

    def run_forever(
        self,
        stop: threading.Event | None = None,
        before_stop: Callable[[], None] | None = None,
    ) -> None:
        """Serve until SIGTERM/SIGINT (or ``stop``), then stop cleanly (``before_stop`` first,
        while the bus can still publish). A broker that is down at start-up is waited for
        (with backoff) rather than treated as fatal."""
        stop = stop or threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        try:
            self.start(wait=5.0)
        except BrokerUnavailableError:
            log.warning("RabbitMQ not reachable yet; consuming once it is")
        stop.wait()
        log.info("stopping")
        if before_stop is not None:
            before_stop()
        self.stop()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def publish(self, message: Message) -> None:
        self.publish_many([message])

    def publish_many(self, messages: Iterable[Message], replay: str | None = None) -> None:
        """Publish and wait until the broker confirmed every message (retrying through
        reconnects for up to the publish timeout); raises BrokerUnavailableError after that."""
        envelopes = [
            encode(m, self.service, self.config.compress_min_bytes, replay) for m in messages
        ]
        self.publish_envelopes(envelopes)

    def publish_envelopes(self, envelopes: list[Envelope], timeout: float | None = None) -> None:
        if not envelopes:
            return
        deadline = time.monotonic() + (timeout or self.config.publish_timeout)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._ready.wait(remaining):
                raise BrokerUnavailableError("RabbitMQ did not confirm the messages in time")
            done = threading.Event()
            result: list[bool] = []

            def finished(
                ok: bool, result: list[bool] = result, done: threading.Event = done
            ) -> None:
                result.append(ok)
                done.set()

            self._call_io(
                partial(self._io_publish, envelopes, _Batch(len(envelopes), finished), None)
            )
            if done.wait(max(0.0, deadline - time.monotonic())) and result[0]:
                return
            log.warning("publish not confirmed; trying again", extra={"count": len(envelopes)})
            time.sleep(0.2)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop consuming, let handlers in progress finish, close the connection."""
        if self._stopping.is_set() or self._ioloop is None:
            return
        self._stopping.set()
        self._call_io(self._io_cancel_consumers)
        for sub in self._subs:
            for _ in sub.threads:
                sub.inbox.put(None)
        deadline = time.monotonic() + timeout
        for sub in self._subs:
            for thread in sub.threads:
                thread.join(max(0.0, deadline - time.monotonic()))
        while self._unconfirmed and time.monotonic() < deadline:
            time.sleep(0.05)
        self._call_io(self._io_close)
        if self._io_thread is not None:
            self._io_thread.join(max(1.0, deadline - time.monotonic()))
        self._ready.clear()

    # --- I/O thread: connection life cycle ---

    def _call_io(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the I/O thread. Callbacks queue up and one wake-up of the loop
        runs all that are waiting: at thousands of messages a second, a wake-up (a pipe
        write and a poll) per message costs more than the work."""
        if self._ioloop is None:
            return
        with self._io_lock:
            self._io_calls.append(callback)
            if self._io_wake_pending:
                return
            self._io_wake_pending = True
        self._ioloop.add_callback_threadsafe(self._run_io_calls)

    def _run_io_calls(self) -> None:
        with self._io_lock:
            calls, self._io_calls = self._io_calls, []
            self._io_wake_pending = False
        for call in calls:
            try:
                call()
            except Exception:
                log.exception("failure on the I/O thread")

    def _connect(self) -> None:
        if self._stopping.is_set():
            self._ioloop_stop()
            return
        try:
            # A short blocking connection declares the topology on every (re)connect, so a
            # queue deleted by hand or a broker reset from scratch is repaired on the spot.
            with pika.BlockingConnection(self._params) as connection:
                declare(connection.channel(), self.topology)
        except (pika.exceptions.AMQPError, OSError) as exc:
            self._retry_later(exc)
            return
        self._connection = pika.SelectConnection(
            self._params,
            on_open_callback=self._on_open,
            on_open_error_callback=lambda _c, exc: self._retry_later(exc),
            on_close_callback=self._on_connection_closed,
            custom_ioloop=self._ioloop,
        )

    def _retry_later(self, reason: object) -> None:
        self._connection = None
        self._mark_lost(reason)
        if self._stopping.is_set():
            self._ioloop_stop()
            return
        cap = self.config.reconnect_max_delay
        delay = min(cap, 0.25 * 2**self._attempt) * random.uniform(0.8, 1.2)
        self._attempt += 1
        log.warning(
            "RabbitMQ unavailable; reconnecting",
            extra={"error": str(reason) or type(reason).__name__, "retry_in_s": round(delay, 2)},
        )
        assert self._ioloop is not None
        self._ioloop.call_later(delay, self._connect)

    def _on_open(self, connection: pika.SelectConnection) -> None:
        connection.channel(on_open_callback=self._on_channel_open)

    def _on_channel_open(self, channel: Channel) -> None:
        self._channel = channel
        self._generation += 1
        self._seq = 0
        self._consumers_ok = 0
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_cancel_callback(self._on_server_cancel)
        channel.confirm_delivery(
            ack_nack_callback=self._on_confirm, callback=lambda _f: self._after_confirm_mode()
        )

    def _after_confirm_mode(self) -> None:
        assert self._channel is not None
        if not self._subs:
            self._became_ready()
            return
        # Bounded prefetch: https://www.rabbitmq.com/docs/consumer-prefetch
        self._channel.basic_qos(
            prefetch_count=self.config.prefetch, callback=lambda _f: self._consume()
        )

    def _consume(self) -> None:
        channel = self._channel
        assert channel is not None
        generation = self._generation
        for sub in self._subs:

            def on_message(
                _ch: Channel,
                method: Basic.Deliver,
                properties: BasicProperties,
                body: bytes,
                sub: _Subscription = sub,
            ) -> None:
                sub.inbox.put(
                    _Delivery(generation, method.delivery_tag, method.routing_key, properties, body)
                )

            channel.basic_consume(sub.queue, on_message, callback=self._on_consume_ok)

    def _on_consume_ok(self, _frame: object) -> None:
        self._consumers_ok += 1
        if self._consumers_ok == len(self._subs):
            self._became_ready()

    def _became_ready(self) -> None:
        if self._ever_ready:
            self.metrics.reconnects.inc()
            self.snapshot.count_reconnect()
        self._ever_ready = True
        self._attempt = 0
        self.snapshot.set_connected(True)
        self.snapshot.set_consuming(bool(self._subs))
        self.metrics.connected.set(1)
        self._ready.set()
        log.info("connected to RabbitMQ", extra={"consuming": [s.queue for s in self._subs]})
        self._poll_depths(self._generation)

    def _on_server_cancel(self, _frame: object) -> None:
        # The broker cancels a consumer when its queue is deleted; start over, redeclaring.
        log.warning("consumer cancelled by the broker; reconnecting")
        if self._connection is not None and self._connection.is_open:
            self._connection.close()

    def _on_channel_closed(self, channel: Channel, reason: Exception) -> None:
        if channel is self._poll_channel:
            self._poll_channel = None
            return
        if channel is not self._channel:
            return
        self._channel = None
        self._mark_lost(reason)
        if self._connection is not None and self._connection.is_open:
            self._connection.close()

    def _on_connection_closed(self, _connection: pika.SelectConnection, reason: Exception) -> None:
        self._channel = None
        self._poll_channel = None
        if self._stopping.is_set():
            self._mark_lost(reason)
            self._ioloop_stop()
            return
        self._retry_later(reason)

    def _mark_lost(self, reason: object) -> None:
        was_ready = self._ready.is_set()
        self._ready.clear()
        self._generation += 1  # whatever was delivered so far will be redelivered
        self.snapshot.set_connected(False, None if self._stopping.is_set() else str(reason))
        self.metrics.connected.set(0)
        pending = list(self._unconfirmed.values())
        self._unconfirmed.clear()
        for batch, _key in pending:
            batch.settle(False)
        if was_ready and not self._stopping.is_set():
            log.warning("lost the connection to RabbitMQ", extra={"error": str(reason)})

    def _ioloop_stop(self) -> None:
        if self._ioloop is not None:
            self._ioloop.stop()

    def _io_cancel_consumers(self) -> None:
        channel = self._channel
        if channel is not None and channel.is_open:
            for tag in list(channel.consumer_tags):
                channel.basic_cancel(tag)
        self.snapshot.set_consuming(False)

    def _io_close(self) -> None:
        if self._connection is not None and self._connection.is_open:
            self._connection.close()
        else:
            self._ioloop_stop()

    # --- I/O thread: publishing, confirms, acks ---

    def _io_publish(self, envelopes: list[Envelope], batch: _Batch, generation: int | None) -> None:
        channel = self._channel
        if channel is None or not channel.is_open:
            batch.settle(False)
            return
        if generation is not None and generation != self._generation:
            batch.settle(False)
            return
        if not envelopes:
            batch.settle(True)
            return
        for envelope in envelopes:
            channel.basic_publish(
                self._exchange_for(envelope),
                envelope.routing_key,
                envelope.body,
                envelope.properties,
            )
            self._seq += 1
            self._unconfirmed[self._seq] = (batch, envelope.routing_key)

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        ok = isinstance(method, Basic.Ack)
        tag: int = method.delivery_tag
        if method.multiple:
            while self._unconfirmed:
                seq = next(iter(self._unconfirmed))
                if seq > tag:
                    break
                batch, key = self._unconfirmed.pop(seq)
                self._confirmed(batch, key, ok)
        elif tag in self._unconfirmed:
            batch, key = self._unconfirmed.pop(tag)
            self._confirmed(batch, key, ok)

    def _exchange_for(self, envelope: Envelope) -> str:
        """The envelope's own exchange, else: replays to the work exchange (keeping them out
        of the replay log), new events to the events exchange."""
        if envelope.exchange is not None:
            return envelope.exchange
        replay = (envelope.properties.headers or {}).get(Header.REPLAY.value)
        return self.topology.work_exchange if replay else self.topology.exchange

    def _confirmed(self, batch: _Batch, routing_key: str, ok: bool) -> None:
        if ok:
            self.metrics.published.labels(routing_key).inc()
        batch.settle(ok)

    def _io_settle(self, delivery: _Delivery, settle: Settle) -> bool:
        """Ack, requeue or dead-letter a delivery; False when its channel is gone."""
        channel = self._channel
        if channel is None or not channel.is_open or delivery.generation != self._generation:
            return False
        if settle is Settle.ACK:
            channel.basic_ack(delivery.tag)
        elif settle is Settle.REQUEUE:
            channel.basic_nack(delivery.tag, requeue=True)
        else:
            # requeue=False makes the quorum queue dead-letter it to <queue>.dead.
            channel.basic_reject(delivery.tag, requeue=False)
        return True

    # --- queue depths for /status and /metrics ---

    def _poll_depths(self, generation: int) -> None:
        if generation != self._generation or self._stopping.is_set():
            return
        connection = self._connection
        if connection is None or not connection.is_open:
            return
        if self._poll_channel is None or not self._poll_channel.is_open:
            # A separate channel: a failed passive declare closes it, not the work channel.
            connection.channel(on_open_callback=self._on_poll_channel)
        else:
            self._send_depth_queries(self._poll_channel)
        assert self._ioloop is not None
        self._ioloop.call_later(
            self.config.depth_poll_interval, lambda: self._poll_depths(generation)
        )

    def _on_poll_channel(self, channel: Channel) -> None:
        self._poll_channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        self._send_depth_queries(channel)

    def _send_depth_queries(self, channel: Channel) -> None:
        for work in WORK_QUEUES:
            for name in (self.topology.queue(work), self.topology.dead_queue(work)):

                def got(frame: Any, name: str = name) -> None:
                    ok = frame.method
                    self.snapshot.set_queue_depth(name, ok.message_count, ok.consumer_count)
                    self.metrics.queue_messages.labels(name).set(ok.message_count)

                channel.queue_declare(name, passive=True, callback=got)

    # --- worker threads: the middleware around every handler ---

    def _work(self, sub: _Subscription) -> None:
        # A flushing handler's deliveries wait here, handled, until its flush: half the
        # prefetch at most, so the broker keeps delivering the other half meanwhile.
        unflushed: list[tuple[Delivery, Callable[[], None]]] = []
        batch = max(1, self.config.prefetch // 2)
        while True:
            try:
                delivery = sub.inbox.get(timeout=0 if unflushed else 1.0)
            except Empty:
                if unflushed:
                    self._flush(sub, unflushed)
                continue
            if delivery is None:
                if unflushed:  # acknowledged if the channel is still open, else redelivered
                    self._flush(sub, unflushed)
                return
            if self._stopping.is_set() or delivery.generation != self._generation:
                # Unacked on a closed (or closing) channel: the broker redelivers it.
                continue
            work = self._delivery_for(sub, delivery)
            try:
                settle = self._handle(sub, work)
            except Exception:  # the middleware itself must never kill the worker
                log.exception("unexpected failure around a handler")
                self._call_io(partial(self._after, work, Settle.REQUEUE, Outcome.RETRY))
                continue
            if settle is not None:
                if sub.flush is None:
                    self._call_io(settle)
                else:
                    unflushed.append((work, settle))
                    if len(unflushed) >= batch:
                        self._flush(sub, unflushed)

    def _flush(
        self, sub: _Subscription, unflushed: list[tuple[Delivery, Callable[[], None]]]
    ) -> None:
        """Flush the handler, then settle what it took; if the flush fails, requeue it all."""
        assert sub.flush is not None
        try:
            sub.flush()
        except Exception:
            log.exception("flushing the handler failed; its deliveries go back to the queue")
            for work, _ in unflushed:
                self._call_io(partial(self._after, work, Settle.REQUEUE, Outcome.RETRY))
        else:
            for _, settle in unflushed:
                self._call_io(settle)
        unflushed.clear()

    def _delivery_for(self, sub: _Subscription, delivery: _Delivery) -> Delivery:
        properties = delivery.properties
        headers = properties.headers or {}
        return Delivery(
            work=sub.work,
            queue=sub.queue,
            routing_key=message_routing_key(properties, delivery.routing_key),
            message_id=properties.message_id or "",
            run_id=str(headers.get(Header.RUN_ID.value, "")),
            replay=str(headers.get(Header.REPLAY.value) or ""),
            failures=int(headers.get(Header.DELIVERY_COUNT.value) or 0),
            headers=headers,
            transport=delivery,
        )

    def _handle(self, sub: _Subscription, work: Delivery) -> Callable[[], None] | None:
        """Run the handler on one delivery; what publishes its outputs and then settles it,
        for the caller to hand to the I/O thread (None: settled already, or it will be with
        its twin)."""
        delivery: _Delivery = work.transport
        with middleware.contexts(self.middleware, work):
            skip = middleware.skip_of(self.middleware, work)
            if skip is Skip.HANDLED:
                self._call_io(lambda: self._after(work, Settle.ACK, Outcome.DUPLICATE))
                return None
            if skip is Skip.WAITING:
                return None  # settled like its twin in progress, when that one is
            try:
                message = decode_delivery(delivery.properties, delivery.routing_key, delivery.body)
            except Exception as exc:
                self._failed(work, UndecodableError(f"undecodable: {exc}"))
                return None
            started = time.perf_counter()
            try:
                outputs = list(sub.handler(message, work.headers))
            except Exception as exc:
                self._failed(work, exc)
                return None
            finally:
                middleware.timed(self.middleware, work, time.perf_counter() - started)
            compress = self.config.compress_min_bytes
            envelopes = [encode(o, self.service, compress, work.replay or None) for o in outputs]

        def on_io() -> None:
            def confirmed(ok: bool) -> None:
                if ok:
                    self._after(work, Settle.ACK, Outcome.OK)
                else:
                    self._after(work, Settle.REQUEUE, Outcome.RETRY)

            self._io_publish(envelopes, _Batch(len(envelopes), confirmed), delivery.generation)

        return on_io

    def _failed(self, work: Delivery, exc: Exception) -> None:
        """What the error policy decides: dead-letter now, or requeue after a backoff (the
        delivery limit turns a poison message into a dead letter)."""
        verdict = middleware.verdict_of(self.middleware, work, exc)
        if verdict.outcome is Outcome.DEAD:
            middleware.dead(self.middleware, work, verdict.error)
        elif verdict.delay:
            self._stopping.wait(verdict.delay)
        self._call_io(lambda: self._after(work, verdict.settle, verdict.outcome))

    def _after(self, work: Delivery, settle: Settle, outcome: Outcome) -> None:
        """On the I/O thread: settle the delivery, tell the middleware its outcome, and settle
        the twins parked behind it the same way."""
        if not self._io_settle(work.transport, settle):
            outcome = Outcome.STALE  # the channel went away; the broker redelivers it
        for twin in middleware.settled(self.middleware, work, outcome):
            if outcome is Outcome.OK:
                self._after(twin, Settle.ACK, Outcome.DUPLICATE)
            else:
                self._after(twin, Settle.REQUEUE, Outcome.RETRY)


def standard_for_broker(
    config: BusSettings,
    metrics: BusMetrics,
    snapshot: StatusSnapshot,
    alert: DeadLetterAlert | None = None,
) -> list[Middleware]:
    """The standard middleware with the broker's error policy (retries, delivery limit)."""
    return middleware.standard(
        ErrorPolicy(config.delivery_limit), Metrics(metrics, snapshot), alert
    )
