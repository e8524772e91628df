"""Every topic name in one place.

Namespaces (all under the ``paceline`` tenant; ``paceline broker start`` creates them with retention):
  market   per-equity tick topics, kept for replay and seek-by-time
  jobs     child-order actions (workers -> endpoint) and executions (endpoint -> workers), per equity
  exec     every execution (endpoint -> saga), client execution reports, venue commands
  control  job requests, assignments, heartbeats
  saga     the persisted saga log and the kill switch (infinite retention: state is rebuilt from them)
  dlq      payloads a consumer could not decode, quarantined per topic and subscription

Per-symbol topics live in namespaces of their own so that a role's permission can be granted
on the namespace (``paceline.ops.broker.GRANTS``); every other topic is granted one by one.
"""

from __future__ import annotations

import re

TENANT = "paceline"
NAMESPACES: dict[str, str] = {
    "market": "ticks, one topic per equity",
    "jobs": "child-order actions and executions, one topic each per equity",
    "exec": "every execution, execution reports, venue commands",
    "control": "job requests, assignments, heartbeats",
    "saga": "the persisted saga log and the kill switch (kept forever)",
    "dlq": "undecodable payloads, per topic and subscription",
}

_SYMBOL = re.compile(r"^[A-Z][A-Z0-9.\-]{0,15}$")


class TopicNameError(ValueError):
    """A symbol or id that cannot be part of a topic name."""


def _ns(namespace: str) -> str:
    return f"persistent://{TENANT}/{namespace}"


def namespace(name: str) -> str:
    """``<tenant>/<namespace>``, as the admin API names it."""
    if name not in NAMESPACES:
        raise ValueError(f"unknown namespace {name!r}")
    return f"{TENANT}/{name}"


def _check(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not pattern.match(value):
        raise TopicNameError(f"invalid {what} for a topic name: {value!r}")
    return value


def ticks(symbol: str) -> str:
    """Per-equity tick topic, keyed by symbol so order is kept per symbol."""
    return f"{_ns('market')}/ticks.{_check(_SYMBOL, symbol, 'symbol')}"


def twin(topic: str) -> str:
    """A persistent topic's non-persistent twin: the same messages, dispatched without a storage write first
    (no replay, no de-duplication; one in flight when the broker restarts is gone). A twin carries copies
    only: the persistent topic stays the record that every reader can fall back on."""
    if not topic.startswith("persistent://"):
        raise TopicNameError(f"not a persistent topic: {topic!r}")
    return f"non-{topic}"


def live_ticks(symbol: str) -> str:
    """The tick topic's twin (``twin``), published beside ``ticks`` when a deployment sets
    ``PACELINE_LIVE_TICKS=non-persistent``; the workers then read it."""
    return twin(ticks(symbol))


def ticks_pattern() -> str:
    """Regex for subscribing to every equity's tick topic at once."""
    return f"{_ns('market')}/ticks\\..*"


def job_actions(symbol: str) -> str:
    """Child-order actions of every job on ``symbol`` (workers -> endpoint), keyed by job. One topic per
    equity, not per job: a topic's creation cost the broker 40-60 ms of CPU, and one per job each way put
    that on every new order (docs/PERFORMANCE.md, "one topic per equity, not per job")."""
    return f"{_ns('jobs')}/actions.{_check(_SYMBOL, symbol, 'symbol')}"


def job_executions(symbol: str) -> str:
    """Acks and fills of the child orders of every job on ``symbol`` (endpoint -> workers), keyed by job: a
    worker reads those of its jobs' symbols and passes over the other workers' (``Engine.on_execution``)."""
    return f"{_ns('jobs')}/executions.{_check(_SYMBOL, symbol, 'symbol')}"


EXECUTIONS = f"{_ns('exec')}/executions"  # every ack and fill, keyed by parent (endpoint -> saga)
REPORTS = f"{_ns('exec')}/reports"  # execution reports, keyed by client
TCA = f"{_ns('exec')}/tca"  # each finished parent's TCA as its client got it, by parent (endpoint -> tools)
VENUE_COMMANDS = f"{_ns('exec')}/venue-commands"  # saga -> venue: open, fence, close a job
PARENT_ORDERS = f"{_ns('control')}/parent-orders"
JOB_REQUESTS = f"{_ns('control')}/job-requests"
# New orders' requests again, dispatched without a storage write: the leading health-checker acts on whichever
# copy comes first (a parent starts once), the record covers a lost copy and a takeover.
LIVE_JOB_REQUESTS = twin(JOB_REQUESTS)
# A new order's New again, told as the leader decides it, before its commit: the endpoint that wrote the
# order's request tells its client once that request is stored (docs/PERFORMANCE.md, "the New told early").
LIVE_REPORTS = twin(REPORTS)
ASSIGNMENTS = f"{_ns('control')}/assignments"  # keyed by worker id
HEARTBEATS = f"{_ns('control')}/heartbeats"
LEADER = f"{_ns('control')}/leader"  # the leading health-checker's beats (standbys watch for silence)
RISK = f"{_ns('saga')}/risk"  # kill-switch states (the last per scope rules): kept forever, like the log
SAGA_LOG = f"{_ns('saga')}/log"  # keyed by saga (parent order) id
SAGA_SNAPSHOTS = f"{_ns('saga')}/snapshots"  # the orchestrator's state at a log position (takeover's start)


def dead_letter(topic: str, subscription: str) -> str:
    """Where a consumer quarantines payloads it cannot decode: Pulsar's ``<topic>-<sub>-DLQ`` convention, in
    the ``dlq`` namespace for our own topics (every role may write there, and nowhere it does not own)."""
    prefix = f"{_ns('')}"
    if topic.startswith(prefix) and topic.count("/") == 4:
        ns, local = topic.removeprefix(prefix).split("/")
        return f"{_ns('dlq')}/{ns}.{local}-{subscription}-DLQ"
    return f"{topic}-{subscription}-DLQ"
