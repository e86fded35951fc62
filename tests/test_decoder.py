"""Image decoding: formats, modes, EXIF orientation, reduced-scale JPEG decoding and size limits."""
import io

import numpy as np
import pytest
from PIL import Image

from helpers import encode, png_declaring
from ssd_serving.decoder import decode_image
from ssd_serving.errors import BadRequestError, PayloadTooLargeError


def gradient(width, height):
    x = np.linspace(0, 255, width, dtype=np.float64)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.float64)[:, None].repeat(width, 1)
    return np.stack([x, y, 255 - x], axis=2).astype(np.uint8)


def test_png_decodes_to_the_exact_pixels():
    rgb = gradient(64, 48)
    decoded = decode_image(encode(rgb, "PNG"))
    assert decoded.original_size == (64, 48)
    assert np.array_equal(decoded.rgb, rgb)


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "CMYK", "1"])
def test_every_mode_becomes_rgb(mode):
    image = Image.fromarray(gradient(40, 30)).convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG" if mode != "CMYK" else "TIFF"
    stream = io.BytesIO()
    image.save(stream, format=fmt)
    decoded = decode_image(stream.getvalue())
    assert decoded.rgb.shape == (30, 40, 3) and decoded.rgb.dtype == np.uint8


def test_sixteen_bit_grayscale_keeps_its_range():
    values = (np.arange(50 * 20, dtype=np.uint32).reshape(20, 50) * 65).astype(np.uint16)
    stream = io.BytesIO()
    Image.fromarray(values).save(stream, format="PNG")
    decoded = decode_image(stream.getvalue())
    expected = np.round(values / 257.0).astype(np.uint8)
    assert np.abs(decoded.rgb[:, :, 0].astype(int) - expected).max() <= 1
    assert decoded.rgb[:, :, 0].max() > 200  # not clipped to white or crushed to black


def test_exif_orientation_is_applied():
    rgb = gradient(60, 40)
    image = Image.fromarray(rgb)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    stream = io.BytesIO()
    image.save(stream, format="JPEG", exif=exif.tobytes(), quality=95)
    decoded = decode_image(stream.getvalue())
    assert decoded.original_size == (40, 60)
    assert decoded.rgb.shape == (60, 40, 3)
    # the left column of the displayed image is the original's bottom row
    assert abs(int(decoded.rgb[0, 0, 1]) - 255) < 20


def test_first_frame_of_an_animation():
    frames = [Image.fromarray(np.full((20, 30, 3), value, np.uint8)) for value in (10, 200)]
    stream = io.BytesIO()
    frames[0].save(stream, format="GIF", save_all=True, append_images=frames[1:])
    decoded = decode_image(stream.getvalue())
    assert decoded.rgb.shape == (20, 30, 3)
    assert decoded.rgb.mean() < 50


def test_large_jpeg_decodes_at_reduced_scale_but_keeps_its_size():
    rgb = gradient(2048, 1536)
    decoded = decode_image(encode(rgb), target_size=(256, 256))
    assert decoded.original_size == (2048, 1536)
    assert decoded.rgb.shape[1] < 2048 and decoded.rgb.shape[1] >= 256
    assert decoded.rgb.shape[0] >= 256


@pytest.mark.parametrize("body", [b"", b"not an image at all", encode(gradient(64, 64))[:300]])
def test_undecodable_bodies_are_bad_requests(body):
    with pytest.raises(BadRequestError):
        decode_image(body)


def test_decompression_bomb_is_refused_before_decoding():
    with pytest.raises(PayloadTooLargeError) as caught:
        decode_image(png_declaring(100000, 100000))
    assert "pixels" in str(caught.value)
    assert caught.value.status_code == 413
