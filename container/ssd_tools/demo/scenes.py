"""Deterministic synthetic scenes for the demo detector: coloured shapes on cluttered backgrounds.

Needs only numpy and Pillow (the serving tests use it). Every scene comes with exact boxes taken from
the pixels each object actually covers, in [xmin, ymin, xmax, ymax] pixel-edge coordinates (a box
covering pixel columns 3..7 is [3, ., 8, .]).

Classes: circles (ellipses up to 4:3), squares (rectangles up to 4:3, slightly rotated), triangles and
five-pointed stars (any rotation). Backgrounds mix colour gradients, smooth colour blotches, stripes,
noise, and distractors that are not objects: straight lines, arcs, scribbles, small dots and faint
potato-shaped blobs. Objects are at least ~10% of the short image side and barely overlap, so each one is
findable.
"""
from __future__ import absolute_import, division

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLASSES = ("circle", "square", "triangle", "star")

MIN_SIDE = 200
MAX_SIDE = 900
MAX_ASPECT = 2.0
MIN_OBJECTS = 1
MAX_OBJECTS = 5
# object size sqrt(w*h) as a fraction of the short image side; with aspect <= 4:3 the smaller box
# side is then >= 0.12 / sqrt(4/3) ~ 10% of the short side
MIN_OBJECT_FRACTION = 0.12
MAX_OBJECT_FRACTION = 0.45
MAX_OBJECT_ASPECT = 4.0 / 3.0
# the largest share of the smaller of two boxes that their intersection may cover
MAX_OVERLAP = 0.15
MIN_CONTRAST = 90.0


def as_rng(rng_or_seed):
    """A numpy RandomState from a seed, a list of seeds, or an existing RandomState."""
    if isinstance(rng_or_seed, np.random.RandomState):
        return rng_or_seed
    return np.random.RandomState(rng_or_seed)


def scene_rng(seed, index):
    """The RandomState for scene `index` of the data set made with `seed`."""
    return np.random.RandomState([int(seed) & 0xffffffff, int(index) & 0xffffffff, 0x5ce7e])


def random_size(rng, min_side=MIN_SIDE, max_side=MAX_SIDE, max_aspect=MAX_ASPECT):
    """A (width, height) with both sides in [min_side, max_side] and aspect at most `max_aspect`."""
    while True:
        width = int(rng.randint(min_side, max_side + 1))
        height = int(rng.randint(min_side, max_side + 1))
        if max(width, height) <= max_aspect * min(width, height):
            return width, height


def _random_colour(rng):
    return rng.randint(0, 256, size=3).astype(np.float32)


def _gradient(rng, width, height):
    c0, c1 = _random_colour(rng), _random_colour(rng)
    angle = rng.uniform(0, 2 * math.pi)
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    t = xs * math.cos(angle) + ys * math.sin(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    return c0[None, None, :] + t[:, :, None] * (c1 - c0)[None, None, :]


def _blotches(rng, width, height):
    """Smooth random colour variation: a few random colours bicubically blown up."""
    grid_w, grid_h = int(rng.randint(2, 9)), int(rng.randint(2, 9))
    small = rng.randint(0, 256, size=(grid_h, grid_w, 3)).astype(np.uint8)
    big = Image.fromarray(small).resize((width, height), Image.BICUBIC)
    return np.asarray(big, dtype=np.float32)


def _stripes(rng, width, height):
    period = rng.uniform(6, 40)
    angle = rng.uniform(0, math.pi)
    xs = np.arange(width, dtype=np.float32)[None, :]
    ys = np.arange(height, dtype=np.float32)[:, None]
    wave = np.sin((xs * math.cos(angle) + ys * math.sin(angle)) * (2 * math.pi / period))
    amplitude = rng.uniform(10, 40)
    return (wave * amplitude)[:, :, None] * np.ones((1, 1, 3), dtype=np.float32)


def _noise(rng, width, height, sigma):
    """Gaussian-looking noise, drawn as a 128x128 tile and repeated from a random offset (fast)."""
    tile = rng.normal(0.0, sigma, size=(128, 128, 3)).astype(np.float32)
    reps = (height // 128 + 2, width // 128 + 2, 1)
    off_y, off_x = int(rng.randint(0, 128)), int(rng.randint(0, 128))
    return np.tile(tile, reps)[off_y:off_y + height, off_x:off_x + width]


def _background(rng, width, height):
    img = _gradient(rng, width, height)
    if rng.rand() < 0.7:
        weight = rng.uniform(0.3, 0.9)
        img = (1 - weight) * img + weight * _blotches(rng, width, height)
    if rng.rand() < 0.3:
        img = img + _stripes(rng, width, height)
    if rng.rand() < 0.6:
        img = img + _noise(rng, width, height, rng.uniform(3, 20))
    return np.clip(img, 0, 255)


def _colour_tuple(rng):
    return tuple(int(v) for v in rng.randint(0, 256, size=3))


def _draw_distractors(rng, img):
    """Clutter that is none of the classes: lines, arcs, scribbles, dots and faint potato-shaped blobs."""
    height, width = img.shape[0], img.shape[1]
    short = min(width, height)
    pil = Image.fromarray(img.astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for _ in range(rng.randint(0, 10)):  # straight lines
        x0, x1 = rng.uniform(-0.2, 1.2, size=2) * width
        y0, y1 = rng.uniform(-0.2, 1.2, size=2) * height
        draw.line([(x0, y0), (x1, y1)], fill=_colour_tuple(rng),
                  width=int(rng.randint(1, max(2, short // 80) + 1)))
    for _ in range(rng.randint(0, 4)):  # arcs: partial circles, never closed
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        radius = rng.uniform(0.05, 0.4) * short
        start = rng.uniform(0, 360)
        draw.arc([cx - radius, cy - radius, cx + radius, cy + radius], start,
                 start + rng.uniform(40, 220), fill=_colour_tuple(rng),
                 width=int(rng.randint(1, max(2, short // 100) + 1)))
    for _ in range(rng.randint(0, 4)):  # scribbles: random walks
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        points = [(x, y)]
        heading = rng.uniform(0, 2 * math.pi)
        for _ in range(rng.randint(5, 25)):
            heading += rng.normal(0, 0.8)
            step = rng.uniform(0.01, 0.05) * short
            x, y = x + step * math.cos(heading), y + step * math.sin(heading)
            points.append((x, y))
        draw.line(points, fill=_colour_tuple(rng), width=int(rng.randint(1, max(2, short // 120) + 1)))
    for _ in range(rng.randint(0, 25)):  # small dots, far below the smallest object
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        radius = rng.uniform(0.003, 0.015) * short
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=_colour_tuple(rng))
    img = np.asarray(pil, dtype=np.float32).copy()
    for _ in range(rng.randint(0, 3)):  # faint potato-shaped blobs: smooth, irregular, low contrast
        radius = rng.uniform(0.05, 0.2) * short
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        angles = np.linspace(0, 2 * math.pi, 48, endpoint=False)
        radii = np.ones_like(angles)
        for harmonic in (2, 3):
            radii += rng.uniform(0.1, 0.25) * np.cos(harmonic * angles + rng.uniform(0, 2 * math.pi))
        radii *= radius
        stretch = rng.uniform(0.5, 1.0)
        polygon = [(cx + r * math.cos(a), cy + stretch * r * math.sin(a)) for a, r in zip(angles, radii)]
        x0 = max(int(min(p[0] for p in polygon)), 0)
        y0 = max(int(min(p[1] for p in polygon)), 0)
        x1 = min(int(max(p[0] for p in polygon)) + 1, width)
        y1 = min(int(max(p[1] for p in polygon)) + 1, height)
        if x1 <= x0 or y1 <= y0:
            continue
        mask = Image.new("L", (x1 - x0, y1 - y0), 0)
        ImageDraw.Draw(mask).polygon([(px - x0, py - y0) for px, py in polygon], fill=255)
        alpha = (np.asarray(mask, dtype=np.float32) / 255.0 * rng.uniform(0.12, 0.3))[:, :, None]
        region = img[y0:y1, x0:x1]
        region[...] = region * (1 - alpha) + _random_colour(rng)[None, None, :] * alpha
    return img


def _unit_polygon(rng, class_name):
    """Vertices of a shape of `class_name` (not circle) around the origin, before fitting to a box."""
    if class_name == "square":
        angle = math.radians(rng.uniform(-12, 12))
        corners = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
    elif class_name == "triangle":
        angle = rng.uniform(0, 2 * math.pi)
        corners = []
        for k in range(3):
            a = 2 * math.pi * k / 3 + rng.uniform(-0.25, 0.25)
            corners.append((math.cos(a), math.sin(a)))
    elif class_name == "star":
        angle = rng.uniform(0, 2 * math.pi)
        inner = rng.uniform(0.38, 0.55)
        corners = []
        for k in range(10):
            radius = 1.0 if k % 2 == 0 else inner
            a = math.pi * k / 5
            corners.append((radius * math.cos(a), radius * math.sin(a)))
    else:
        raise ValueError("no polygon for class %r" % class_name)
    cos, sin = math.cos(angle), math.sin(angle)
    return np.array([(x * cos - y * sin, x * sin + y * cos) for x, y in corners], dtype=np.float64)


def _shape_mask(rng, class_name, box_w, box_h):
    """A boolean (box_h, box_w) mask of the shape filling the box edge to edge (or nearly)."""
    mask = Image.new("L", (box_w, box_h), 0)
    draw = ImageDraw.Draw(mask)
    if class_name == "circle":
        draw.ellipse([0, 0, box_w - 1, box_h - 1], fill=255)
    else:
        points = _unit_polygon(rng, class_name)
        points -= points.min(axis=0)
        points /= np.maximum(points.max(axis=0), 1e-9)
        points *= np.array([box_w - 1, box_h - 1], dtype=np.float64)
        draw.polygon([tuple(p) for p in points], fill=255)
    return mask


def _overlap_too_much(box, boxes):
    for other in boxes:
        iw = min(box[2], other[2]) - max(box[0], other[0])
        ih = min(box[3], other[3]) - max(box[1], other[1])
        if iw <= 0 or ih <= 0:
            continue
        smaller = min((box[2] - box[0]) * (box[3] - box[1]), (other[2] - other[0]) * (other[3] - other[1]))
        if iw * ih > MAX_OVERLAP * smaller:
            return True
    return False


def _object_colour(rng, region):
    """A colour that stands out from the mean of the background under the object."""
    mean = region.reshape(-1, 3).mean(axis=0)
    best, best_dist = None, -1.0
    for _ in range(30):
        colour = _random_colour(rng)
        dist = float(np.sqrt(((colour - mean) ** 2).sum()))
        if dist >= MIN_CONTRAST:
            return colour
        if dist > best_dist:
            best, best_dist = colour, dist
    return best


def _paint_object(rng, img, mask_img, x, y):
    """Paint the object's mask into `img` at (x, y): solid, two-tone or textured, maybe outlined."""
    mask = np.asarray(mask_img) > 127
    box_h, box_w = mask.shape
    region = img[y:y + box_h, x:x + box_w]
    colour = _object_colour(rng, region[mask])
    style = rng.rand()
    if style < 0.6:
        fill = np.broadcast_to(colour, region.shape)
    elif style < 0.8:  # a gradient from the colour to a shade of it
        other = np.clip(colour * rng.uniform(0.5, 1.5) + rng.uniform(-40, 40, size=3), 0, 255)
        t = np.linspace(0, 1, box_h if rng.rand() < 0.5 else box_w, dtype=np.float32)
        t = t[:, None] if len(t) == box_h else t[None, :]
        fill = colour[None, None, :] + t[:, :, None] * (other - colour)[None, None, :]
        fill = np.broadcast_to(fill, region.shape)
    else:  # speckled
        fill = colour[None, None, :] + rng.normal(0, 18, size=region.shape).astype(np.float32)
    region[mask] = np.clip(fill[mask], 0, 255)
    if rng.rand() < 0.35 and min(box_w, box_h) >= 12:  # an outline in another colour
        thickness = int(rng.randint(1, max(2, min(box_w, box_h) // 12) + 1))
        padded = Image.new("L", (box_w + 2 * thickness, box_h + 2 * thickness), 0)
        padded.paste(mask_img, (thickness, thickness))  # so the erosion also eats the box edges
        # a square erosion: where the box mean over the (2t+1)^2 neighbourhood stays (near) full
        inner = np.asarray(padded.filter(ImageFilter.BoxBlur(thickness))) > 250
        inner = inner[thickness:thickness + box_h, thickness:thickness + box_w]
        edge = mask & ~inner
        region[edge] = _object_colour(rng, region[mask])


def make_scene(rng_or_seed, width, height, min_objects=MIN_OBJECTS, max_objects=MAX_OBJECTS):
    """One scene: (HxWx3 uint8 RGB, (N, 4) float32 boxes in pixels, (N,) int32 class ids)."""
    rng = as_rng(rng_or_seed)
    width, height = int(width), int(height)
    short = min(width, height)
    img = _draw_distractors(rng, _background(rng, width, height))
    wanted = int(rng.randint(min_objects, max_objects + 1))
    boxes, class_ids = [], []
    attempts = 0
    while len(boxes) < wanted and attempts < 60 * wanted:
        attempts += 1
        class_id = int(rng.randint(0, len(CLASSES)))
        size = short * math.exp(rng.uniform(math.log(MIN_OBJECT_FRACTION), math.log(MAX_OBJECT_FRACTION)))
        aspect = math.exp(rng.uniform(-math.log(MAX_OBJECT_ASPECT), math.log(MAX_OBJECT_ASPECT)))
        box_w = int(round(min(size * math.sqrt(aspect), 0.9 * width)))
        box_h = int(round(min(size / math.sqrt(aspect), 0.9 * height)))
        x = int(rng.randint(0, width - box_w + 1))
        y = int(rng.randint(0, height - box_h + 1))
        if _overlap_too_much((x, y, x + box_w, y + box_h), boxes):
            continue
        mask_img = _shape_mask(rng, CLASSES[class_id], box_w, box_h)
        mask = np.asarray(mask_img) > 127
        rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        if len(rows) == 0:
            continue
        _paint_object(rng, img, mask_img, x, y)
        boxes.append((x + cols[0], y + rows[0], x + cols[-1] + 1, y + rows[-1] + 1))
        class_ids.append(class_id)
    if rng.rand() < 0.5:  # sensor-like noise over everything, objects included
        img = img + _noise(rng, width, height, rng.uniform(2, 10))
    rgb = np.clip(img, 0, 255).astype(np.uint8)
    if rng.rand() < 0.25:
        rgb = np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.2))))
    return (np.ascontiguousarray(rgb), np.array(boxes, dtype=np.float32).reshape(-1, 4),
            np.array(class_ids, dtype=np.int32))


def scene_at(seed, index, min_side=MIN_SIDE, max_side=MAX_SIDE, max_aspect=MAX_ASPECT):
    """Scene `index` of the data set `seed`: the same scene every time, whatever order it is asked in."""
    rng = scene_rng(seed, index)
    width, height = random_size(rng, min_side, max_side, max_aspect)
    return make_scene(rng, width, height)


def make_dataset(seed, count, min_side=MIN_SIDE, max_side=MAX_SIDE, max_aspect=MAX_ASPECT):
    """Yield `count` scenes (rgb, boxes, class_ids) of varied sizes and aspect ratios."""
    for index in range(int(count)):
        yield scene_at(seed, index, min_side, max_side, max_aspect)
