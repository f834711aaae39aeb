"""What the pipeline accepts, in numbers: importable without PyAV (settings read it in every
process, the web one included)."""

from __future__ import annotations

from dataclasses import dataclass

# What the pipeline can hand to players. A phone's H.264 file is remuxed as it is, so its picture
# must be one every phone decodes: H.264 level 5.2, the highest that phones record (4K at 60 fps)
# and decode in hardware, allows 36,864 macroblocks of 16x16 pixels a frame (4096x2304) and
# 2,073,600 a second (4096x2160 at 60 fps); phone decoders also stop at 4096 pixels a side.
MAX_FRAME_PIXELS = 36_864 * 256
MAX_PIXEL_RATE = 2_073_600 * 256
MAX_FRAME_SIDE = 4096
MIN_FRAME_SIDE = 16
# H.264 itself (level 6.2) ends here: no configuration may go past it.
H264_MAX_FRAME_PIXELS = 139_264 * 256
H264_MAX_PIXEL_RATE = 16_711_680 * 256
H264_MAX_FRAME_SIDE = 8192


@dataclass(frozen=True)
class MediaLimits:
    max_bytes: int
    max_duration_s: float
    max_pixels: int = MAX_FRAME_PIXELS
    max_side: int = MAX_FRAME_SIDE
    min_side: int = MIN_FRAME_SIDE
    max_pixel_rate: int = MAX_PIXEL_RATE  # width x height x frames a second
