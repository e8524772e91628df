"""Policy files: a trained policy is one ``torch.export`` artefact plus a manifest, in
``<policy folder>/<name>/<version>/{policy.pt2, manifest.json}`` (TorchScript is deprecated in torch 2.x).

The artefact maps a batch of scaled observations (float32, [batch, OBS_DIM], see ``worker.policy.scale``) to
one score per action of the manifest's action spec ([batch, actions]); the policy takes the best-scoring
action. Workers load policies by name; ``PolicyRegistry.load(name)`` looks for the newest version each time it
is asked, so new jobs pick up a new version without a restart while running jobs keep the one they started
with. A file that does not match the observation schema, whose hash does not match its manifest, or that
outputs NaN or the wrong shape, is rejected with the reason.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from worker.baselines import TWAP
from worker.nets import PolicyNet
from worker.policy import (
    ACTIONS,
    OBS_DIM,
    OBS_LIMIT,
    OBS_SCHEMA_VERSION,
    Action,
    ActionDef,
    JobContext,
    Observation,
    PriceKind,
    action_of,
)

ARTEFACT = "policy.pt2"
MANIFEST = "manifest.json"


class PolicyError(ValueError):
    """A policy file that cannot be used; the message says why."""


class ActionSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    price: str
    slice_multiple: float = Field(default=0.0, ge=0)
    lead: float | None = Field(default=None, ge=-1.0, le=1.0)  # anchored on the TWAP schedule (ActionDef)

    def definition(self) -> ActionDef:
        return ActionDef(PriceKind[self.price], self.slice_multiple, self.lead)


class PolicyManifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.\-]{0,63}$")
    version: int = Field(ge=1)
    obs_schema_version: int
    observation: list[str]
    actions: list[ActionSpec]
    band: float | None = Field(default=None, gt=0.0, le=1.0)  # most it may fall behind TWAP (see action_of)
    training: dict[str, Any] = Field(default_factory=dict)
    evaluation: dict[str, Any] = Field(default_factory=dict)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


def action_spec(actions: tuple[ActionDef, ...] = ACTIONS) -> list[ActionSpec]:
    return [ActionSpec(price=d.price.name, slice_multiple=d.slice_multiple, lead=d.lead) for d in actions]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save(
    module: torch.nn.Module,
    folder: Path,
    name: str,
    version: int,
    *,
    actions: tuple[ActionDef, ...] = ACTIONS,
    band: float | None = None,
    **meta: Any,
) -> Path:
    """Export ``module`` (any batch size) and write it with its manifest; returns the version folder."""
    out = folder / name / str(version)
    out.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(2, OBS_DIM)
    program = torch.export.export(
        module.eval(), (example,), dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=65536)},)
    )
    torch.export.save(program, str(out / ARTEFACT))
    manifest = PolicyManifest(
        name=name,
        version=version,
        obs_schema_version=OBS_SCHEMA_VERSION,
        observation=list(Observation.names()),
        actions=action_spec(actions),
        band=band,
        sha256=sha256(out / ARTEFACT),
        **meta,
    )
    (out / MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n")
    return out


def _probe_batch() -> torch.Tensor:
    rng = np.random.default_rng(0)
    probes = rng.uniform(-OBS_LIMIT, OBS_LIMIT, size=(64, OBS_DIM)).astype(np.float32)
    probes[:8] = 0.0
    probes[8:16] = rng.uniform(-1, 1, size=(8, OBS_DIM))
    return torch.from_numpy(probes)


def validate(version_dir: Path) -> tuple[PolicyManifest, torch.nn.Module]:
    """Load and check one version folder; raises PolicyError with the reason."""
    try:
        manifest = PolicyManifest.model_validate_json((version_dir / MANIFEST).read_bytes())
    except FileNotFoundError:
        raise PolicyError(f"{version_dir}: no {MANIFEST}") from None
    except ValidationError as exc:
        raise PolicyError(f"{version_dir}: bad manifest: {exc.errors()[0]['msg']}") from None
    if manifest.obs_schema_version != OBS_SCHEMA_VERSION:
        raise PolicyError(
            f"{manifest.name} v{manifest.version}: observation schema v{manifest.obs_schema_version}, "
            f"this worker speaks v{OBS_SCHEMA_VERSION}"
        )
    if manifest.observation != list(Observation.names()):
        raise PolicyError(f"{manifest.name} v{manifest.version}: observation fields differ from schema v1")
    kinds = {k.name for k in PriceKind}
    if not manifest.actions or any(a.price not in kinds for a in manifest.actions):
        raise PolicyError(f"{manifest.name} v{manifest.version}: action spec names unknown price kinds")
    artefact = version_dir / ARTEFACT
    if not artefact.exists():
        raise PolicyError(f"{version_dir}: no {ARTEFACT}")
    if sha256(artefact) != manifest.sha256:
        raise PolicyError(
            f"{manifest.name} v{manifest.version}: {ARTEFACT} does not match the manifest's hash"
        )
    try:
        module = torch.export.load(str(artefact)).module()
        with torch.no_grad():
            out = module(_probe_batch())
    except Exception as exc:
        raise PolicyError(f"{manifest.name} v{manifest.version}: cannot run: {exc}") from None
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (64, len(manifest.actions)):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise PolicyError(
            f"{manifest.name} v{manifest.version}: output {shape}, expected (64, {len(manifest.actions)})"
        )
    if not torch.isfinite(out).all():
        raise PolicyError(f"{manifest.name} v{manifest.version}: outputs NaN or infinity")
    return manifest, module


class NumpyNet:
    """``PolicyNet``'s forward pass in numpy, from a policy file's weights: the scores the worker decides on.

    torch's ``tanh`` costs ~2.5 ns an element on this VM against numpy's ~0.4, and each torch call ~5 µs of
    dispatch: for 1,000 rows the pass takes ~0.17 ms against ~0.5, for one row ~6 µs against ~28
    (docs/PERFORMANCE.md). Not torch's bits: the two ``tanh`` differ by one float32 ulp on some elements, so
    a file is run this way only if its scores on the probe batch are torch's within 1e-5 and pick the same
    actions (``numpy_net``). Its hidden layers are written into buffers kept between calls, one set per
    thread: fresh ones for 1,000 rows landed on fresh pages, ~250 page faults in one call, which took a call
    from 0.8 to 2.1 ms on this VM."""

    def __init__(self, state: dict[str, torch.Tensor]) -> None:
        # Weights transposed once (rows of observations times columns of units), as float32 like the file.
        self.layers = [
            (state[f"{k}.weight"].detach().numpy().T.copy(), state[f"{k}.bias"].detach().numpy().copy())
            for k in ("body.0", "body.2", "head")
        ]
        self.hidden = self.layers[0][0].shape[1]
        self._work: dict[int, np.ndarray] = {}  # by thread: (2, rows, hidden), grown as batches grow

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        n, me = x.shape[0], threading.get_ident()
        work = self._work.get(me)
        if work is None or work.shape[1] < n:
            work = self._work[me] = np.empty((2, max(n, 1024), self.hidden), np.float32)
        (w1, b1), (w2, b2), (w3, b3) = self.layers
        h1 = np.matmul(x, w1, out=work[0, :n])
        h1 += b1
        np.tanh(h1, out=h1)
        h2 = np.matmul(h1, w2, out=work[1, :n])
        h2 += b2
        np.tanh(h2, out=h2)
        out: np.ndarray = h2 @ w3  # small, and the caller keeps it: an array of its own
        out += b3
        return out


def numpy_net(module: torch.nn.Module) -> NumpyNet | None:
    """The file's network in numpy when its weights fit our reference ``PolicyNet`` and it scores the probe
    batch as the file does (within 1e-5, the same best action on every row); otherwise None."""
    state = module.state_dict()
    head = state.get("head.weight")
    if head is None or "body.0.weight" not in state:
        return None
    net = PolicyNet(hidden=int(state["body.0.weight"].shape[0]), actions=int(head.shape[0]))
    try:
        net.load_state_dict(state)
    except RuntimeError:
        return None
    fast = NumpyNet(net.state_dict())
    probe = _probe_batch()
    with torch.no_grad():
        want = module(probe).numpy()
    got = fast(probe.numpy())
    if not np.allclose(got, want, rtol=0, atol=1e-5) or not (got.argmax(1) == want.argmax(1)).all():
        return None
    return fast


@dataclass
class LoadedPolicy:
    """A validated policy file, ready to decide. ``fallbacks`` counts decisions it could not make."""

    manifest: PolicyManifest
    module: torch.nn.Module
    fallback: Any  # a baseline Policy used when the network's output is unusable
    fallbacks: int = 0
    actions: tuple[ActionDef, ...] = ()  # the manifest's actions, made once (every decision reads one)
    # The module in numpy, where it fits (``numpy_net``); else torch runs it.
    net: NumpyNet | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.actions = tuple(a.definition() for a in self.manifest.actions)
        self.net = numpy_net(self.module)

    @property
    def name(self) -> str:
        return f"{self.manifest.name}@{self.manifest.version}"

    def scores(self, batch: np.ndarray) -> np.ndarray:
        if self.net is not None:
            return self.net(batch)
        with torch.no_grad():
            out: np.ndarray = self.module(
                torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
            ).numpy()
        return out

    def action_of(self, index: int, slice_qty: int, obs: Observation, job: JobContext) -> Action:
        return action_of(self.actions[index], slice_qty, obs, job, self.manifest.band)

    def decide_scaled(
        self, scaled: np.ndarray, obs: Observation, job: JobContext, slice_qty: int
    ) -> tuple[Action, bool]:
        """Decide for one observation; returns (action, used_fallback)."""
        row = self.scores(scaled[None, :])[0]
        if not np.isfinite(row).all():
            self.fallbacks += 1
            return self.fallback.decide(obs, job), True
        return self.action_of(int(row.argmax()), slice_qty, obs, job), False


class PolicyRegistry:
    """Policies by name from a folder; the newest valid version wins for each new load."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._cache: dict[tuple[str, int, str], LoadedPolicy] = {}
        self._lock = threading.Lock()

    def versions(self, name: str) -> list[int]:
        d = self.folder / name
        return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit()) if d.is_dir() else []

    def names(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.iterdir() if p.is_dir() and self.versions(p.name))

    def load(self, name: str, version: int | None = None) -> LoadedPolicy:
        versions = self.versions(name)
        if not versions:
            raise PolicyError(f"no policy named {name!r} in {self.folder}")
        v = versions[-1] if version is None else version
        if v not in versions:
            raise PolicyError(f"policy {name!r} has no version {v} (has {versions})")
        vdir = self.folder / name / str(v)
        digest = sha256(vdir / ARTEFACT) if (vdir / ARTEFACT).exists() else ""
        key = (name, v, digest)
        with self._lock:
            if key not in self._cache:
                manifest, module = validate(vdir)
                self._cache[key] = LoadedPolicy(manifest, module, fallback=TWAP())
            return self._cache[key]

    def record_evaluation(self, name: str, version: int, section: str, key: str, figures: Any) -> None:
        """Add figures to a version's manifest (``evaluation[section][key]``); the artefact is untouched."""
        path = self.folder / name / str(version) / MANIFEST
        manifest = PolicyManifest.model_validate_json(path.read_bytes())
        evaluation = dict(manifest.evaluation)
        evaluation[section] = {**evaluation.get(section, {}), key: figures}
        updated = manifest.model_copy(update={"evaluation": evaluation})
        path.write_text(updated.model_dump_json(indent=2) + "\n")
        with self._lock:  # a cached copy would carry the old manifest
            self._cache = {k: v for k, v in self._cache.items() if k[:2] != (name, version)}

    def describe(self) -> list[dict[str, Any]]:
        rows = []
        for name in self.names():
            for v in self.versions(name):
                row: dict[str, Any] = {"name": name, "version": v}
                try:
                    m, _ = validate(self.folder / name / str(v))
                    row |= {"valid": True, "evaluation": m.evaluation}
                except PolicyError as exc:
                    row |= {"valid": False, "reason": str(exc)}
                rows.append(row)
        return rows
