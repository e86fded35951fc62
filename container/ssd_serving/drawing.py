"""The annotated picture: each detection's box and label drawn on the image at its original resolution."""
from __future__ import absolute_import

from PIL import Image, ImageDraw, ImageFont

from .decoder import decode_image
from .environment import DEFAULT_MAX_IMAGE_PIXELS

_PALETTE = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
            (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212))
# Pillow's built-in font is about 11 px high: readable on a 480-pixel picture, so labels grow by whole
# multiples of it on larger ones (any Pillow has this font; FreeType sizes are Pillow 10.1+ only).
_LABEL_REFERENCE_SIDE = 480.0


def full_resolution(decoded, max_pixels=DEFAULT_MAX_IMAGE_PIXELS):
    """The image as an RGB array at its original size: a JPEG decoded at reduced scale for the network is
    decoded again from its bytes, in full."""
    if decoded.reduced and decoded.source is not None:
        return decode_image(decoded.source, None, max_pixels).rgb
    return decoded.rgb


def _text_size(font, text):
    if hasattr(font, "getbbox"):  # Pillow >= 8
        left, top, right, bottom = font.getbbox(text)
        return right, bottom
    return font.getsize(text)  # the EI image's older Pillow


def _label(caption, colour, scale, font):
    """The caption on its colour, drawn with the built-in font and enlarged by a whole factor (stays crisp)."""
    width, height = _text_size(font, caption)
    tag = Image.new("RGB", (width + 4, height + 2), colour)
    ImageDraw.Draw(tag).text((2, 0), caption, fill=(0, 0, 0), font=font)
    if scale > 1:
        tag = tag.resize((tag.size[0] * scale, tag.size[1] * scale), Image.NEAREST)
    return tag


def draw_detections(result, max_pixels=DEFAULT_MAX_IMAGE_PIXELS):
    """The picture a result came from, at its original resolution, with each detection's box and label."""
    picture = Image.fromarray(full_resolution(result.decoded, max_pixels))
    width, height = result.decoded.original_size
    scale_x = picture.size[0] / float(width)
    scale_y = picture.size[1] / float(height)
    draw = ImageDraw.Draw(picture)
    short_side = min(picture.size)
    line = max(2, int(round(short_side / 200.0)))
    text_scale = max(1, int(round(short_side / _LABEL_REFERENCE_SIDE)))
    font = ImageFont.load_default()
    for detection in result.detections:
        colour = _PALETTE[detection["class_id"] % len(_PALETTE)]
        xmin, ymin, xmax, ymax = detection["box"]
        box = [xmin * scale_x, ymin * scale_y, xmax * scale_x, ymax * scale_y]
        draw.rectangle(box, outline=colour, width=line)
        tag = _label("%s %.2f" % (detection["label"], detection["score"]), colour, text_scale, font)
        picture.paste(tag, (int(box[0]), int(max(0, box[1] - tag.size[1]))))
    return picture
