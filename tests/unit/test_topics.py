from __future__ import annotations

import pytest

from models import topics
from paceline.ops.broker import RETENTION
from runtime.bus import stream_of


def test_tick_topic_per_equity() -> None:
    assert topics.ticks("AAPL") == "persistent://paceline/market/ticks.AAPL"
    assert topics.ticks("BRK.B") == "persistent://paceline/market/ticks.BRK.B"
    # The live twin: the same namespace (the same grants), another topic kind.
    assert topics.live_ticks("BRK.B") == "non-persistent://paceline/market/ticks.BRK.B"
    # Its metrics are its own: a non-persistent hop's latency would pull the record's down.
    assert (stream_of(topics.ticks("AAPL")), stream_of(topics.live_ticks("AAPL"))) == ("ticks", "ticks-np")


def test_twins_of_persistent_topics_only() -> None:
    assert topics.LIVE_JOB_REQUESTS == "non-persistent://paceline/control/job-requests"
    assert stream_of(topics.LIVE_JOB_REQUESTS) == "job-requests-np"
    with pytest.raises(topics.TopicNameError):
        topics.twin(topics.LIVE_JOB_REQUESTS)  # a twin's twin is not a topic anyone publishes


def test_job_topics_are_per_equity() -> None:
    assert topics.job_actions("AAPL") == "persistent://paceline/jobs/actions.AAPL"
    assert topics.job_executions("BRK.B") == "persistent://paceline/jobs/executions.BRK.B"
    with pytest.raises(topics.TopicNameError):
        topics.job_actions("job-42")  # a job id is not an equity


@pytest.mark.parametrize("bad", ["aapl", "", "AA/PL", "A B", "../x"])
def test_invalid_names_refused(bad: str) -> None:
    with pytest.raises(topics.TopicNameError):
        topics.ticks(bad)


def test_every_namespace_in_the_broker_setup() -> None:
    assert set(RETENTION) == set(topics.NAMESPACES)
    for name in (topics.REPORTS, topics.SAGA_LOG, topics.ASSIGNMENTS, topics.HEARTBEATS):
        assert name.split("/")[3] in topics.NAMESPACES


def test_dead_letter_convention() -> None:
    assert topics.dead_letter("persistent://t/n/x", "sub") == "persistent://t/n/x-sub-DLQ"
    # Our own topics quarantine into the dlq namespace, where every role may write.
    got = topics.dead_letter(topics.job_executions("AAPL"), "w1")
    assert got == "persistent://paceline/dlq/jobs.executions.AAPL-w1-DLQ"
