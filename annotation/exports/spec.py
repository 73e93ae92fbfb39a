"""Export options: one validated value object shared by the API, the task and the command.

Kinds
    ``raw`` — one row per judgment; ``labels`` — one row per pair and question, aggregated;
    ``preference`` — one row per pair for the question, in TRL's preference format
    (``prompt``, ``chosen``, ``rejected``) plus ids, generators, votes and agreement.
Options (defaults in brackets)
    ``question`` [final_verdict]: a rubric key; ``all`` for raw and labels (every question).
    ``aggregation`` [majority]: ``majority`` (exact splits undecided) or ``dawid_skene``.
    ``ties`` / ``undecided``: ``drop`` or ``keep`` (kept rows carry ``flag``); default ``drop``
    for preference, ``keep`` for labels; not used by raw.
    ``generators``: only pairs whose both generators are listed (names) [all].
    ``include_excluded``: judgments of raters marked excluded [false for labels and preference,
    true for raw, where they are flagged in ``rater_excluded``].
    ``min_agreement``: drop pairs whose agreement (share of agreeing rater pairs) is below it;
    pairs with a single judgment have no agreement and are dropped too [none].
    ``videos`` [source]: ``source`` (the manifest's path or URL) or ``url`` (this server's media
    URL, absolute when a base URL is known).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from django.utils.text import slugify

KINDS = ("raw", "labels", "preference")
FORMATS = ("jsonl", "csv", "parquet")
AGGREGATIONS = ("majority", "dawid_skene")
FLAG_CHOICES = ("drop", "keep")
VIDEO_REFS = ("source", "url")
ALL_QUESTIONS = "all"
DEFAULT_QUESTION = "final_verdict"
CONTENT_TYPES = {
    "jsonl": "application/jsonl",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}


class ExportOptionError(ValueError):
    """An option is invalid; ``errors`` maps option names to messages."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class ExportSpec:
    kind: str = "preference"
    format: str = "jsonl"
    question: str = DEFAULT_QUESTION
    aggregation: str = "majority"
    ties: str = "drop"
    undecided: str = "drop"
    generators: tuple[str, ...] = field(default_factory=tuple)
    include_excluded: bool = False
    min_agreement: float | None = None
    videos: str = "source"

    def as_options(self) -> dict[str, Any]:
        data = asdict(self)
        data["generators"] = list(self.generators)
        return data

    def file_name(self, *, project_id: int, project_name: str, on: date) -> str:
        """e.g. ``fox-study-p3-preference-final_verdict-20261124.jsonl``."""
        slug = slugify(project_name)[:60] or "project"
        return f"{slug}-p{project_id}-{self.kind}-{self.question}-{on:%Y%m%d}.{self.format}"

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


def _flag(value: Any, name: str, default: str, errors: dict[str, str]) -> str:
    text = str(value).strip().lower() if value not in (None, "") else default
    if text not in FLAG_CHOICES:
        errors[name] = f"expected one of {', '.join(FLAG_CHOICES)}"
        return default
    return text


def _bool(value: Any, name: str, default: bool, errors: dict[str, str]) -> bool:
    if value in (None, ""):
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    errors[name] = "expected true or false"
    return default


def spec_from_options(options: Mapping[str, Any], *, question_keys: list[str]) -> ExportSpec:
    """Validate raw options (query parameters, command arguments, stored job options)."""
    errors: dict[str, str] = {}
    kind = str(options.get("kind") or "preference").strip().lower()
    if kind not in KINDS:
        errors["kind"] = f"expected one of {', '.join(KINDS)}"
        kind = "preference"
    fmt = str(options.get("format") or "jsonl").strip().lower()
    if fmt not in FORMATS:
        errors["format"] = f"expected one of {', '.join(FORMATS)}"
    question = str(options.get("question") or DEFAULT_QUESTION).strip()
    if question == ALL_QUESTIONS:
        if kind == "preference":
            errors["question"] = "a preference export is for one question"
    elif question not in question_keys:
        errors["question"] = f"not a question of this project (questions: {', '.join(question_keys)})"
    aggregation = str(options.get("aggregation") or "majority").strip().lower()
    if aggregation not in AGGREGATIONS:
        errors["aggregation"] = f"expected one of {', '.join(AGGREGATIONS)}"
    flag_default = "keep" if kind == "labels" else "drop"
    ties = _flag(options.get("ties"), "ties", flag_default, errors)
    undecided = _flag(options.get("undecided"), "undecided", flag_default, errors)
    raw_generators = options.get("generators") or ()
    if isinstance(raw_generators, str):
        raw_generators = raw_generators.split(",")
    generators = tuple(sorted({str(g).strip() for g in raw_generators if str(g).strip()}))
    if len(generators) == 1:
        errors["generators"] = "name at least two generators (a pair needs two)"
    include_excluded = _bool(options.get("include_excluded"), "include_excluded", kind == "raw", errors)
    min_agreement = options.get("min_agreement")
    if min_agreement in (None, ""):
        min_agreement = None
    else:
        try:
            min_agreement = float(min_agreement)
            if not 0.0 <= min_agreement <= 1.0:
                raise ValueError
        except (TypeError, ValueError):
            errors["min_agreement"] = "expected a number between 0 and 1"
            min_agreement = None
    videos = str(options.get("videos") or "source").strip().lower()
    if videos not in VIDEO_REFS:
        errors["videos"] = f"expected one of {', '.join(VIDEO_REFS)}"
    if errors:
        raise ExportOptionError(errors)
    return ExportSpec(
        kind=kind,
        format=fmt,
        question=question,
        aggregation=aggregation,
        ties=ties,
        undecided=undecided,
        generators=generators,
        include_excluded=include_excluded,
        min_agreement=min_agreement,
        videos=videos,
    )
