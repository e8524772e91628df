"""Discrete actions as child-order intent: slices, the schedule anchor and the band."""

from __future__ import annotations

from pathlib import Path

from worker import policy_files
from worker.baselines import TWAP
from worker.nets import PolicyNet
from worker.policy import (
    HOLD,
    SCHEDULE_ACTIONS,
    Action,
    ActionDef,
    JobContext,
    Observation,
    PriceKind,
    action_of,
)
from worker.policy_files import PolicyRegistry

JOB = JobContext(quantity=10_000)


def obs(elapsed: float, filled: float, open_frac: float = 0.0) -> Observation:
    return Observation(
        time_elapsed=elapsed, inventory_left=1.0 - filled, open_frac=open_frac, schedule_gap=filled - elapsed,
        spread_bps=2.0, imbalance_1=0.0, imbalance_5=0.0, drift_bps=0.0, ret_short_bps=0.0, vol_bps=1.0,
        volume_ratio=1.0, market_volume=1.0,
    )  # fmt: skip


def test_slice_actions_are_multiples_of_the_slice() -> None:
    assert action_of(ActionDef(PriceKind.MARKET, 2.0), 300, obs(0.5, 0.5), JOB) == Action(
        PriceKind.MARKET, 600
    )
    assert action_of(ActionDef(PriceKind.HOLD), 300, obs(0.5, 0.0), JOB) == HOLD


def test_the_schedule_anchor_at_market_is_twap_itself() -> None:
    twap_like = SCHEDULE_ACTIONS[1]
    assert twap_like == ActionDef(PriceKind.MARKET, lead=0.0)
    for elapsed, filled in [(0.1, 0.0), (0.4, 0.35), (0.73, 0.7), (0.5, 0.6)]:
        o = obs(elapsed, filled)
        assert action_of(twap_like, 0, o, JOB) == TWAP().decide(o, JOB)


def test_a_lead_aims_ahead_of_the_schedule_and_resting_orders_do_not_count() -> None:
    d = ActionDef(PriceKind.LIMIT_TOUCH, lead=0.02)
    # 30 % gone, 25 % filled, 3 % resting (cancelled first): aim at 32 % filled -> 700 shares.
    assert action_of(d, 0, obs(0.30, 0.25, 0.03), JOB) == Action(PriceKind.LIMIT_TOUCH, 700)
    assert action_of(d, 0, obs(0.30, 0.40), JOB) == HOLD  # ahead of the target: nothing


def test_behind_the_band_the_gap_is_crossed_whatever_the_policy_chose() -> None:
    for d in (ActionDef(PriceKind.HOLD), *SCHEDULE_ACTIONS):
        assert action_of(d, 0, obs(0.50, 0.40), JOB, band=0.05) == Action(PriceKind.MARKET, 1000)
    inside = action_of(ActionDef(PriceKind.LIMIT_TOUCH, lead=0.0), 0, obs(0.50, 0.47), JOB, band=0.05)
    assert inside == Action(PriceKind.LIMIT_TOUCH, 300)


def test_a_policy_file_keeps_its_action_set_and_band(tmp_path: Path) -> None:
    net = PolicyNet(actions=len(SCHEDULE_ACTIONS))
    policy_files.save(net, tmp_path, "anchored", 1, actions=SCHEDULE_ACTIONS, band=0.05)
    loaded = PolicyRegistry(tmp_path).load("anchored")
    assert [a.definition() for a in loaded.manifest.actions] == list(SCHEDULE_ACTIONS)
    assert loaded.manifest.band == 0.05
    # Whatever index the network picks, a job 10 % behind is brought back to the band's edge at market.
    for index in range(len(SCHEDULE_ACTIONS)):
        assert loaded.action_of(index, 0, obs(0.5, 0.4), JOB) == Action(PriceKind.MARKET, 1000)
