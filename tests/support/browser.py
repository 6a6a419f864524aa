"""A real browser for what a person looks at: Debian's Chromium, headless and offline, renders a file or a
loopback URL; its screenshot is decoded with the stdlib (no image library) and its DOM dumped as text.

Chromium is a system dependency (`make system-deps` installs Debian's `chromium`): a machine without it fails
with that instruction, never skips, so CI cannot pass without having looked at the page.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

BROWSER_TIMEOUT = 60.0
WINDOW = (1000, 2400)


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("chromium is missing: run `make system-deps` (installs Debian's chromium package) as root")
    return found


def _browse(
    page: Path | str, profile: Path, *args: str, window: tuple[int, int] = WINDOW
) -> subprocess.CompletedProcess[bytes]:
    # A throwaway profile per run (tests run in parallel); no sandbox as root in a container; a file, or a
    # loopback URL, never through a proxy the environment may name.
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-background-networking",
        f"--user-data-dir={profile}",
        "--no-proxy-server",
        f"--window-size={window[0]},{window[1]}",
        *args,
        page.resolve().as_uri() if isinstance(page, Path) else page,
    ]
    done = subprocess.run(command, capture_output=True, timeout=BROWSER_TIMEOUT)
    assert done.returncode == 0, f"chromium exited {done.returncode}: {done.stderr.decode(errors='replace')[-2000:]}"
    return done


def screenshot(page: Path | str, png: Path, window: tuple[int, int] = WINDOW) -> None:
    _browse(page, png.parent / "chromium-profile-shot", f"--screenshot={png}", window=window)
    assert png.is_file() and png.stat().st_size > 0, "chromium wrote no screenshot"


def dump_dom(page: Path | str, profile: Path | None = None) -> str:
    where = profile or (page.parent if isinstance(page, Path) else Path(".")) / "chromium-profile-dom"
    return _browse(page, where, "--dump-dom").stdout.decode()


def png_pixels(png: bytes) -> tuple[int, int, list[tuple[int, ...]]]:
    """Width, height and every pixel of an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes),
    decoded with the stdlib: the IDAT chunks inflated, each scanline's filter undone."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = data
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, f"unexpected PNG format {depth=} {colour=}"
    channels = 4 if colour == 6 else 3
    raw = zlib.decompress(idat)
    stride = width * channels
    previous = bytearray(stride)
    pixels: list[tuple[int, ...]] = []
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                predictor = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + predictor) & 0xFF
        pixels.extend(tuple(line[i : i + 3]) for i in range(0, stride, channels))
        previous = line
    return width, height, pixels


def distinct_colours(png: Path) -> set[tuple[int, ...]]:
    return set(png_pixels(png.read_bytes())[2])
