"""The CLIP model behind the CLIP metrics. Imports torch and open_clip; nothing else in the
web-facing modules imports this file (the engine loads it only when a CLIP metric runs).

One model per process and configuration (:func:`get_clip_backend`), on CUDA when present (half
precision) else on the CPU (float32), always in inference mode; ``METRICS_DEVICE`` or the
``device`` argument overrides. Frames go through the model's own preprocessing, which is why
our absolute values differ from EvalCrafter's (it feeds raw 0-255 pixels to CLIP).

A missing or unreachable checkpoint raises :class:`BackendNotConfigured` naming the setting;
the failure is remembered for ``CLIP_RETRY_LOAD_SECONDS`` (default 300) so a worker does not
retry the load for every task. A random-weight model is built only when no weights are set
and ``CLIP_ALLOW_RANDOM_WEIGHTS`` is on (tests); it is seeded, so it is the same in every
process.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from django.conf import settings
from PIL import Image

from metrics.clip_config import ClipConfig, clip_config
from metrics.errors import BackendNotConfigured

_backends: dict[tuple, ClipBackend] = {}
_failures: dict[tuple, tuple[float, BackendNotConfigured]] = {}
_lock = threading.Lock()
TEXT_CACHE_SIZE = 4096


def resolve_device(device: str | None = None) -> str:
    wanted = device or getattr(settings, "METRICS_DEVICE", "") or ""
    return wanted or ("cuda" if torch.cuda.is_available() else "cpu")


class ClipBackend:
    def __init__(self, model: Any, preprocess: Any, tokenizer: Any, device: str, config: ClipConfig) -> None:
        self.model = model
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.device = device
        self.dtype = torch.float16 if device.startswith("cuda") else torch.float32
        self.config = config
        self._texts: OrderedDict[str, np.ndarray] = OrderedDict()

    def describe(self) -> dict[str, str]:
        return {
            "model": self.config.model,
            "weights": self.config.weights,
            "device": self.device,
            "precision": "fp16" if self.dtype == torch.float16 else "fp32",
        }

    def preprocess_frames(self, frames: np.ndarray) -> torch.Tensor:
        """The model's own preprocessing of uint8 RGB frames: (N, 3, S, S) float32 on the CPU."""
        return torch.stack([self.preprocess(Image.fromarray(frame)) for frame in frames])

    def encode_images(self, images: torch.Tensor, batch_size: int = 64) -> np.ndarray:
        """L2-normalised image embeddings, (N, D) float32."""
        out = []
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                chunk = images[start : start + batch_size].to(self.device, dtype=self.dtype, non_blocking=True)
                out.append(F.normalize(self.model.encode_image(chunk).float(), dim=-1).cpu())
        return torch.cat(out).numpy()

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """L2-normalised text embeddings, (len(texts), D) float32; truncated to the tokenizer's
        context (77 tokens for CLIP). Cached per text: many videos share one prompt."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._texts]
        if missing:
            with torch.inference_mode():
                tokens = self.tokenizer(missing).to(self.device)
                emb = F.normalize(self.model.encode_text(tokens).float(), dim=-1).cpu().numpy()
            for text, row in zip(missing, emb, strict=True):
                self._texts[text] = row
        for text in texts:
            self._texts.move_to_end(text)
        result = np.stack([self._texts[t] for t in texts])
        while len(self._texts) > TEXT_CACHE_SIZE:
            self._texts.popitem(last=False)
        return result


def _hf_cached(repo_and_file: str, cache_dir: str | None) -> str | None:
    from huggingface_hub import try_to_load_from_cache

    repo_id, filename = os.path.split(repo_and_file)
    filename = filename or "open_clip_pytorch_model.bin"
    candidates = [filename]
    if filename == "open_clip_pytorch_model.bin":
        candidates.insert(0, "open_clip_model.safetensors")
    elif filename.endswith((".bin", ".pth", ".pt")):
        candidates.insert(0, filename.rsplit(".", 1)[0] + ".safetensors")
    for name in candidates:
        found = try_to_load_from_cache(repo_id, name, cache_dir=cache_dir)
        if isinstance(found, str) and Path(found).is_file():
            return found
    return None


def _cached_checkpoint(pretrained_cfg: dict, cache_dir: str | None) -> str | None:
    """The local file of a pretrained tag, from open_clip's caches, without any network."""
    if pretrained_cfg.get("file"):
        return pretrained_cfg["file"] if Path(pretrained_cfg["file"]).is_file() else None
    if pretrained_cfg.get("hf_hub"):
        found = _hf_cached(pretrained_cfg["hf_hub"], cache_dir)
        if found:
            return found
    if pretrained_cfg.get("url"):
        path = Path(cache_dir or os.path.expanduser("~/.cache/clip")) / os.path.basename(pretrained_cfg["url"])
        if path.is_file():
            return str(path)
    return None


def _tag_kwargs(pretrained_cfg: dict | None) -> dict[str, Any]:
    if not pretrained_cfg:
        return {}
    return {
        "force_quick_gelu": bool(pretrained_cfg.get("quick_gelu", False)),
        "image_mean": pretrained_cfg.get("mean"),
        "image_std": pretrained_cfg.get("std"),
        "image_interpolation": pretrained_cfg.get("interpolation"),
        "image_resize_mode": pretrained_cfg.get("resize_mode"),
    }


def _not_configured(setting: str, message: str) -> BackendNotConfigured:
    return BackendNotConfigured("clip", setting, f"{message}; the CLIP metrics are not configured")


def _load(cfg: ClipConfig, device: str) -> ClipBackend:
    known = cfg.model.startswith(("hf-hub:", "local-dir:")) or cfg.model.replace("/", "-") in open_clip.list_models()
    if not known:
        raise _not_configured("CLIP_MODEL", f"CLIP_MODEL={cfg.model!r} is not an open_clip model")
    tag_cfg = open_clip.get_pretrained_cfg(cfg.model, cfg.pretrained) if cfg.pretrained else None
    setting = "CLIP_CHECKPOINT" if cfg.checkpoint else "CLIP_PRETRAINED"
    if cfg.checkpoint:
        if not Path(cfg.checkpoint).is_file():
            raise _not_configured(
                "CLIP_CHECKPOINT", f"CLIP_CHECKPOINT={cfg.checkpoint!r} does not exist or is not a file"
            )
        pretrained: str | None = cfg.checkpoint
    elif cfg.pretrained:
        if not tag_cfg:
            tags = open_clip.list_pretrained_tags_by_model(cfg.model)
            raise _not_configured(
                "CLIP_PRETRAINED",
                f"CLIP_PRETRAINED={cfg.pretrained!r} is not an open_clip tag of CLIP_MODEL={cfg.model!r} "
                f"(its tags: {tags})",
            )
        pretrained = cfg.pretrained if cfg.allow_download else _cached_checkpoint(tag_cfg, cfg.cache_dir)
        if pretrained is None:
            raise _not_configured(
                "CLIP_PRETRAINED",
                f"the weights of CLIP_MODEL={cfg.model!r} CLIP_PRETRAINED={cfg.pretrained!r} are not in open_clip's "
                "cache on this worker and downloads are off (CLIP_ALLOW_DOWNLOAD); set CLIP_CHECKPOINT to a local "
                "checkpoint file, or fetch the weights into the cache on a machine with internet",
            )
    elif cfg.allow_random:
        pretrained = None
    else:
        raise _not_configured(
            "CLIP_PRETRAINED",
            "neither CLIP_CHECKPOINT nor CLIP_PRETRAINED is set (random weights are allowed only in tests, "
            "with CLIP_ALLOW_RANDOM_WEIGHTS)",
        )
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise _not_configured(
            "METRICS_DEVICE", f"METRICS_DEVICE (or --device) is {device!r} but CUDA is not available on this worker"
        )
    precision = "fp16" if device.startswith("cuda") else "fp32"
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # a random-weight (test) model is the same in every process
            model, _, preprocess = open_clip.create_model_and_transforms(
                cfg.model,
                pretrained=pretrained,
                precision=precision,
                device=device,
                cache_dir=cfg.cache_dir,
                **_tag_kwargs(tag_cfg),
            )
        tokenizer = open_clip.get_tokenizer(cfg.model, cache_dir=cfg.cache_dir)
    except Exception as exc:
        raise _not_configured(setting, f"loading CLIP_MODEL={cfg.model!r} with {setting} failed: {exc}") from exc
    model.eval()
    return ClipBackend(model, preprocess, tokenizer, device, cfg)


def get_clip_backend(device: str | None = None) -> ClipBackend:
    """The process's CLIP model for the current settings (loaded on first use)."""
    cfg = clip_config()
    dev = resolve_device(device)
    key = (cfg, dev)
    retry_after = float(getattr(settings, "CLIP_RETRY_LOAD_SECONDS", 300))
    with _lock:
        if key in _backends:
            return _backends[key]
        failed = _failures.get(key)
        if failed and time.monotonic() - failed[0] < retry_after:
            raise failed[1]
        try:
            backend = _load(cfg, dev)
        except BackendNotConfigured as exc:
            _failures[key] = (time.monotonic(), exc)
            raise
        _failures.pop(key, None)
        _backends[key] = backend
        return backend


def clear_cache() -> None:
    """Forget loaded models and remembered failures (tests, or after fixing the weights)."""
    with _lock:
        _backends.clear()
        _failures.clear()
