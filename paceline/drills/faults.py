"""The faults ``paceline drill`` injects (here, not in ``paceline.drills.drill``, so the CLI's parser does not
import QuickFIX and the market to list them)."""

FAULTS = (
    "worker-kill", "broker-restart", "health-checker-kill", "health-checker-pause", "endpoint-restart",
    "network-pause",
)  # fmt: skip
# On a Pulsar cluster (``paceline cluster``): a broker or a bookie SIGKILLed mid-execution.
CLUSTER_FAULTS = ("broker-kill", "bookie-kill")
