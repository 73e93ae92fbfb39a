"""One shared placeholder clip for videos that exist only as names (imported judgments).

Rendered once into MEDIA_ROOT/placeholder/ (a plain grey 2-second H.264 clip) so that such
videos are "ready", playable and paired like any other, yet obviously not real content.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ffmpeg
from django.conf import settings

from annotation import media
from annotation.models import Video

PLACEHOLDER_SOURCE = "placeholder:no-video-available"
_VIDEO = Path("placeholder") / "placeholder.mp4"
_POSTER = Path("placeholder") / "placeholder.jpg"


def placeholder_video_fields() -> dict[str, Any]:
    """Field values for a Video row that points at the placeholder clip (rendered if missing)."""
    root = Path(settings.MEDIA_ROOT)
    video, poster = root / _VIDEO, root / _POSTER
    if not video.is_file():
        video.parent.mkdir(parents=True, exist_ok=True)
        with media.atomic_path(video) as tmp:
            (
                ffmpeg.input("color=c=0x808890:s=320x180:d=2:r=24", f="lavfi")
                .output(str(tmp), vcodec="libx264", pix_fmt="yuv420p", movflags="+faststart", f="mp4")
                .global_args("-nostdin")
                .run(quiet=True, overwrite_output=True)
            )
    if not poster.is_file():
        media.make_poster(video, poster)
    info = media.probe(video)
    return {
        "source": PLACEHOLDER_SOURCE,
        "original": str(_VIDEO),
        "browser": str(_VIDEO),
        "poster": str(_POSTER),
        "status": Video.STATUS_READY,
        "duration": info.duration,
        "fps": info.fps,
        "width": info.width,
        "height": info.height,
        "codec": info.codec,
        "pix_fmt": info.pix_fmt,
    }
