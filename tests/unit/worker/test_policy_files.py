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

SHIPPED = Path(__file__).resolve().parents[3] / "policies"


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


def test_the_numpy_network_scores_as_the_file_and_keeps_no_output_of_an_earlier_call(tmp_path: Path) -> None:
    """The loaded policy scores in numpy (``NumpyNet``), its hidden layers written into buffers kept between
    calls: its scores must be the file's own within 1e-5 with the same best action, for batches growing and
    shrinking, from two threads, and an earlier call's scores must not change when the buffers are written
    again."""
    import threading

    torch.manual_seed(3)
    _save(tmp_path, PolicyNet(hidden=32))
    loaded = PolicyRegistry(tmp_path).load("rl-test")
    fast, module = loaded.net, loaded.module
    assert isinstance(fast, pf.NumpyNet) and fast.hidden == 32

    def same(x: np.ndarray, got: np.ndarray) -> bool:
        with torch.no_grad():
            want = module(torch.from_numpy(x)).numpy()
        return bool(np.allclose(got, want, rtol=0, atol=1e-5) and (got.argmax(1) == want.argmax(1)).all())

    rng = np.random.default_rng(5)
    kept = []
    for rows in (1, 1000, 3, 2500, 17, 1000):
        x = rng.normal(0, 2, (rows, OBS_DIM)).astype(np.float32)
        got = loaded.scores(x)
        assert got.shape == (rows, len(loaded.actions)) and same(x, got), rows
        kept.append((got.copy(), got))
    for before, returned in kept:
        assert np.array_equal(before, returned)  # later calls did not write into it
    errors: list[str] = []

    def other(seed: int) -> None:
        r = np.random.default_rng(seed)
        for _ in range(200):
            x = r.normal(0, 2, (int(r.integers(1, 600)), OBS_DIM)).astype(np.float32)
            if not same(x, fast(x)):
                errors.append(f"thread {seed}")

    threads = [threading.Thread(target=other, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_network_that_does_not_fit_the_reference_runs_in_torch(tmp_path: Path) -> None:
    """A file of another shape than ``PolicyNet`` (a researcher's own network) is run by torch as exported;
    so is one whose numpy scores would differ from the file's (here its weights are changed after the
    check's own copy, as a stand-in for any disagreement)."""

    class Wider(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(OBS_DIM, 6)

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.layer(obs) * 2
            return out

    _save(tmp_path, Wider())
    loaded = PolicyRegistry(tmp_path).load("rl-test")
    assert loaded.net is None
    x = np.random.default_rng(1).normal(0, 1, (5, OBS_DIM)).astype(np.float32)
    with torch.no_grad():
        assert np.array_equal(loaded.scores(x), loaded.module(torch.from_numpy(x)).numpy())

    class Shifted(PolicyNet):
        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            return super().forward(obs) + 1e-3  # the reference's weights, not its function

    assert pf.numpy_net(Shifted().eval()) is None
    assert pf.numpy_net(PolicyNet().eval()) is not None


@pytest.mark.parametrize("name", sorted(p.name for p in SHIPPED.iterdir()))
def test_every_shipped_policy_runs_in_numpy_and_picks_the_files_actions(name: str) -> None:
    """The shipped files are scored in numpy, not torch: 20,000 observations spread like the probe batch's
    get the file's scores within 1e-5, and its best action wherever the file's two best scores are more than
    1e-4 apart (closer than that, one float32 ulp in a ``tanh`` may pick either: arithmetic, not policy)."""
    loaded = PolicyRegistry(SHIPPED).load(name)
    assert isinstance(loaded.net, pf.NumpyNet)
    rng = np.random.default_rng(11)
    x = np.concatenate([rng.uniform(-1, 1, (10_000, OBS_DIM)), rng.normal(0, 2, (10_000, OBS_DIM))])
    x = x.astype(np.float32)
    with torch.no_grad():
        want = loaded.module(torch.from_numpy(x)).numpy()
    got = loaded.scores(x)
    assert np.abs(got - want).max() < 1e-5
    top = np.sort(want, axis=1)
    clear = top[:, -1] - top[:, -2] > 1e-4
    assert clear.mean() > 0.99 and (got.argmax(1) == want.argmax(1))[clear].all()
