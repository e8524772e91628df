"""The network a trained policy file holds: a small MLP from scaled observations to action scores.

Small on purpose: at batch 1 on one thread it costs tens of microseconds, so the worker can decide for
thousands of jobs per second, and it scripts cleanly to TorchScript."""

from __future__ import annotations

import torch
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
