"""Image decoding: bytes to an RGB array, with EXIF orientation, mode conversion and size limits."""
from __future__ import absolute_import

import inspect
import io
import warnings

import numpy as np
from PIL import Image, ImageOps

from .environment import DEFAULT_MAX_IMAGE_PIXELS
from .errors import BadRequestError, PayloadTooLargeError

# JPEGs at least this many times larger than the network input (per side) are decoded at reduced
# scale: libjpeg then skips most of the IDCT work, and the later area resize loses nothing visible.
DRAFT_MIN_FACTOR = 2

# Image formats decoded; Pillow can open more (EPS through Ghostscript, PSD, ICNS, ...), but every
# parser is attack surface for bytes from the internet, and these are what cameras and browsers send.
# (MPO, phones' multi-picture JPEG, is opened by the JPEG parser.)
ACCEPTED_FORMATS = ("JPEG", "MPO", "PNG", "GIF", "BMP", "TIFF", "WEBP", "PPM")
_PARSERS = []

try:
    _OPEN_TAKES_FORMATS = "formats" in inspect.signature(Image.open).parameters
except (TypeError, ValueError):
    _OPEN_TAKES_FORMATS = False

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_SWAPPING_ORIENTATIONS = (5, 6, 7, 8)
_EXIF_ORIENTATION = 0x0112


class DecodedImage(object):
    """An RGB uint8 array, the size (w, h) of the image it came from after EXIF rotation, and its bytes
    (kept so that a picture answer can be drawn at full resolution when `rgb` was decoded reduced)."""

    def __init__(self, rgb, original_size, format_name, source=None):
        self.rgb = rgb
        self.original_size = original_size
        self.format = format_name
        self.source = source

    @property
    def reduced(self):
        """Whether `rgb` is smaller than the original image (a JPEG decoded at reduced scale)."""
        return (self.rgb.shape[1], self.rgb.shape[0]) != tuple(self.original_size)


def _parsers():
    """The accepted formats this Pillow has a parser for (a build may lack WebP)."""
    if not _PARSERS:
        Image.init()
        _PARSERS.extend(f for f in ACCEPTED_FORMATS if f in Image.OPEN)
    return _PARSERS


def _open(data):
    if not data:
        raise BadRequestError("the request body is empty; send an image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if _OPEN_TAKES_FORMATS:  # only these parsers look at the bytes at all
                image = Image.open(io.BytesIO(data), formats=_parsers())
            else:
                image = Image.open(io.BytesIO(data))
    except Exception as err:
        if err.__class__.__name__ == "DecompressionBombError":
            raise PayloadTooLargeError("the image declares too many pixels: %s" % (err,))
        raise BadRequestError("the body is not a decodable image (%s); send one of: %s" %
                              (err.__class__.__name__, ", ".join(ACCEPTED_FORMATS)))
    if image.format not in ACCEPTED_FORMATS:  # a Pillow older than 7.1 opened another format
        raise BadRequestError("%s images are not accepted; send one of: %s" %
                              (image.format or "unknown", ", ".join(ACCEPTED_FORMATS)))
    return image


def _check_size(image, limit):
    width, height = image.size
    if width <= 0 or height <= 0:
        raise BadRequestError("the image declares an empty size %dx%d" % (width, height))
    if width * height > limit:
        raise PayloadTooLargeError("the image is %dx%d pixels (%d); the limit is %d pixels" %
                                   (width, height, width * height, limit))


def _orientation(image):
    try:
        return int(image.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:
        return 1


def _to_rgb(image):
    if image.mode in _SIXTEEN_BIT_MODES:
        # Pillow's convert() would clip 16-bit values at 255; scale the full range instead.
        values = np.asarray(image, dtype=np.float64)
        gray = np.clip(values / 257.0, 0, 255).round().astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode == "F":
        gray = np.clip(np.asarray(image, dtype=np.float64), 0, 255).round().astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def decode_image(data, target_size=None, max_pixels=DEFAULT_MAX_IMAGE_PIXELS):
    """Decode image bytes into a DecodedImage.

    `target_size` (w, h) is the network input: large JPEGs are decoded at reduced scale but never
    below it. Raises BadRequestError or PayloadTooLargeError with a message for the client.
    """
    image = _open(data)
    _check_size(image, max_pixels)
    width, height = image.size
    format_name = image.format or "unknown"
    orientation = _orientation(image)
    try:
        # animations and multi-page files: Image.open is at the first frame, which is the one detected
        # (n_frames would walk through every frame of a hostile GIF first)
        if target_size and image.format == "JPEG":
            target_width, target_height = target_size
            if width >= DRAFT_MIN_FACTOR * target_width and height >= DRAFT_MIN_FACTOR * target_height:
                image.draft("RGB", (target_width, target_height))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image.load()
            if orientation != 1:  # upright already: exif_transpose would only copy the pixels
                image = ImageOps.exif_transpose(image)
            rgb = _to_rgb(image)
    except (PayloadTooLargeError, BadRequestError):
        raise
    except Exception as err:
        raise BadRequestError("the image could not be decoded: %s" % (err,))
    if orientation in _SWAPPING_ORIENTATIONS:
        width, height = height, width
    return DecodedImage(np.ascontiguousarray(rgb), (width, height), format_name, data)
