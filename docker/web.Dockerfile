# syntax=docker/dockerfile:1
# The web image: gunicorn, the media worker (ffmpeg) and flower. No torch: requirements/base.txt
# and metrics-cpu.txt only, so it stays small and never loads CUDA (see docker/worker.Dockerfile).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings \
    STATIC_ROOT=/srv/static \
    MEDIA_ROOT=/srv/media \
    EXPORT_ROOT=/srv/exports \
    IMPORT_ROOTS=/srv/imports

# ffmpeg/ffprobe for the media pipeline; DejaVu for the frames drawn by the demo clips.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 vidjudge \
    && useradd --system --uid 10001 --gid vidjudge --home-dir /app --no-create-home --shell /usr/sbin/nologin vidjudge

WORKDIR /app
COPY requirements/base.txt requirements/metrics-cpu.txt requirements/
RUN pip install -r requirements/base.txt -r requirements/metrics-cpu.txt

COPY . .
# Static files are collected at build time (whitenoise serves them from the image); the
# docker-compose "migrate" service copies them into the static volume that nginx serves.
# The folders below are where the named volumes mount: created here, owned by the app user,
# so that a fresh volume takes this ownership.
RUN python manage.py collectstatic --noinput \
    && mkdir -p /app/var /srv/media /srv/exports /srv/imports \
    && chown -R vidjudge:vidjudge /app/var /srv/static /srv/media /srv/exports /srv/imports

# Numeric, so that Kubernetes-style runAsNonRoot checks and host tools can verify it.
USER 10001:10001
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--worker-class", "gthread", "--workers", "4", "--threads", "4", "--access-logfile", "-"]
