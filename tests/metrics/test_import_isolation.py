"""A production web process never loads torch (or OpenCV) by importing the metrics app."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
import django
django.setup()
import metrics.models, metrics.registry, metrics.selectors, metrics.services, metrics.tasks
from metrics.registry import enabled_metrics
from metrics.backends import backend_static_problem
[m.current_version for m in enabled_metrics()]
backend_static_problem("clip")
loaded = sorted(name for name in ("torch", "open_clip", "torchvision", "cv2") if name in sys.modules)
print("LOADED=" + ",".join(loaded))
"""


def test_importing_services_selectors_and_tasks_does_not_load_torch():
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "LOADED=\n" in out.stdout, out.stdout
