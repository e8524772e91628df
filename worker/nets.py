"""The network a trained policy file holds: a small MLP from scaled observations to action scores.

Small on purpose: at batch 1 on one thread it costs tens of microseconds, so the worker can decide for
thousands of jobs per second, and it scripts cleanly to TorchScript."""

from __future__ import annotations

import torch
from threadpoolctl import threadpool_limits
from torch import nn

from worker.policy import ACTIONS, OBS_DIM


class PolicyNet(nn.Module):
    def __init__(self, hidden: int = 64, actions: int = len(ACTIONS)) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(OBS_DIM, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh())
        self.head = nn.Linear(hidden, actions)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.body(obs))
        return out


def one_thread() -> None:
    """torch and numpy's BLAS on one thread each, for the process: a policy's batches are small enough that
    a second thread costs more than it saves, and on a shared machine it takes a core from the services."""
    torch.set_num_threads(1)
    threadpool_limits(1, user_api="blas")
