from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from worker import policy_files as pf
from worker.nets import PolicyNet
from worker.policy import OBS_DIM, JobContext, PriceKind
from worker.policy_files import LoadedPolicy, PolicyError, PolicyRegistry


class NaNNet(nn.Module):
    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return obs[:, :6] * float("nan")


class WrongShape(nn.Module):
    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return obs[:, :3] * 2


def _save(folder: Path, module: nn.Module, version: int = 1, name: str = "rl-test") -> Path:
    torch.manual_seed(version)
    return pf.save(module, folder, name, version, training={"steps": 0}, evaluation={"is_bps": 1.0})


def test_a_saved_policy_validates_and_decides(tmp_path: Path) -> None:
    vdir = _save(tmp_path, PolicyNet())
    manifest, _ = pf.validate(vdir)
    assert manifest.name == "rl-test" and manifest.obs_schema_version == 1
    pol = PolicyRegistry(tmp_path).load("rl-test")
    act, fell_back = pol.decide_scaled(np.zeros(OBS_DIM, np.float32), None, JobContext(1000), 100)  # type: ignore[arg-type]
    assert not fell_back and act.price in set(PriceKind)


def test_tampered_artefact_is_rejected(tmp_path: Path) -> None:
    vdir = _save(tmp_path, PolicyNet())
    (vdir / pf.ARTEFACT).write_bytes((vdir / pf.ARTEFACT).read_bytes() + b"x")
    with pytest.raises(PolicyError, match="hash"):
        pf.validate(vdir)


def test_other_observation_schema_is_rejected(tmp_path: Path) -> None:
    vdir = _save(tmp_path, PolicyNet())
    m = json.loads((vdir / pf.MANIFEST).read_text())
    m["obs_schema_version"] = 2
    (vdir / pf.MANIFEST).write_text(json.dumps(m))
    with pytest.raises(PolicyError, match="schema v2"):
        pf.validate(vdir)
    m["obs_schema_version"] = 1
    m["observation"] = m["observation"][::-1]
    (vdir / pf.MANIFEST).write_text(json.dumps(m))
    with pytest.raises(PolicyError, match="fields differ"):
        pf.validate(vdir)


@pytest.mark.parametrize(("module", "reason"), [(NaNNet(), "NaN"), (WrongShape(), "expected")])
def test_bad_outputs_are_rejected(tmp_path: Path, module: nn.Module, reason: str) -> None:
    with pytest.raises(PolicyError, match=reason):
        pf.validate(_save(tmp_path, module))


def test_missing_or_garbage_manifest(tmp_path: Path) -> None:
    vdir = _save(tmp_path, PolicyNet())
    (vdir / pf.MANIFEST).write_text("{")
    with pytest.raises(PolicyError, match="bad manifest"):
        pf.validate(vdir)
    (vdir / pf.MANIFEST).unlink()
    with pytest.raises(PolicyError, match="no manifest"):
        pf.validate(vdir)


def test_new_version_is_picked_up_by_the_next_load(tmp_path: Path) -> None:
    reg = PolicyRegistry(tmp_path)
    _save(tmp_path, PolicyNet(), version=1)
    first = reg.load("rl-test")
    assert first.manifest.version == 1 and reg.load("rl-test") is first  # cached
    _save(tmp_path, PolicyNet(), version=2)
    second = reg.load("rl-test")
    assert second.manifest.version == 2
    assert reg.load("rl-test", version=1) is first  # a running job keeps its version
    with pytest.raises(PolicyError, match="no version 7"):
        reg.load("rl-test", version=7)
    with pytest.raises(PolicyError, match="no policy"):
        reg.load("nope")
    assert [r["version"] for r in reg.describe()] == [1, 2]


def test_nan_at_run_time_falls_back_to_twap_and_is_counted(tmp_path: Path) -> None:
    good = PolicyRegistry(tmp_path / "x")
    _save(tmp_path / "x", PolicyNet())
    loaded = good.load("rl-test")
    bad = LoadedPolicy(loaded.manifest, NaNNet(), fallback=loaded.fallback)
    from tests.unit.worker.test_baselines import _obs

    act, fell_back = bad.decide_scaled(
        np.zeros(OBS_DIM, np.float32), _obs(0.5, 0, 1000), JobContext(1000), 100
    )
    assert fell_back and bad.fallbacks == 1
    assert act.price is PriceKind.MARKET and act.quantity == 500  # TWAP's catch-up at half time


def test_the_inference_module_gives_the_networks_bits_and_keeps_no_output_of_an_earlier_call() -> None:
    """The loaded policy's module writes its hidden layers into buffers it keeps between calls: the scores
    must be the network's own, bit for bit, for batches growing and shrinking, from two threads, and an
    earlier call's scores must not change when the buffers are written again."""
    import threading

    torch.manual_seed(3)
    net = PolicyNet().eval()
    fast = pf.fast_module(net)
    assert isinstance(fast, pf._Inference)
    rng = np.random.default_rng(5)
    kept = []
    with torch.no_grad():
        for rows in (1, 1000, 3, 2500, 17, 1000):
            x = torch.from_numpy(rng.normal(0, 2, (rows, OBS_DIM)).astype(np.float32))
            got = fast(x)
            assert torch.equal(got, net(x)), rows
            kept.append((x, got.clone(), got))
        for _, before, returned in kept:
            assert torch.equal(before, returned)  # later calls did not write into it
    assert torch.is_grad_enabled() and torch.equal(fast(kept[0][0]), net(kept[0][0]))  # training: the net
    errors: list[str] = []

    def other(seed: int) -> None:
        r = np.random.default_rng(seed)
        with torch.no_grad():
            for _ in range(200):
                x = torch.from_numpy(r.normal(0, 2, (int(r.integers(1, 600)), OBS_DIM)).astype(np.float32))
                if not torch.equal(fast(x), net(x)):
                    errors.append(f"thread {seed}")

    threads = [threading.Thread(target=other, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
