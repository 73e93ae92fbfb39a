"""Make results JSON-safe: numpy scalars and arrays to Python, and never NaN or infinity."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def to_jsonable(obj: Any, problems: list[str] | None = None, path: str = "$") -> Any:
    """A copy of ``obj`` made of dict/list/str/int/float/bool/None only.

    Non-finite floats become None and their paths are appended to ``problems``: the analysis
    functions give None with a reason themselves, so an entry there marks a bug to fix.
    """
    if obj is None or isinstance(obj, (str, bool)):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        if math.isfinite(value):
            return value
        if problems is not None:
            problems.append(path)
        return None
    if isinstance(obj, dict):
        return {str(to_jsonable(k)): to_jsonable(v, problems, f"{path}.{k}") for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [to_jsonable(v, problems, f"{path}[{i}]") for i, v in enumerate(obj)]
    return str(obj)
