"""The scoring pipeline, without a database: decode and CPU work overlapped with model batches.

A thread pool runs the CPU stage of each video (one ffmpeg decode through a pipe, the CPU
inputs such as optical flow, the CPU metrics, and the model's preprocessing) several videos
ahead, while the main thread runs the model on batches of frames gathered from several videos
(e.g. CLIP on 64 frames = 4 videos at a time) and finishes the model metrics. So decoding and
inference overlap instead of taking turns. Results come back per video as each is complete.

Failures: a video that cannot be decoded, or a metric whose function refuses its input, gives
failed scores with the reason; a model that is not configured leaves its metrics out of the
results (``VideoResult.not_configured``); anything else (a worker losing its GPU, a time
limit) propagates so the task can retry.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from billiard.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from annotation.storage import MediaObjectMissing, media_local_file
from metrics.backends import backend_static_problem
from metrics.errors import BackendNotConfigured, PermanentMetricError
from metrics.flow import FARNEBACK, RAFT_ITERATIONS, ensure_flow_backend, flow_backend_name
from metrics.inputs import InputContext, VideoJob
from metrics.providers import PROVIDERS
from metrics.registry import Metric
from metrics.sampling import ProcessRegistry, sample_video

FLOW_INPUTS = {"flow", "flow_backward"}
#: Exceptions that must reach the task (to retry) rather than become a stored failure.
TRANSIENT = (MemoryError, SoftTimeLimitExceeded, TimeoutError, ConnectionError)


@dataclass
class ScoreResult:
    metric: str
    version: str
    value: float | None
    error: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass
class VideoResult:
    key: Any
    scores: list[ScoreResult]
    not_configured: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class _Partial:
    job: VideoJob
    ctx: InputContext | None
    scores: list[ScoreResult]
    waiting: list[Metric]  # metrics that need a model stage
    payloads: dict[tuple[str, str], Any]
    started: float
    decode_details: dict[str, Any] = field(default_factory=dict)


def default_workers() -> int:
    return int(getattr(settings, "METRICS_DECODE_WORKERS", 0) or os.cpu_count() or 1)


class Engine:
    """Scores videos. One instance per task or command; models stay loaded per process."""

    def __init__(
        self,
        *,
        device: str | None = None,
        workers: int | None = None,
        batch_frames: int | None = None,
        prefetch: int | None = None,
        decode_threads: int = 1,
    ) -> None:
        self.device = device or getattr(settings, "METRICS_DEVICE", "") or None
        self.workers = max(1, workers or default_workers())
        self.batch_frames = max(1, batch_frames or int(getattr(settings, "METRICS_CLIP_BATCH_FRAMES", 64)))
        self.prefetch = prefetch or self.workers + 4
        self.decode_threads = decode_threads
        self.providers: dict[str, Any] = {}
        self.backends: dict[str, dict[str, Any]] = {}
        self.problems: dict[str, BackendNotConfigured] = {}
        self._processes = ProcessRegistry()

    # --- preparation (main thread) ---------------------------------------------------------
    def _prepare_backends(self, metrics: Iterable[Metric]) -> None:
        metrics = list(metrics)
        for name in {m.model_provider for m in metrics} - {None} - set(self.providers) - set(self.problems):
            setting, problem = backend_static_problem(name)
            if problem:  # known from the settings alone: do not even import the model's libraries
                self.problems[name] = BackendNotConfigured(
                    name, setting, f"{problem}; the {name.upper()} metrics are not configured"
                )
                continue
            provider = PROVIDERS[name]()
            try:
                self.backends[name] = provider.ensure_ready(self.device)
                self.providers[name] = provider
            except BackendNotConfigured as exc:
                self.problems[name] = exc
        if any(FLOW_INPUTS & set(m.inputs) for m in metrics) and "flow" not in self.backends | self.problems:
            try:
                ensure_flow_backend(self.device)
                backend = flow_backend_name()
                params = FARNEBACK if backend == "farneback" else {"iterations": RAFT_ITERATIONS}
                self.backends["flow"] = {"flow": backend, "params": params}
            except BackendNotConfigured as exc:
                self.problems["flow"] = exc

    def _problem(self, metric: Metric) -> BackendNotConfigured | None:
        if metric.model_provider and metric.model_provider in self.problems:
            return self.problems[metric.model_provider]
        if FLOW_INPUTS & set(metric.inputs) and "flow" in self.problems:
            return self.problems["flow"]
        return None

    def _backend_details(self, metric: Metric) -> dict[str, Any]:
        if metric.model_provider:
            return dict(self.backends.get(metric.model_provider, {}))
        if FLOW_INPUTS & set(metric.inputs):
            return dict(self.backends.get("flow", {}))
        return {}

    # --- per metric -------------------------------------------------------------------------
    def _evaluate(self, metric: Metric, ctx: InputContext, decode: dict[str, Any]) -> ScoreResult:
        details = {"sampling": ctx.sampling.get(metric.frames.key, {}), "decode": decode}
        backend = self._backend_details(metric)
        if backend:
            details["backend"] = backend
        try:
            kwargs = {name: ctx.value(name, metric.frames) for name in metric.inputs}
            value = float(metric.fn(**kwargs))
            if not math.isfinite(value):
                raise PermanentMetricError(f"the metric gave a non-finite value ({value})")
        except TRANSIENT:
            raise
        except Exception as exc:  # deterministic given the frames: stored as a failure
            reason = str(exc) if isinstance(exc, PermanentMetricError) else f"{type(exc).__name__}: {exc}"
            return ScoreResult(metric.name, metric.current_version, None, reason[:1000] or type(exc).__name__, details)
        return ScoreResult(metric.name, metric.current_version, value, "", details)

    # --- CPU stage (pool threads) -----------------------------------------------------------
    def _cpu_stage(self, job: VideoJob, metrics: list[Metric]) -> _Partial:
        started = time.perf_counter()
        if not metrics:
            return _Partial(job, None, [], [], {}, started)
        specs = {m.frames.key: m.frames for m in metrics}
        try:
            # In s3 mode the video is fetched to a scratch file for the decode only; the frames
            # are in memory once sample_video returns, so the copy goes before the metrics run.
            with media_local_file(job.path) as path:
                sample = sample_video(
                    path,
                    specs.values(),
                    native_size=job.native_size,
                    threads=self.decode_threads,
                    processes=self._processes,
                )
        except MediaObjectMissing as exc:  # not in the bucket: no retry would find it
            failed = [ScoreResult(m.name, m.current_version, None, str(exc), {"stage": "fetch"}) for m in metrics]
            return _Partial(job, None, failed, [], {}, started)
        except PermanentMetricError as exc:
            failed = [ScoreResult(m.name, m.current_version, None, str(exc), {"stage": "decode"}) for m in metrics]
            return _Partial(job, None, failed, [], {}, started)
        info = sample.info
        decode = {
            "file_size": [info.width, info.height],
            "frame_count": info.frame_count,
            "codec": info.codec,
            "size": list(sample.decode_size),
            "frames": sample.decoded_frames,
        }
        ctx = InputContext(job, sample, self.device)
        scores = [self._evaluate(m, ctx, decode) for m in metrics if not m.model_provider]
        waiting = [m for m in metrics if m.model_provider]
        payloads: dict[tuple[str, str], Any] = {}
        for m in waiting:
            key = (m.model_provider, m.frames.key)
            if key not in payloads:
                payloads[key] = self.providers[m.model_provider].prepare(ctx, m.frames)
        ctx.release({name for m in waiting for name in m.inputs})
        return _Partial(job, ctx, scores, waiting, payloads, started, decode)

    # --- model stage (main thread) ----------------------------------------------------------
    def _flush(self, batch: list[_Partial]) -> Iterator[VideoResult]:
        for key in dict.fromkeys(k for p in batch for k in p.payloads):
            members = [p for p in batch if key in p.payloads]
            outputs = self.providers[key[0]].run([p.payloads[key] for p in members], self.batch_frames)
            for partial, out in zip(members, outputs, strict=True):
                partial.ctx.model_outputs.update(out)
        for partial in batch:
            partial.scores.extend(self._evaluate(m, partial.ctx, partial.decode_details) for m in partial.waiting)
            yield self._result(partial)

    def _result(self, partial: _Partial) -> VideoResult:
        not_configured = {m.name: str(self._problem(m)) for m in partial.job.metrics if self._problem(m) is not None}
        return VideoResult(partial.job.key, partial.scores, not_configured, time.perf_counter() - partial.started)

    def run(self, jobs: Iterable[VideoJob]) -> Iterator[VideoResult]:
        """Score every job; yields one VideoResult per job as soon as it is complete."""
        jobs = list(jobs)
        self._prepare_backends(m for job in jobs for m in job.metrics)
        pending: deque[Future] = deque()
        todo = iter(jobs)
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="metrics-cpu")
        self._processes = ProcessRegistry()

        def submit_next() -> None:
            for job in todo:
                runnable = [m for m in job.metrics if self._problem(m) is None]
                pending.append(pool.submit(self._cpu_stage, job, runnable))
                return

        batch: list[_Partial] = []
        units = 0
        try:
            for _ in range(self.prefetch):
                submit_next()
            while pending:
                partial = pending.popleft().result()
                submit_next()
                if not partial.payloads:
                    yield self._result(partial)
                    continue
                batch.append(partial)
                units += sum(self.providers[k[0]].units(v) for k, v in partial.payloads.items())
                if units >= self.batch_frames:
                    yield from self._flush(batch)
                    batch, units = [], 0
            if batch:
                yield from self._flush(batch)
        finally:
            if pending:  # interrupted (time limit, error, consumer stopped): stop decoders now
                self._processes.cancel()
                for future in pending:
                    future.cancel()
            pool.shutdown(wait=not pending, cancel_futures=True)
