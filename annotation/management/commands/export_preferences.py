"""Export a project's judgments, labels or TRL preference pairs to a file (streamed).

    python manage.py export_preferences PROJECT --kind preference --format jsonl \
        --question final_verdict -o prefs.jsonl

PROJECT is an id or an exact name. Without ``-o`` the file is named after project, kind,
question and date in the current directory; ``-o -`` writes to standard output.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.exports.spec import AGGREGATIONS, FLAG_CHOICES, FORMATS, KINDS, VIDEO_REFS, ExportOptionError
from annotation.management.commands._common import project_from_arg
from annotation.services.exports import export_spec, export_stream


class Command(BaseCommand):
    help = "Export raw judgments, aggregated labels or TRL preference pairs (JSON Lines, CSV, Parquet)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="Project id or exact name.")
        parser.add_argument("--kind", choices=KINDS, default="preference")
        parser.add_argument("--format", choices=FORMATS, default="jsonl")
        parser.add_argument("--question", default="final_verdict", help='A question key, or "all" (raw, labels).')
        parser.add_argument("--aggregation", choices=AGGREGATIONS, default="majority")
        parser.add_argument("--ties", choices=FLAG_CHOICES, help="Default: drop (preference), keep (labels).")
        parser.add_argument("--undecided", choices=FLAG_CHOICES, help="Default: drop (preference), keep (labels).")
        parser.add_argument("--generators", default="", help="Comma-separated names: only pairs of two of them.")
        excluded = parser.add_mutually_exclusive_group()
        excluded.add_argument("--include-excluded", dest="include_excluded", action="store_true", default=None,
                              help="Keep judgments of raters marked excluded (default for raw only).")
        excluded.add_argument("--exclude-excluded", dest="include_excluded", action="store_false",
                              help="Leave out judgments of raters marked excluded (default for labels, preference).")
        parser.add_argument("--min-agreement", type=float, help="Drop pairs whose agreement is below this.")
        parser.add_argument("--videos", choices=VIDEO_REFS, default="source")
        parser.add_argument("--base-url", default="", help="Makes --videos url references absolute.")
        parser.add_argument("-o", "--output", default="", help='File to write; "-" for standard output.')

    def handle(self, *args, **opts) -> None:
        project = project_from_arg(opts["project"])
        options = {key: opts[key] for key in ("kind", "format", "question", "aggregation", "ties", "undecided",
                                              "generators", "include_excluded", "min_agreement", "videos")}
        try:
            spec = export_spec(project=project, options={k: v for k, v in options.items() if v is not None})
        except ExportOptionError as exc:
            raise CommandError(str(exc)) from exc
        start = time.perf_counter()
        stream = export_stream(project=project, spec=spec, base_url=opts["base_url"])
        size = 0
        if opts["output"] == "-":
            for chunk in stream.chunks:
                sys.stdout.buffer.write(chunk)
                size += len(chunk)
            sys.stdout.buffer.flush()
            return
        path = Path(opts["output"] or stream.file_name)
        with path.open("wb") as target:
            for chunk in stream.chunks:
                target.write(chunk)
                size += len(chunk)
        self.stderr.write(f"wrote {path} ({size:,} bytes) in {time.perf_counter() - start:.1f} s")
