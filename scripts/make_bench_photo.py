"""Draw the benchmark's test photo: a small landscape made here, pixel by pixel, so it is ours to ship.

    python scripts/make_bench_photo.py [--out src/model_manager/data/bench_photo.png]

A vision model's benchmark sends it with the prompt (``benchmark.py``). The scene (a sky, a sun, two hills,
a house with a red roof and a tree) is drawn from fixed shapes and written as an 8-bit RGB PNG with the
standard library alone, so the same bytes come out on every run; a test checks the shipped file against
this script's output.
"""

from __future__ import annotations

import argparse
import math
import struct
import zlib
from pathlib import Path

WIDTH, HEIGHT = 256, 192
OUT = Path(__file__).resolve().parents[1] / "src" / "model_manager" / "data" / "bench_photo.png"

Pixel = tuple[int, int, int]


def _mix(a: Pixel, b: Pixel, t: float) -> Pixel:
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


def _pixel(x: int, y: int) -> Pixel:
    """The scene at (x, y), the front-most shape first."""
    # The tree: a trunk and a round crown.
    if 196 <= x <= 203 and 118 <= y <= 150:
        return (96, 62, 32)
    if (x - 200) ** 2 + (y - 104) ** 2 <= 18**2:
        return _mix((46, 122, 52), (30, 90, 38), (y - 86) / 36)
    # The house: a red roof over a cream wall with a door and a window.
    if 70 <= x <= 130 and 108 <= y <= 150:
        if 92 <= x <= 106 and 126 <= y <= 150:
            return (110, 70, 40)
        if 112 <= x <= 124 and 116 <= y <= 128:
            return (150, 200, 230)
        return (236, 226, 200)
    if 84 <= y < 108 and abs(x - 100) <= (y - 84) * 36 / 24:
        return (186, 44, 36)
    # Two hills, the nearer darker.
    near = 150 - 18 * math.sin((x + 30) / 40)
    far = 128 - 22 * math.sin(x / 55 + 1.2)
    if y >= near:
        return _mix((74, 140, 60), (44, 100, 40), (y - near) / (HEIGHT - near + 1))
    if y >= far:
        return (112, 168, 88)
    # The sun and the sky, light at the horizon.
    if (x - 52) ** 2 + (y - 40) ** 2 <= 16**2:
        return (250, 214, 90)
    return _mix((70, 130, 210), (190, 220, 245), y / HEIGHT)


def png(width: int = WIDTH, height: int = HEIGHT) -> bytes:
    """The scene as a PNG file's bytes."""
    raw = b"".join(b"\x00" + bytes(c for x in range(width) for c in _pixel(x, y)) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    args.out.write_bytes(png())
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
