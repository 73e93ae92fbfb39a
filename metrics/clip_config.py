"""CLIP settings read without importing torch: the weights' identity (part of the CLIP
metrics' version) and the problems visible from this process alone.

Settings: ``CLIP_MODEL`` (open_clip model name), ``CLIP_CHECKPOINT`` (a local checkpoint file;
wins when set), ``CLIP_PRETRAINED`` (an open_clip pretrained tag, looked up in open_clip's
cache; with a checkpoint it names the tag the file came from, for its preprocessing),
``CLIP_ALLOW_DOWNLOAD`` (default False: workers never reach the network),
``CLIP_ALLOW_RANDOM_WEIGHTS`` (default False; tests only), ``CLIP_CACHE_DIR`` (open_clip's
cache directory, default its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings


@dataclass(frozen=True)
class ClipConfig:
    model: str
    pretrained: str
    checkpoint: str
    allow_download: bool
    allow_random: bool
    cache_dir: str | None

    @property
    def weights(self) -> str:
        if self.checkpoint:
            return f"ckpt:{Path(self.checkpoint).name}"
        return self.pretrained or "random"

    @property
    def identity(self) -> str:
        """e.g. ``ViT-B-32/openai``; part of the version of every CLIP metric."""
        return f"{self.model}/{self.weights}"


def clip_config() -> ClipConfig:
    return ClipConfig(
        model=getattr(settings, "CLIP_MODEL", "ViT-B-32") or "ViT-B-32",
        pretrained=getattr(settings, "CLIP_PRETRAINED", "") or "",
        checkpoint=getattr(settings, "CLIP_CHECKPOINT", "") or "",
        allow_download=bool(getattr(settings, "CLIP_ALLOW_DOWNLOAD", False)),
        allow_random=bool(getattr(settings, "CLIP_ALLOW_RANDOM_WEIGHTS", False)),
        cache_dir=getattr(settings, "CLIP_CACHE_DIR", None) or None,
    )


def clip_identity() -> str:
    return clip_config().identity


def clip_static_problem() -> tuple[str, str]:
    """(setting, message) saying why the CLIP metrics cannot work, as far as settings alone
    tell; ("", "") when they may. Whether a pretrained tag is in a worker's cache only the
    worker knows (it reports it in MetricBackendStatus)."""
    cfg = clip_config()
    if cfg.checkpoint:
        if not Path(cfg.checkpoint).is_file():
            return "CLIP_CHECKPOINT", f"CLIP_CHECKPOINT={cfg.checkpoint!r} does not exist or is not a file"
        return "", ""
    if not cfg.pretrained and not cfg.allow_random:
        return "CLIP_PRETRAINED", (
            "neither CLIP_CHECKPOINT nor CLIP_PRETRAINED is set (random weights are allowed only in "
            "tests, with CLIP_ALLOW_RANDOM_WEIGHTS)"
        )
    return "", ""
