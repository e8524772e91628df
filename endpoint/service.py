"""The endpoint's venue router: the saga's venue commands, the workers' child orders and the ticks in;
acks and fills out.

Every handler runs on the Pulsar client's single listener thread, so the venue sees one message at a
time and needs no lock. Fills and acks go to the job's executions topic (its worker); fills and command
acks go to the shared executions topic (the saga) from one producer, so the saga sees every fill of a job
before the ack of a FENCE or CLOSE that ends it.
"""

from __future__ import annotations

from prometheus_client import Counter

from endpoint.venue import Venue
from models import (
    ChildOrderAck,
    ChildOrderAction,
    Fill,
    Message,
    Tick,
    VenueCommand,
    VenueCommandAck,
    VenueOp,
    topics,
)
from runtime.bus import Bus, Consumer, Delivery, Producer
from runtime.logs import get_logger

log = get_logger("paceline.endpoint")

COMMANDS = Counter("paceline_venue_commands_total", "Saga commands handled by the venue", ["op"])
CHILD_ORDERS = Counter("paceline_venue_child_actions_total", "Child-order actions received", ["action"])
REFUSED = Counter("paceline_venue_refused_total", "Child-order actions refused, by reason", ["reason"])
FILLS = Counter("paceline_venue_fills_total", "Fills executed", ["liquidity"])
SHARES = Counter("paceline_venue_filled_shares_total", "Shares executed")


class EndpointService:
    def __init__(self, bus: Bus, name: str = "endpoint", venue: Venue | None = None) -> None:
        self.bus = bus
        self.name = name
        self.venue = venue or Venue()
        self._ticks: dict[str, Consumer[Tick]] = {}
        self._actions: dict[str, Consumer[ChildOrderAction]] = {}
        self._job_out: dict[str, Producer] = {}
        self._commands: Consumer[VenueCommand] | None = None
        self._executions: Producer | None = None

    def start(self) -> None:
        self._executions = self.bus.producer(topics.EXECUTIONS, name=f"{self.name}-venue")
        self._commands = self.bus.subscribe(
            topics.VENUE_COMMANDS, f"{self.name}-venue", VenueCommand, handler=self._on_command
        )
        log.info("venue started", name=self.name)

    def stop(self) -> None:
        for t in self._ticks.values():
            t.close()
        for a in self._actions.values():
            a.close()
        if self._commands is not None:
            self._commands.close()
        for p in self._job_out.values():
            p.close()
        if self._executions is not None:
            self._executions.flush()
            self._executions.close()

    # --- handlers (listener thread) -----------------------------------------------------------------------
    def _on_command(self, d: Delivery[VenueCommand]) -> None:
        cmd = d.message
        COMMANDS.labels(cmd.op.value).inc()
        if cmd.op is VenueOp.OPEN and cmd.job_id not in self._actions:
            self._open(cmd)
        self._publish(self.venue.command(cmd))
        log.info("venue command", op=cmd.op.value, job_id=cmd.job_id, epoch=cmd.epoch)

    def _open(self, cmd: VenueCommand) -> None:
        if cmd.symbol not in self._ticks:
            self._ticks[cmd.symbol] = self.bus.subscribe(
                topics.ticks(cmd.symbol),
                f"{self.name}-venue",
                Tick,
                from_earliest=False,
                handler=self._on_tick,
            )
        self._job_out[cmd.job_id] = self.bus.producer(
            topics.job_executions(cmd.job_id), name=f"{self.name}-venue.{cmd.job_id}"
        )
        # From the earliest: orders a worker sent before this subscription existed are not lost.
        self._actions[cmd.job_id] = self.bus.subscribe(
            topics.job_actions(cmd.job_id), f"{self.name}-venue", ChildOrderAction, handler=self._on_action
        )

    def _on_action(self, d: Delivery[ChildOrderAction]) -> None:
        CHILD_ORDERS.labels(d.message.action.value).inc()
        self._publish(self.venue.action(d.message))

    def _on_tick(self, d: Delivery[Tick]) -> None:
        out = self.venue.on_tick(d.message)
        if out:
            self._publish(out)

    def _publish(self, out: list[Message]) -> None:
        assert self._executions is not None
        for m in out:
            if isinstance(m, Fill):
                FILLS.labels(m.liquidity.value).inc()
                SHARES.inc(m.qty)
                self._to_job(m.job_id, m)
                self._executions.send_async(m, key=m.parent_id)
            elif isinstance(m, ChildOrderAck):
                if m.status.value == "REJECTED" and m.reason:
                    REFUSED.labels(m.reason.split(":", 1)[0]).inc()
                    log.warning("child order refused", child_id=m.child_id, job_id=m.job_id, epoch=m.epoch,
                                reason=m.reason)  # fmt: skip
                self._to_job(m.job_id, m)
            elif isinstance(m, VenueCommandAck):
                self._executions.send_async(m, key=m.parent_id)

    def _to_job(self, job_id: str, m: Message) -> None:
        p = self._job_out.get(job_id)
        if p is None:  # a refused action for a job this venue never opened
            p = self._job_out[job_id] = self.bus.producer(
                topics.job_executions(job_id), name=f"{self.name}-venue.{job_id}"
            )
        p.send_async(m, key=job_id)
