"""A bench's services' log outlives its temporary folder when the bench fails, and only then."""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from pathlib import Path

import pytest

from paceline.ops.stack import keep_log_on_failure


def _bench(fail: bool, name: str) -> Path:
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        keep_log_on_failure(stack, tmp / "services.log", name)
        log = stack.enter_context((tmp / "services.log").open("w"))
        log.write("health-checker: started\n")
        if fail:
            raise AssertionError("no first report within 60 s")
    return tmp


def test_a_failed_bench_keeps_its_services_log(capsys: pytest.CaptureFixture[str]) -> None:
    name = f"paceline-test-{uuid.uuid4().hex[:8]}"
    kept = Path(tempfile.gettempdir()) / f"{name}.log"
    with pytest.raises(AssertionError, match="first report"):
        _bench(True, name)
    try:
        assert kept.read_text() == "health-checker: started\n"  # written in full: the file was closed first
        assert str(kept) in capsys.readouterr().err
    finally:
        kept.unlink(missing_ok=True)


def test_a_passing_bench_leaves_nothing_behind() -> None:
    name = f"paceline-test-{uuid.uuid4().hex[:8]}"
    tmp = _bench(False, name)
    assert not tmp.exists() and not (Path(tempfile.gettempdir()) / f"{name}.log").exists()
