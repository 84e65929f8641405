"""Reading a PNG screenshot's pixels (8-bit RGB or RGBA, not interlaced: what
Chromium writes) with zlib and numpy, for checks that something was drawn."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import numpy.typing as npt


def pixels(png: bytes) -> npt.NDArray[np.uint8]:
    """Height x width x channels array of the image."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", data)
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    assert header is not None
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    out = np.zeros((height, stride), dtype=np.int32)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        line = np.frombuffer(raw, np.uint8, stride, start + 1).astype(np.int32)
        if kind == 0:
            cur = line
        elif kind == 2:
            cur = (line + prev) & 0xFF
        else:
            cur = np.zeros(stride, dtype=np.int32)
            for x in range(stride):
                a = cur[x - bpp] if x >= bpp else 0
                b = prev[x]
                c = prev[x - bpp] if x >= bpp else 0
                if kind == 1:
                    pred = a
                elif kind == 3:
                    pred = (a + b) // 2
                else:  # 4: Paeth
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                cur[x] = (line[x] + pred) & 0xFF
        out[y] = cur
        prev = cur
    return out.reshape(height, width, bpp).astype(np.uint8)


def count_colour(png: bytes, rgb: tuple[int, int, int], tolerance: int = 8) -> int:
    """How many pixels are within `tolerance` of `rgb` on every channel."""
    image = pixels(png)[:, :, :3].astype(np.int32)
    close = np.abs(image - np.array(rgb)).max(axis=2) <= tolerance
    return int(close.sum())


__all__ = ["count_colour", "pixels"]
