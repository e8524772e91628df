"""The ``paceline`` command (also ``python -m paceline``)."""

from __future__ import annotations

import argparse
import math
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from models import DEFAULT_RL_POLICY, DEFAULT_SYMBOLS
from paceline.commands import checks, ops, research, services
from runtime.settings import Settings


def _rate(text: str) -> float:
    """A rate: a number of at least 0 (0: no limit)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of at least 0, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paceline", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    cl = sub.add_parser("cluster", help="a local Apache Pulsar cluster: ZooKeeper, 3 bookies, 2 brokers")
    cl.add_argument("action", choices=["start", "stop", "status"])
    cl.add_argument("--run-dir", help="its folder (default ~/.paceline/cluster)")
    cl.add_argument(
        "--auth",
        action="store_true",
        help="token authentication and authorisation (first start)",
    )
    cl.set_defaults(func=ops.cmd_cluster)

    b = sub.add_parser("broker", help="provision, start, stop and inspect a local Apache Pulsar standalone")
    b.add_argument("action", choices=["provision", "start", "stop", "status", "wait", "setup", "tokens"])
    b.add_argument(
        "--admin-url", help="setup: the admin API of any broker (default: PACELINE_PULSAR_ADMIN_URL)"
    )
    b.add_argument("--run-dir", help="broker run folder (default: $PACELINE_HOME/broker)")
    b.add_argument("--port", type=int, default=6650)
    b.add_argument("--web-port", type=int, default=8080)
    b.add_argument("--bookie-port", type=int, default=3181)
    b.add_argument("--low-latency", action="store_true", help="journal off: NOT durable (benchmarks only)")
    b.add_argument(
        "--auth",
        action="store_true",
        help="start: token authentication and per-role authorisation (tokens in <run-dir>/auth); setup: "
        "grant every role its permissions (run as the superuser)",
    )
    b.add_argument("--cluster", default="standalone", help="setup: the Pulsar cluster the tenant may use")
    b.add_argument("--no-wait", action="store_true", help="start: return before the broker is ready")
    b.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for readiness")
    b.add_argument("-v", "--verbose", action="store_true")
    b.set_defaults(func=ops.cmd_broker)

    d = sub.add_parser("demo", help="bring up Pulsar and every service, and work parent orders over FIX")
    d.add_argument("--symbols", default=",".join(DEFAULT_SYMBOLS))
    d.add_argument("--minutes", type=float, default=390.0, help="minutes of the session to publish (min 3)")
    d.add_argument("--speed", type=float, default=100.0, help="clock acceleration (event time / wall time)")
    d.add_argument("--keep-broker", action="store_true", help="leave the broker running afterwards")
    d.add_argument(
        "--cluster",
        action="store_true",
        help="on the Pulsar cluster of `paceline cluster` (started when none runs)",
    )
    d.add_argument(
        "--out", type=Path, default=None, help="where the TCA report goes (default: the run's folder)"
    )
    d.set_defaults(func=checks.cmd_demo)

    r = sub.add_parser("receiver", help="publish ticks from a source to one Pulsar topic per equity")
    r.add_argument("--source", choices=["synthetic", "lobster", "file"], default="synthetic")
    r.add_argument("--symbols", default=",".join(DEFAULT_SYMBOLS), help="synthetic: the equities")
    r.add_argument("--seed", type=int, default=1, help="synthetic: the market's seed")
    r.add_argument("--symbol", default="AAPL", help="lobster: the equity the files are of")
    r.add_argument("--messages", help="lobster: the message file")
    r.add_argument("--orderbook", help="lobster: the orderbook file (the rebuilt book is checked against it)")
    r.add_argument(
        "files", nargs="*", help="file: JSON-lines tick files; two or more are merged as redundant feeds"
    )
    r.add_argument("--depth", type=int, default=5, help="book levels per tick")
    r.add_argument("--speed", default="1", help="replay speed: a factor of event time, or 'max'")
    r.add_argument("--batching", action="store_true", help="batch sends (throughput over latency)")
    r.add_argument("--name", default="main", help="producer names derive from it (de-duplication on restart)")
    r.set_defaults(func=services.cmd_receiver)

    w = sub.add_parser("worker", help="run an execution worker: assignments in, child-order actions out")
    w.add_argument("--id", default="worker-1", help="worker id (assignments name it)")
    w.add_argument("--capacity", type=int, default=1_000, help="most jobs at once")
    w.add_argument("--decision", type=int, default=30, help="seconds of event time between decisions")
    w.set_defaults(func=services.cmd_worker)

    hc = sub.add_parser(
        "health-checker", help="register jobs, track workers, assign with epochs, drive the parent-order saga"
    )
    hc.add_argument("--name", default="hc-1", help="this instance's name (run two for failover)")
    hc.add_argument("--heartbeat-timeout", type=float, default=3.0, help="seconds of worker silence = lost")
    hc.add_argument("--assign-wait", type=float, default=30.0, help="seconds a job may wait for a worker")
    hc.add_argument("--symbols", default="", help="comma-separated tradable universe (empty: any)")
    hc.add_argument("--snapshot-every", type=int, default=5_000,
                    help="saga log events between state snapshots (the most a takeover replays)")  # fmt: skip
    hc.set_defaults(func=services.cmd_health_checker)

    ep = sub.add_parser(
        "endpoint",
        help="the client edge: FIX 4.4 acceptor, pre-trade risk, TCA, venue routing (simulated exchange)",
    )
    ep.add_argument("--config", type=Path, default=None, help="TOML (default deploy/endpoint/endpoint.toml)")
    ep.add_argument("--name", default="", help="overrides the config's name (subscriptions derive from it)")
    ep.add_argument("--host", default="", help="the native protocol's listen address (0.0.0.0 in containers)")
    ep.add_argument("--fix-allow", default="", help="remote addresses a FIX logon may come from, comma-"
                    "separated, or 'any' (default: the config's, loopback)")  # fmt: skip
    ep.set_defaults(func=services.cmd_endpoint)

    sc = sub.add_parser("secret", help="credentials: hash a FIX password, or make a native token and hash")
    sc.add_argument("action", choices=["hash", "token"])
    sc.set_defaults(func=ops.cmd_secret)

    rk = sub.add_parser("risk", help="the kill switch: show it, or set it globally or for one client")
    rk.add_argument("action", choices=["show", "set"])
    rk.add_argument("--state", choices=["active", "reducing", "halted"], default="active")
    rk.add_argument("--client", default=None, help="a client id (default: every client)")
    rk.set_defaults(func=services.cmd_risk)

    tc = sub.add_parser("tca", help="a parent's transaction-cost report (HTML) from the recorded topics")
    tc.add_argument("cl_ord_id", nargs="+", help="the client's ClOrdID (the first, or one it was amended to)")
    tc.add_argument("--client", default=None, help="the client id, where two clients used the ClOrdID")
    tc.add_argument("--out", type=Path, default=None,
                    help="a folder (default ~/.paceline/tca) or, for one order, an .html path")  # fmt: skip
    tc.set_defaults(func=services.cmd_tca)

    t = sub.add_parser("train", help="train an execution policy and write a policy file")
    t.add_argument("--method", choices=["placement", "ppo"], default="placement",
                   help="placement: counterfactual rollouts of the passive rule on generated order-level "
                   "days and fitted action values (worker.placement); ppo: PPO on Execution-v0")  # fmt: skip
    t.add_argument("--name", default=DEFAULT_RL_POLICY)
    t.add_argument("--days", type=int, default=8, help="placement: generated training days per profile")
    t.add_argument("--profiles", default="mid,high", help="placement: market profiles of those days")
    t.add_argument(
        "--horizon",
        type=int,
        default=10,
        help="placement: decisions each fork runs on (30-minute parents' forks run to the end)",
    )
    t.add_argument("--jobs", type=int, default=2, help="placement: processes (days are shared out)")
    t.add_argument("--samples", help="placement: the forks' file: loaded when it exists, else written")
    t.add_argument("--steps", type=int, default=120_000, help="ppo: environment steps (decisions)")
    t.add_argument("--seed", type=int, default=None,
                   help="market seed of the first training day (placement, default 200000) or PPO's seed "
                   "(default 7)")  # fmt: skip
    t.add_argument("--envs", type=int, default=4, help="environments stepped together")
    t.add_argument("--window", type=int, default=1800, help="seconds of market per episode")
    t.add_argument("--decision", type=int, default=30, help="seconds between decisions")
    t.add_argument(
        "--reward",
        choices=["arrival", "mid", "twap"],
        default="arrival",
        help="training reward: shortfall vs the arrival mid, vs the mid at each fill (less noise), or "
        "the shortfall less TWAP's over the same ticks (the paired difference)",
    )
    t.add_argument("--actions", choices=["slice", "schedule"], default="slice",
                   help="action set: TWAP slices, or anchored on the TWAP schedule")  # fmt: skip
    t.add_argument("--band", type=float, default=None, help="most a policy may fall behind the schedule")
    t.add_argument("--windows", help="seconds per episode drawn from this list (0 = the full day)")
    t.add_argument("--sizes", help="lo,hi: order size as a share of the day's volume (log-uniform)")
    t.add_argument("--vols", help="lo,hi: the synthetic day's volatility")
    t.add_argument("--lobster", help="a folder of generated LOBSTER-format days to train on too")
    t.add_argument("--lobster-share", type=float, default=0.0, help="share of episodes on those days")
    t.add_argument("--processes", action="store_true", help="one process per environment")
    t.add_argument("--verbose", type=int, default=0, help="PPO's own progress lines (1)")
    t.add_argument("--init", help="go on training from this checkpoint (a --checkpoints zip)")
    t.add_argument("--prefer", type=int, help="start the actor preferring this action index")
    t.add_argument("--prefer-logit", type=float, default=2.0, help="how much (added to its score)")
    t.add_argument("--learning-rate", type=float, default=3e-4)
    t.add_argument("--ent-coef", type=float, default=0.01, help="PPO's entropy bonus (0: keep the prior)")
    t.add_argument("--out", help="policy folder (default: PACELINE_POLICY_DIR, the repo's policies/)")
    t.add_argument("--checkpoints", help="save training checkpoints here")
    t.add_argument("--eval-episodes", type=int, default=40)
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=research.cmd_train)

    bt = sub.add_parser(
        "backtest", help="policies over an episode grid on recorded (LOBSTER) or synthetic days"
    )
    bt.add_argument("--policies", help="comma-separated: twap,vwap,pov,ac, the rule passive and policy files "
                    "(name, name@v); default: every baseline and every policy file")  # fmt: skip
    bt.add_argument("--lobster", help="a folder of LOBSTER message/orderbook pairs (several symbols, days)")
    bt.add_argument("--days", type=int, default=3, help="generated: days per profile")
    bt.add_argument(
        "--profiles",
        default="mid,high",
        help="generated: market profiles (mid $200, high $600: the wide-spread books the real days are; "
        "large-tick $30: see docs/MARKET.md on its impact overlay)",
    )
    bt.add_argument("--seed", type=int, default=1_000_000, help="generated: first day's seed (held out)")
    bt.add_argument("--horizons", default="30m,2h,day", help="comma-separated: 30m, 2h, day")
    bt.add_argument("--sizes", default="0.005,0.02,0.05", help="order sizes as shares of the day's volume")
    bt.add_argument("--decision", type=int, default=30, help="seconds of market time between decisions")
    bt.add_argument(
        "--latency-ms",
        type=float,
        default=5.0,
        help="a child order's trip from decision to venue, in market time (0: at once)",
    )
    bt.add_argument("--dir", help="policy folder (default: PACELINE_POLICY_DIR)")
    bt.add_argument("--out", default="reports/backtest", help="report.md, report.json, episodes, plots")
    bt.add_argument("--jobs", type=int, default=1, help="processes (days are shared out)")
    bt.add_argument("--record", action="store_true",
                    help="write each policy file's paired figures per horizon into its manifest")  # fmt: skip
    bt.add_argument("--no-progress", action="store_true")
    bt.set_defaults(func=research.cmd_backtest)

    lb = sub.add_parser(
        "lobster-days", help="generate LOBSTER-format days (order-level, with orderbook files)"
    )
    lb.add_argument("--out", required=True, help="folder for the message/orderbook pairs")
    lb.add_argument("--symbols", default="LTK,MID,HIG")
    lb.add_argument(
        "--profiles",
        default="large-tick,mid,high",
        help="market profile per symbol, or one for all: large-tick ($30), mid ($200), high ($600)",
    )
    lb.add_argument("--days", type=int, default=2)
    lb.add_argument("--start-date", default="2026-01-05")
    lb.add_argument("--seed", type=int, default=1_000_000, help="first seed (>= 1,000,000: held-out days)")
    lb.add_argument("--levels", type=int, default=10)
    lb.add_argument("--rate", type=float, default=0.0, help="mean messages per second (0: the profile's)")
    lb.set_defaults(func=research.cmd_lobster_days)

    mf = sub.add_parser("market-facts", help="the facts of real books measured on days, side by side")
    mf.add_argument("days", nargs="+",
                    help="LOBSTER message files or folders of them, gen:PROFILE[:SEED] (a generated day), "
                         "synthetic:SEED[:PRICE] (the tick-level synthetic market)")  # fmt: skip
    mf.add_argument("--out", default="reports/market-facts", help="facts.md, facts.json, facts.png")
    mf.set_defaults(func=research.cmd_market_facts)

    pol = sub.add_parser("policy", help="list, validate and evaluate policy files")
    pol.add_argument("action", choices=["list", "validate", "evaluate"])
    pol.add_argument(
        "target",
        nargs="?",
        help="validate: a version folder or a name; evaluate: names, comma-separated, name@version to pin",
    )
    pol.add_argument("--dir", help="policy folder (default: PACELINE_POLICY_DIR)")
    pol.add_argument("--episodes", type=int, default=200, help="evaluate: held-out episodes")
    pol.add_argument("--out", default="reports/evaluation", help="evaluate: where the report and plot go")
    pol.set_defaults(func=research.cmd_policy)

    be = sub.add_parser("bench", help="benchmarks that print their figures")
    be.add_argument(
        "what",
        choices=["codec", "receiver", "market", "worker", "fix", "latency", "hops", "takeover", "saga",
                 "restore"],
    )  # fmt: skip
    be.add_argument("--events", default="10000,100000,1000000",
                    help="takeover: saga log lengths, comma-separated")  # fmt: skip
    be.add_argument("--fills", type=int, default=20, help="takeover: fills per parent in the history")
    be.add_argument("--entries", default="3000,20000,100000",
                    help="restore: lengths of a symbol's executions history, comma-separated")  # fmt: skip
    be.add_argument("--orders", type=int, default=None,
                    help="fix: orders timed (after 10 warm-up ones; 200); saga: job requests a burst "
                         "(500)")  # fmt: skip
    be.add_argument("--no-worker", action="store_true", help="fix: no worker, so the orders are not worked")
    be.add_argument("--no-request-twin", action="store_true",
                    help="fix: the endpoint sends new orders' requests on the record only (its "
                    "request_twin = false)")  # fmt: skip
    be.add_argument("--no-early-new", action="store_true",
                    help="fix: the endpoint tells a new order's New after the saga's commit only (its "
                         "early_new = false)")  # fmt: skip
    be.add_argument("--no-new-on-store", action="store_true",
                    help="fix: the endpoint's early New waits for the saga's decision as well as the "
                         "request's store (its new_on_store = false)")  # fmt: skip
    be.add_argument("--order-rate", type=_rate, default=0.0,
                    help="fix: orders sent at most this many a second (default 0: back to back, each once "
                         "the one before is answered)")  # fmt: skip
    be.add_argument("--browser", action="store_true",
                    help="latency: the live page in headless Chromium with a chart open (its own update "
                    "rate, render times, main-thread stalls)")  # fmt: skip
    be.add_argument("--iterations", type=int, default=50_000, help="codec: timing loop length")
    be.add_argument("--symbols", default=",".join(DEFAULT_SYMBOLS), help="receiver, market: equities")
    be.add_argument("--ticks", type=int, default=10_000, help="receiver: ticks per symbol")
    be.add_argument("--rate", type=float, default=300.0, help="latency: ticks/s over all symbols")
    be.add_argument("--jobs", type=int, default=20, help="latency: live jobs")
    be.add_argument("--seconds", type=float, default=30.0, help="latency: seconds measured per mode")
    be.add_argument(
        "--decision", type=int, default=10, help="latency: market seconds between a job's decisions"
    )
    be.add_argument(
        "--workers", type=int, default=2, help="latency: worker processes the jobs are spread over"
    )
    be.add_argument("--stagger", action="store_true",
                    help="latency: the parents' start times spread evenly over the interval (parents "
                         "arriving at different times); default: all for one start time, which the "
                         "health-checker spreads")  # fmt: skip
    be.add_argument("--live-ticks", choices=["persistent", "non-persistent"], default=None,
                    help="latency: the topics workers read ticks from (default: PACELINE_LIVE_TICKS, "
                         "persistent): the record, or its non-persistent twins")  # fmt: skip
    be.add_argument("--observer", choices=["endpoint", "bench"], default="endpoint",
                    help="latency: who times the child orders: the endpoint, their consumer (its "
                         "histograms), or also a subscription of the bench's on every job's actions, "
                         "exact but a second one on the topic measured")  # fmt: skip
    be.add_argument("--mode", choices=["both", "durable", "low-latency"], default="both",
                    help="latency, hops: broker mode(s), each on a fresh standalone")  # fmt: skip
    be.add_argument("--rounds", type=int, default=None,
                    help="hops: interleaved rounds over the variants (4); saga: bursts (3); restore: "
                         "reads each way (3)")  # fmt: skip
    be.set_defaults(func=checks.cmd_bench)

    da = sub.add_parser("dashboard", help="the live web page: parents, fills, workers, risk, broker")
    da.add_argument("--host", default="127.0.0.1")
    da.add_argument("--port", type=int, default=8765)
    da.add_argument("--rate", type=float, default=4.0, help="most pushes per second to each browser")
    da.set_defaults(func=services.cmd_dashboard)

    so = sub.add_parser(
        "soak", help="a desk's day at an accelerated clock: many parents, every service, all checks"
    )
    so.add_argument("--parents", type=int, default=1_000)
    so.add_argument("--fix-clients", type=int, default=5)
    so.add_argument("--native-clients", type=int, default=5)
    so.add_argument("--symbols", type=int, default=8, help="how many equities (up to 8)")
    so.add_argument("--speed", type=float, default=20.0, help="market clock against the wall clock")
    so.add_argument("--seed", type=int, default=11)
    so.add_argument("--kill-leader-at", metavar="HH:MM", help="SIGKILL the leading health-checker then")
    so.add_argument("--start", metavar="HH:MM", help="the session's start (default 09:30)")
    so.add_argument("--end", metavar="HH:MM", help="the session's end (default 16:00)")
    so.add_argument("--out", help="the run's folder (default ~/.paceline/soak/<run>)")
    so.set_defaults(func=checks.cmd_soak)

    dr = sub.add_parser("drill", help="inject a fault mid-execution and check every promise")
    from paceline.drills.faults import CLUSTER_FAULTS, FAULTS

    dr.add_argument("fault", choices=[*FAULTS, "all", *CLUSTER_FAULTS, "all-cluster"])
    dr.add_argument("--speed", type=float, default=10.0, help="market clock against the wall clock")
    dr.add_argument("--window", type=int, default=480, help="the parents' window in market seconds")
    dr.add_argument("--seed", type=int, default=3, help="synthetic market seed")
    dr.set_defaults(func=checks.cmd_drill)
    return p


# Commands that talk to a broker someone else started (the demo, drills and `bench latency` start their own).
NEEDS_BROKER = {"receiver", "worker", "health-checker", "endpoint", "risk", "dashboard", "tca"}
NEEDS_BROKER_BENCH = {"receiver"}


def broker_answers(url: str, timeout_s: float = 5.0) -> bool:
    """Whether anything accepts a connection at one of the Pulsar service URL's hosts (a cluster's URL names
    several: ``pulsar://h1:p1,h2:p2``) within ``timeout_s`` (retried: a broker that is starting gets those
    seconds)."""
    import socket
    import time

    scheme, _, hosts = url.partition("://")
    default = 6651 if scheme == "pulsar+ssl" else 6650
    addrs = []
    for h in hosts.split("/", 1)[0].split(","):
        host, _, port = h.rpartition(":") if ":" in h else (h, "", "")
        addrs.append((host or "localhost", int(port) if port.isdigit() else default))
    deadline = time.monotonic() + timeout_s
    while True:
        for addr in addrs:
            try:
                with socket.create_connection(addr, timeout=1.0):
                    return True
            except OSError:
                pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.25)


def main(argv: Sequence[str] | None = None) -> int:
    from runtime import logs

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `paceline ... | head` ends quietly
    args = build_parser().parse_args(argv)
    settings = Settings()
    needs = args.command in NEEDS_BROKER or (args.command == "bench" and args.what in NEEDS_BROKER_BENCH)
    if needs and not broker_answers(settings.pulsar_url):
        print(f"paceline {args.command}: no Pulsar broker answers at {settings.pulsar_url} "
              "(PACELINE_PULSAR_URL). Start one with `paceline broker start` (after `paceline broker "
              "provision` on a fresh machine), or point PACELINE_PULSAR_URL at a running one.",
              file=sys.stderr)  # fmt: skip
        return 2
    sys.setswitchinterval(settings.switch_interval_us / 1e6)
    logs.configure(f"paceline-{args.command}", fmt=settings.log_format, level=settings.log_level)
    result: int = args.func(args, settings)
    return result
