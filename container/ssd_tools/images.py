"""Images made in memory to send a server: an array encoded as JPEG or PNG, and a PNG whose header declares any size."""
from __future__ import absolute_import

import io
import struct
import zlib

from PIL import Image


def encode(rgb, fmt="JPEG", **kwargs):
    stream = io.BytesIO()
    Image.fromarray(rgb).save(stream, format=fmt, **kwargs)
    return stream.getvalue()


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)


def png_declaring(width, height, bit_depth=8, color_type=2, rows=None):
    """A PNG whose header declares width x height; its pixel data is `rows` (raw scanlines) or a few zeros."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    data = zlib.compress(rows if rows is not None else b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")
