"""A command that needs a broker says so within seconds when none answers (no traceback after 30 s)."""

from __future__ import annotations

import socket
import time

import pytest

from paceline import cli


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens there once the socket is closed


@pytest.mark.parametrize("argv", [["bench", "receiver"], ["risk", "show"], ["worker"]])
def test_no_broker_is_reported_at_once_with_how_to_start_one(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"pulsar://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("PACELINE_PULSAR_URL", url)
    t0 = time.monotonic()
    assert cli.main(argv) == 2
    assert time.monotonic() - t0 < 15
    err = capsys.readouterr().err
    assert f"no Pulsar broker answers at {url}" in err and "paceline broker start" in err


def test_a_listening_port_counts_as_a_broker_answering() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert cli.broker_answers(f"pulsar://127.0.0.1:{s.getsockname()[1]}", timeout_s=1)
    assert not cli.broker_answers(f"pulsar://127.0.0.1:{_closed_port()}", timeout_s=0.5)


def test_a_clusters_service_url_answers_when_any_of_its_brokers_does() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        live = s.getsockname()[1]
        assert cli.broker_answers(f"pulsar://127.0.0.1:{_closed_port()},127.0.0.1:{live}", timeout_s=1)
    assert not cli.broker_answers(
        f"pulsar://127.0.0.1:{_closed_port()},127.0.0.1:{_closed_port()}", timeout_s=0.3
    )


@pytest.mark.parametrize("rate", ["-1", "nan", "inf", "fast"])
def test_a_bench_order_rate_that_is_not_a_rate_is_refused_before_anything_starts(
    rate: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.build_parser().parse_args(["bench", "fix", "--order-rate", rate])
    assert exc.value.code == 2
    assert "--order-rate" in capsys.readouterr().err


def test_a_bench_order_rate_of_zero_means_back_to_back() -> None:
    assert cli.build_parser().parse_args(["bench", "fix"]).order_rate == 0.0
    assert cli.build_parser().parse_args(["bench", "fix", "--order-rate", "20"]).order_rate == 20.0
