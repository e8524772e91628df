"""Settings from the environment (``PACELINE_*``), one object per process."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from runtime.shipped import shipped


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PACELINE_", extra="ignore")

    pulsar_url: str = "pulsar://127.0.0.1:6650"
    pulsar_admin_url: str = "http://127.0.0.1:8080"
    # Where run folders live: the broker's data, configs, logs and pid files.
    home: Path = Field(default_factory=lambda: Path.home() / ".paceline")
    # Where provisioned Apache Pulsar jars are cached (outside the repository, reused across clones).
    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "paceline")
    # Policy files: <policy_dir>/<name>/<version>/{policy.pt2, manifest.json}; the repo ships its own.
    policy_dir: Path = Field(default_factory=lambda: shipped("policies"))
    log_format: Literal["console", "json"] = "console"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # A thread woken by I/O waits up to this long for the GIL while another thread computes (CPython's
    # default is 5000 us, which shows up directly as tick-to-order latency).
    switch_interval_us: int = Field(default=200, ge=50, le=5000)
    # Where workers read live ticks. "non-persistent": the Receiver also publishes every tick on the tick
    # topic's non-persistent twin (``models.topics.live_ticks``) and workers read that one, a storage write
    # shorter (docs/PERFORMANCE.md); the persistent topic stays the record. Set it alike for every process.
    live_ticks: Literal["persistent", "non-persistent"] = "persistent"
    metrics_port: int = Field(default=0, ge=0, le=65535, description="0 disables the /metrics endpoint")
    metrics_addr: str = Field(
        default="127.0.0.1", description="0.0.0.0 where Prometheus scrapes from elsewhere"
    )

    @property
    def live_twin(self) -> bool:
        """Whether live ticks go by the tick topics' non-persistent twins (``live_ticks``)."""
        return self.live_ticks == "non-persistent"
