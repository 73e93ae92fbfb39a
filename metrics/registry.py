"""The metric registry: what each metric is, what it needs, and which ones are enabled.

A metric is one :class:`Metric` entry wrapping a pure function over arrays. Adding a metric is
one module that calls :func:`register` (see ``metrics/definitions/``); settings choose which
run: ``METRICS_ENABLED`` (empty: all registered), ``METRICS_DISABLED``, and ``METRICS_EXTRA``
(dotted paths of modules that register metrics, or of :class:`Metric` objects).

This module imports neither torch nor OpenCV: the web process reads the registry to count
pending work and label scores, and must never load them.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

GROUP_CLIP = "clip"
GROUP_MOTION = "motion"
GROUP_PIXEL = "pixel"

BUILTIN_MODULES = (
    "metrics.definitions.clip",
    "metrics.definitions.motion",
    "metrics.definitions.pixel",
)


@dataclass(frozen=True)
class FrameSpec:
    """Which frames a metric reads, from the one decode of its video.

    ``mode``:
      - ``"uniform"``: ``count`` frames spread evenly over the whole video (first and last
        included); pairs are consecutive samples.
      - ``"rate"``: frames ``round(native_fps / rate)`` native frames apart (the *step*),
        at most ``count`` of them; a longer video is covered by evenly spread segments of
        ``segment`` such frames, and pairs never straddle two segments.
      - ``"adjacent"``: ``count`` pairs of truly consecutive native frames (i, i+1), spread
        evenly over the video.

    Size: the short side scaled to ``short_side`` and/or the long side bounded by
    ``long_side``; frames are never upscaled.
    """

    key: str
    mode: str
    count: int
    short_side: int | None = None
    long_side: int | None = None
    rate: float | None = None
    segment: int = 16

    def __post_init__(self) -> None:
        if self.mode not in ("uniform", "rate", "adjacent"):
            raise ValueError(f"unknown frame sampling mode {self.mode!r}")
        if self.mode == "rate" and not self.rate:
            raise ValueError("a 'rate' frame spec needs rate=")
        if self.count < 1:
            raise ValueError("count must be at least 1")

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "mode": self.mode, "count": self.count}
        for name in ("short_side", "long_side", "rate"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.mode == "rate":
            out["segment"] = self.segment
        return out


@dataclass(frozen=True)
class Metric:
    """One registered metric.

    ``fn`` is called with keyword arguments named by ``inputs`` (see :data:`INPUTS`) and
    returns a float. ``higher_is_better`` is ``None`` for descriptive metrics. ``backend``
    returns the settings-dependent part of the version (model and weights, flow backend), so
    that changing it makes every stored score stale. ``applies_to`` receives the prompt's
    tags; a metric that does not apply to a video is neither computed nor counted as pending.
    """

    name: str
    version: str
    frames: FrameSpec
    inputs: tuple[str, ...]
    fn: Callable[..., float]
    higher_is_better: bool | None
    range: tuple[float | None, float | None]
    group: str
    description: str = ""
    backend: Callable[[], str] | None = None
    applies_to: Callable[[Mapping[str, Any]], bool] | None = None
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        unknown = [name for name in self.inputs if name not in INPUTS]
        if unknown:
            raise ValueError(f"metric {self.name!r} asks for unknown inputs {unknown}; known: {sorted(INPUTS)}")

    @property
    def current_version(self) -> str:
        """The version stored with new scores: the definition's, plus its backend's tag."""
        if self.backend is None:
            return self.version
        return f"{self.version}+{self.backend()}"

    @property
    def model_provider(self) -> str | None:
        """The batched model stage this metric waits for (e.g. ``"clip"``), if any."""
        for name in self.inputs:
            provider = INPUTS[name].provider
            if provider:
                return provider
        return None

    def applies(self, tags: Mapping[str, Any] | None) -> bool:
        return self.applies_to is None or bool(self.applies_to(tags or {}))

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.current_version,
            "group": self.group,
            "higher_is_better": self.higher_is_better,
            "range": list(self.range),
            "frames": self.frames.describe(),
            "inputs": list(self.inputs),
            "description": self.description,
        }


@dataclass(frozen=True)
class InputKind:
    """An input a metric may ask for. ``provider`` names the batched model stage that makes
    it (``None``: made on the CPU from the video's frames, see ``metrics/inputs.py``)."""

    name: str
    doc: str
    provider: str | None = None


INPUTS: dict[str, InputKind] = {}


def register_input(kind: InputKind) -> InputKind:
    INPUTS[kind.name] = kind
    return kind


for _kind in (
    InputKind("frames", "uint8 RGB frames of the metric's FrameSpec, shape (N, H, W, 3)"),
    InputKind("pairs", "index pairs (i, j) into frames that a temporal metric compares"),
    InputKind("sampling", "metrics.sampling.SpecFrames: scale to native pixels, step, sizes"),
    InputKind("text", "the prompt's text"),
    InputKind("tags", "the prompt's tags (dict)"),
    InputKind("flow", "forward optical flow per pair, (P, H, W, 2) float32, sampled pixels"),
    InputKind("flow_backward", "backward optical flow per pair (j -> i), like flow"),
    InputKind("clip_image", "L2-normalised CLIP image embeddings per frame, (N, D)", provider="clip"),
    InputKind("clip_text", "L2-normalised CLIP text embedding of the prompt, (D,)", provider="clip"),
):
    register_input(_kind)


_REGISTRY: dict[str, Metric] = {}
_loaded: set[str] = set()
_lock = threading.RLock()


def register(metric: Metric) -> Metric:
    """Add (or replace, on re-import) a metric. Returns it, so it can be used as a value."""
    with _lock:
        _REGISTRY[metric.name] = metric
    return metric


def _load(path: str) -> None:
    """Import a module that registers metrics, or register the Metric a dotted path names."""
    if path in _loaded:
        return
    try:
        importlib.import_module(path)
    except ModuleNotFoundError as module_error:
        module_name, _, attr = path.rpartition(".")
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError, ValueError):
            raise ImproperlyConfigured(f"METRICS_EXTRA: cannot import {path!r}: {module_error}") from None
        if not isinstance(obj, Metric):
            raise ImproperlyConfigured(f"METRICS_EXTRA: {path!r} is not a metrics.registry.Metric") from None
        register(obj)
    _loaded.add(path)


def all_metrics() -> dict[str, Metric]:
    """Every registered metric (built-in and ``METRICS_EXTRA``), enabled or not."""
    with _lock:
        for path in (*BUILTIN_MODULES, *getattr(settings, "METRICS_EXTRA", [])):
            _load(path)
        return dict(_REGISTRY)


def get_metric(name: str) -> Metric:
    try:
        return all_metrics()[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; registered: {sorted(all_metrics())}") from None


def enabled_metrics() -> list[Metric]:
    """The metrics workers compute, in registration order, per the settings."""
    registered = all_metrics()
    wanted = list(getattr(settings, "METRICS_ENABLED", []) or [])
    disabled = set(getattr(settings, "METRICS_DISABLED", []) or [])
    unknown = [name for name in (*wanted, *disabled) if name not in registered]
    if unknown:
        raise ImproperlyConfigured(
            f"METRICS_ENABLED/METRICS_DISABLED name unknown metrics {unknown}; registered: {sorted(registered)}"
        )
    names = wanted or list(registered)
    return [registered[name] for name in names if name not in disabled]


def resolve_metrics(names: list[str] | None) -> list[Metric]:
    """The enabled metrics, or the named subset of them (unknown or disabled names refused)."""
    enabled = enabled_metrics()
    if not names:
        return enabled
    by_name = {metric.name: metric for metric in enabled}
    missing = [name for name in names if name not in by_name]
    if missing:
        raise ValueError(f"metrics not registered or not enabled: {missing}; enabled: {sorted(by_name)}")
    return [by_name[name] for name in dict.fromkeys(names)]


def current_versions() -> dict[str, str]:
    """Registered metric name -> the version new scores are stored under."""
    return {name: metric.current_version for name, metric in all_metrics().items()}
