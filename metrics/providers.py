"""Batched model stages: inputs made by a model for frames of several videos at once.

A provider is prepared once per run in the main thread (:meth:`ensure_ready`, which loads the
model or raises BackendNotConfigured naming the setting), turns one video's frames into a
payload on a CPU thread (:meth:`prepare`, e.g. the model's preprocessing), and runs batches of
payloads from several videos in the main thread (:meth:`run`). Torch is imported only inside
these methods.
"""

from __future__ import annotations

from typing import Any, Protocol

from metrics.registry import FrameSpec


class ModelProvider(Protocol):
    name: str

    def ensure_ready(self, device: str | None) -> dict[str, Any]: ...

    def prepare(self, ctx: Any, spec: FrameSpec) -> Any: ...

    def units(self, payload: Any) -> int: ...

    def run(self, payloads: list[Any], batch_size: int) -> list[dict[str, Any]]: ...


class ClipProvider:
    """Makes ``clip_image`` (per-frame embeddings) and ``clip_text`` (the prompt's)."""

    name = "clip"

    def __init__(self) -> None:
        self.backend: Any = None

    def ensure_ready(self, device: str | None) -> dict[str, Any]:
        from metrics.clip_backend import get_clip_backend

        self.backend = get_clip_backend(device)
        return self.backend.describe()

    def prepare(self, ctx: Any, spec: FrameSpec) -> Any:
        return {"images": self.backend.preprocess_frames(ctx.sample.specs[spec.key].frames), "text": ctx.job.text}

    def units(self, payload: Any) -> int:
        return int(payload["images"].shape[0])

    def run(self, payloads: list[Any], batch_size: int) -> list[dict[str, Any]]:
        import torch

        images = self.backend.encode_images(torch.cat([p["images"] for p in payloads]), batch_size=batch_size)
        texts = self.backend.encode_texts([p["text"] for p in payloads])
        out, start = [], 0
        for i, payload in enumerate(payloads):
            n = self.units(payload)
            out.append({"clip_image": images[start : start + n], "clip_text": texts[i]})
            start += n
        return out


PROVIDERS: dict[str, type] = {"clip": ClipProvider}


def register_provider(name: str, factory: type) -> None:
    """Plug in another batched model (e.g. a learned quality model with its own weights)."""
    PROVIDERS[name] = factory
