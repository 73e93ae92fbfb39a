# syntax=docker/dockerfile:1
# The metrics worker image: everything in requirements.txt, including PyPI's CUDA build of torch
# (requirements/torch.txt), whose wheels bring the CUDA runtime libraries with them. The host
# needs only the NVIDIA driver and the NVIDIA Container Toolkit; docker-compose.yml reserves the
# GPUs. Model weights are not baked in: they come from the "weights" volume (CLIP_CHECKPOINT,
# RAFT_WEIGHTS).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings \
    MEDIA_ROOT=/srv/media \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

# ffmpeg decodes the frames the metrics read.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 vidjudge \
    && useradd --system --uid 10001 --gid vidjudge --home-dir /app --no-create-home --shell /usr/sbin/nologin vidjudge

WORKDIR /app
COPY requirements.txt ./
COPY requirements/ requirements/
RUN pip install -r requirements.txt

COPY . .
RUN mkdir -p /app/var /srv/media /weights \
    && chown -R vidjudge:vidjudge /app/var /srv/media /weights

# Numeric, so that Kubernetes-style runAsNonRoot checks and host tools can verify it.
USER 10001:10001
CMD ["celery", "-A", "config", "worker", "-Q", "metrics", "-n", "metrics@%h", "--concurrency", "1", "-l", "INFO"]
