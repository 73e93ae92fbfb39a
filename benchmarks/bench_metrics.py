"""Metric throughput: the whole pipeline against each of its stages alone, in the same run.

    python benchmarks/bench_metrics.py [--videos 12] [--device cpu|cuda] [--workers N]
                                       [--batch-frames 64] [--out benchmarks/results/metrics.json]

Clips: 5-second 512x320 24 fps H.264 (a textured pan, x264 ``medium`` CRF 23), generated once
into ``.bench/metrics/``. Per metric group:

- ``clip`` (clip_score, clip_temp, first_frame_consistency, background_consistency): decoding
  alone (16 uniform frames per clip, a thread pool on all cores), the model's own image encode
  alone (ViT-B-32, ``pretrained=None``: speed does not depend on the weights) at the pipeline's
  batch size, and the pipeline (``metrics.engine.Engine``: decode threads feeding the model).
- ``motion`` (flow_score, dynamic_degree, warping_error, temporal_flickering): decoding alone,
  optical flow and the metric math alone on already-decoded frames (all cores), and the pipeline.
- ``all``: every built-in metric at once, the way a worker runs them.

Efficiency = pipeline throughput / the slowest stage's throughput (target >= 0.8: decode and
inference overlapped, not serialised). Each stage runs ``--rounds`` times, interleaved with the
others, and keeps its best time (the machine may be shared). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

CLIP_METRICS = ["clip_score", "clip_temp", "first_frame_consistency", "background_consistency"]
MOTION_METRICS = ["flow_score", "dynamic_degree", "warping_error", "temporal_flickering"]
WIDTH, HEIGHT, FPS, SECONDS = 512, 320, 24, 5


def machine() -> dict:
    def run(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    model = next((line.split(":", 1)[1].strip() for line in run(["lscpu"]).splitlines() if "Model name" in line), "")
    import torch

    return {
        "nproc": int(run(["nproc"]) or os.cpu_count() or 0),
        "cpu": model or platform.processor(),
        "memory": run(["free", "-h"]).splitlines()[1] if run(["free", "-h"]) else "",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "ffmpeg": run(["ffmpeg", "-version"]).splitlines()[0] if run(["ffmpeg", "-version"]) else "",
    }


def make_clips(n: int, folder: Path) -> list[Path]:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    frames_n = FPS * SECONDS
    for i in range(n):
        path = folder / f"clip{i:02d}_{WIDTH}x{HEIGHT}_{FPS}fps.mp4"
        paths.append(path)
        if path.is_file():
            continue
        k = 1 + i % 4
        rng = np.random.default_rng(i)
        big = cv2.GaussianBlur(rng.random((HEIGHT, WIDTH + k * frames_n + 8, 3)).astype(np.float32), (0, 0), 2.5)
        big = ((big - big.min()) / (big.max() - big.min()) * 255).astype(np.uint8)
        raw = np.stack([big[:, k * t : k * t + WIDTH] for t in range(frames_n)]).tobytes()
        cmd = [
            "ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
            "-s", f"{WIDTH}x{HEIGHT}", "-r", str(FPS), "-i", "-", "-c:v", "libx264", "-preset", "medium",
            "-crf", "23", "-pix_fmt", "yuv420p", str(path),
        ]  # fmt: skip
        subprocess.run(cmd, input=raw, check=True)
    return paths


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def best_of(rounds: int, stages: dict) -> dict:
    """Run the stages in turn, ``rounds`` times, and keep each one's best time: the machine may
    be shared, and interleaving exposes every stage to the same background load."""
    seen: dict[str, list[float]] = {name: [] for name in stages}
    for _ in range(rounds):
        for name, run in stages.items():
            seen[name].append(run())
    best = {name: min(times) for name, times in seen.items()}
    best["all"] = {name: [round(t, 3) for t in times] for name, times in seen.items()}
    return best


def stage(name: str, seconds: float, videos: int, frames: int, frame_unit: str) -> dict:
    return {
        "stage": name,
        "seconds": round(seconds, 3),
        "videos_per_s": round(videos / seconds, 3),
        "frames_per_s": round(frames / seconds, 2),
        "frame_unit": frame_unit,
    }


def decode_alone(paths: list[Path], specs, workers: int) -> float:
    from metrics.sampling import sample_video

    with ThreadPoolExecutor(workers) as pool:
        return timed(lambda: list(pool.map(lambda p: sample_video(p, specs), paths)))


def run_pipeline(paths: list[Path], names: list[str], device: str | None, workers: int, batch_frames: int) -> float:
    from metrics.engine import Engine
    from metrics.inputs import VideoJob
    from metrics.registry import get_metric

    metrics = [get_metric(n) for n in names]
    jobs = [VideoJob(key=i, path=p, metrics=metrics, text="a camera pans over a wall", tags={"motion": "slow"})
            for i, p in enumerate(paths)]  # fmt: skip
    engine = Engine(device=device, workers=workers, batch_frames=batch_frames)
    results: list = []
    seconds = timed(lambda: results.extend(engine.run(jobs)))
    failed = [(r.key, s.metric, s.error) for r in results for s in r.scores if not s.ok]
    if failed or any(r.not_configured for r in results):
        raise SystemExit(f"pipeline failed: {failed[:3]} {results[0].not_configured}")
    return seconds


def bench_clip(paths, device, workers, batch_frames, rounds: int) -> dict:
    import torch

    from metrics.clip_backend import get_clip_backend
    from metrics.definitions.clip import CLIP_FRAMES
    from metrics.sampling import sample_video

    backend = get_clip_backend(device)
    n = len(paths)
    per_video = CLIP_FRAMES.count
    # model alone: the same number of frames, preprocessed beforehand, at the same batch size
    frames = sample_video(paths[0], [CLIP_FRAMES]).specs[CLIP_FRAMES.key].frames
    images = backend.preprocess_frames(frames)
    images = images.repeat((batch_frames + len(images) - 1) // len(images), 1, 1, 1)[:batch_frames]
    backend.encode_images(images[:8], batch_size=batch_frames)  # warm-up
    batches = max(1, round(n * per_video / batch_frames))

    def encode() -> None:
        for _ in range(batches):
            backend.encode_images(images, batch_size=batch_frames)
        if device and device.startswith("cuda"):
            torch.cuda.synchronize()

    model_frames = batches * batch_frames
    runs = best_of(
        rounds,
        {
            "decode": lambda: decode_alone(paths, [CLIP_FRAMES], workers),
            "model": lambda: timed(encode),
            "pipeline": lambda: run_pipeline(paths, CLIP_METRICS, device, workers, batch_frames),
        },
    )
    prep_s = timed(lambda: [backend.preprocess_frames(frames) for _ in range(n)])
    stages = [
        stage("decode alone", runs["decode"], n, n * FPS * SECONDS, "native frames decoded"),
        stage("model encode alone", runs["model"], model_frames / per_video, model_frames, "frames encoded"),
        stage("pipeline", runs["pipeline"], n, n * per_video, "frames encoded"),
    ]
    return {"stages": stages, "all_seconds": runs["all"], "preprocess_s_per_video_one_core": round(prep_s / n, 4)}


def bench_motion(paths, device, workers, rounds: int) -> dict:
    from metrics.definitions.motion import MOTION_FRAMES
    from metrics.definitions.pixel import ADJACENT_FRAMES
    from metrics.engine import Engine
    from metrics.inputs import InputContext, VideoJob
    from metrics.registry import get_metric
    from metrics.sampling import sample_video

    n = len(paths)
    specs = [MOTION_FRAMES, ADJACENT_FRAMES]
    samples = [sample_video(p, specs) for p in paths]
    pairs = sum(len(s.specs[MOTION_FRAMES.key].pairs) for s in samples)
    metrics = [get_metric(m) for m in MOTION_METRICS]
    engine = Engine(device=device, workers=workers)
    engine._prepare_backends(metrics)

    def work(sample) -> None:
        ctx = InputContext(VideoJob(0, Path(), metrics), sample, device)
        for metric in metrics:
            engine._evaluate(metric, ctx, {})

    def flow_alone() -> float:
        with ThreadPoolExecutor(workers) as pool:
            return timed(lambda: list(pool.map(work, samples)))

    runs = best_of(
        rounds,
        {
            "decode": lambda: decode_alone(paths, specs, workers),
            "flow": flow_alone,
            "pipeline": lambda: run_pipeline(paths, MOTION_METRICS, device, workers, 64),
        },
    )
    return {
        "stages": [
            stage("decode alone", runs["decode"], n, n * FPS * SECONDS, "native frames decoded"),
            stage("flow + metrics alone", runs["flow"], n, pairs * 2, "flow fields (fwd+bwd)"),
            stage("pipeline", runs["pipeline"], n, pairs * 2, "flow fields (fwd+bwd)"),
        ],
        "all_seconds": runs["all"],
    }


def bench_all(paths, device, workers, batch_frames, rounds: int) -> dict:
    names = CLIP_METRICS + MOTION_METRICS + ["motion_ac"]
    runs = best_of(rounds, {"pipeline": lambda: run_pipeline(paths, names, device, workers, batch_frames)})
    n = len(paths)
    return {
        "stages": [stage("pipeline (all 9 metrics)", runs["pipeline"], n, n * FPS * SECONDS, "native frames covered")],
        "all_seconds": runs["all"],
    }


def efficiency(group: dict) -> None:
    stages = group["stages"]
    alone = [s for s in stages if "alone" in s["stage"]]
    pipe = next(s for s in stages if s["stage"].startswith("pipeline"))
    if alone:
        slowest = min(alone, key=lambda s: s["videos_per_s"])
        group["slowest_stage"] = slowest["stage"]
        group["efficiency"] = round(pipe["videos_per_s"] / slowest["videos_per_s"], 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=12)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda / cuda:N")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="decode threads (default: all cores)")
    parser.add_argument("--batch-frames", type=int, default=64, help="CLIP frames per forward pass")
    parser.add_argument("--groups", default="clip,motion,all")
    parser.add_argument("--rounds", type=int, default=3, help="repeat each stage, keep the best (default 3)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "metrics.json"))
    args = parser.parse_args()

    settings.CLIP_MODEL, settings.CLIP_PRETRAINED, settings.CLIP_CHECKPOINT = "ViT-B-32", "", ""
    settings.CLIP_ALLOW_RANDOM_WEIGHTS = True  # speed does not depend on the weights
    settings.RAFT_WEIGHTS = ""
    settings.METRICS_DEVICE = args.device
    import logging

    logging.getLogger().setLevel(logging.WARNING)  # open_clip logs its loading at INFO

    paths = make_clips(args.videos, ROOT / ".bench" / "metrics")
    groups = args.groups.split(",")
    results: dict = {}
    load_before = os.getloadavg()
    if "clip" in groups:
        results["clip"] = bench_clip(paths, args.device, args.workers, args.batch_frames, args.rounds)
    if "motion" in groups:
        results["motion"] = bench_motion(paths, args.device, args.workers, args.rounds)
    if "all" in groups:
        results["all"] = bench_all(paths, args.device, args.workers, args.batch_frames, args.rounds)
    for group in results.values():
        efficiency(group)

    info = machine()
    report = {
        "benchmark": "metrics",
        "clips": {"count": args.videos, "width": WIDTH, "height": HEIGHT, "fps": FPS, "seconds": SECONDS},
        "config": {
            "device": args.device,
            "workers": args.workers,
            "batch_frames": args.batch_frames,
            "clip_model": "ViT-B-32 (pretrained=None)",
            "rounds": args.rounds,
        },
        "load_average": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in os.getloadavg()]},
        "machine": info,
        "groups": results,
    }
    print(f"machine: {info['nproc']} cores, {info['cpu']}, torch {info['torch']} ({info['torch_threads']} threads)")
    print(f"load average before/after: {report['load_average']['before']} / {report['load_average']['after']}")
    print(f"{'group':8} {'stage':28} {'seconds':>8} {'videos/s':>9} {'frames/s':>9}  unit")
    for name, group in results.items():
        for s in group["stages"]:
            print(
                f"{name:8} {s['stage']:28} {s['seconds']:8.2f} {s['videos_per_s']:9.3f} {s['frames_per_s']:9.1f}"
                f"  {s['frame_unit']}"
            )
        if "efficiency" in group:
            print(f"{name:8} pipeline / slowest stage ({group['slowest_stage']}) = {group['efficiency']:.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
