"""Listing photos for the demo, drawn with Pillow: a sky, hills, a lawn and a house (or a shop
front, or an empty lot) in one of many colour schemes, from three points of view.

Drawing is cheap; re-encoding through the gallery (`gallery.process_image`, the very path an
upload takes) is not, so the demo draws a small pool of scenes and shares them among its
properties (see crm/demo.py)."""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw

WIDTH, HEIGHT = 1200, 800
RGB = tuple[int, int, int]

SKIES: tuple[tuple[RGB, RGB], ...] = (
    ((86, 150, 220), (196, 226, 248)),  # clear day
    ((64, 120, 200), (170, 210, 240)),
    ((120, 150, 200), (246, 204, 160)),  # golden hour
    ((150, 170, 190), (222, 228, 234)),  # overcast
    ((100, 160, 210), (236, 236, 210)),
)
WALLS: tuple[RGB, ...] = (
    (236, 226, 204), (214, 222, 206), (170, 190, 206), (200, 120, 96), (244, 244, 240),
    (190, 186, 178), (226, 200, 150), (156, 176, 150), (222, 184, 170), (120, 140, 160),
)  # fmt: skip
ROOFS: tuple[RGB, ...] = (
    (64, 64, 72), (110, 70, 50), (160, 80, 60), (60, 90, 70), (90, 96, 110), (130, 110, 90),
)  # fmt: skip
DOORS: tuple[RGB, ...] = ((150, 40, 40), (40, 70, 120), (60, 60, 60), (190, 140, 60), (50, 110, 90))
GRASS: tuple[RGB, ...] = ((104, 160, 80), (122, 170, 90), (150, 160, 90), (96, 146, 92))
GLASS = (178, 212, 232)
TRIM = (250, 250, 246)


@dataclass(frozen=True)
class Scheme:
    """Everything that makes one listing's photos look like the same place."""

    kind: str  # residential, commercial, land
    sky: tuple[RGB, RGB]
    wall: RGB
    roof: RGB
    door: RGB
    grass: RGB
    stories: int
    garage: bool
    seed: int


def scheme_for(rng: random.Random, kind: str) -> Scheme:
    return Scheme(
        kind=kind,
        sky=rng.choice(SKIES),
        wall=rng.choice(WALLS),
        roof=rng.choice(ROOFS),
        door=rng.choice(DOORS),
        grass=rng.choice(GRASS),
        stories=rng.choice((1, 1, 2)),
        garage=rng.random() < 0.6,
        seed=rng.randrange(1 << 30),
    )


def _shade(color: RGB, factor: float) -> RGB:
    return (
        max(0, min(255, round(color[0] * factor))),
        max(0, min(255, round(color[1] * factor))),
        max(0, min(255, round(color[2] * factor))),
    )


def _gradient(top: RGB, bottom: RGB, height: int) -> Image.Image:
    column = Image.new("RGB", (1, height))
    column.putdata(
        [
            tuple(
                round(a + (b - a) * y / max(height - 1, 1))
                for a, b in zip(top, bottom, strict=True)
            )
            for y in range(height)
        ]
    )
    return column.resize((WIDTH, height), Image.Resampling.NEAREST)


def _landscape(s: Scheme, rng: random.Random, horizon: int) -> Image.Image:
    img = Image.new("RGB", (WIDTH, HEIGHT))
    img.paste(_gradient(*s.sky, horizon), (0, 0))
    img.paste(_gradient(s.grass, _shade(s.grass, 0.75), HEIGHT - horizon), (0, horizon))
    draw = ImageDraw.Draw(img)
    if s.sky[1][0] > 230:  # a low sun in a golden sky
        draw.ellipse((900, horizon - 260, 1000, horizon - 160), fill=(255, 236, 180))
    for _ in range(rng.randint(2, 4)):  # clouds
        x, y = rng.randint(-50, WIDTH - 100), rng.randint(30, horizon // 2)
        for dx, dy, r in ((0, 10, 34), (36, 0, 44), (80, 12, 32), (40, 22, 36)):
            draw.ellipse((x + dx - r, y + dy - r, x + dx + r, y + dy + r), fill=(250, 250, 252))
    hills = _shade(s.grass, 0.85)
    points = [(0, horizon)]
    for x in range(0, WIDTH + 200, 200):
        points.append((x, horizon - rng.randint(30, 90)))
    points.append((WIDTH, horizon))
    draw.polygon(points, fill=hills)
    return img


def _tree(draw: ImageDraw.ImageDraw, x: int, ground: int, size: int, grass: RGB) -> None:
    draw.rectangle((x - size // 10, ground - size, x + size // 10, ground), fill=(110, 80, 55))
    leaf = _shade(grass, 0.7)
    for dx, dy, r in ((0, -size, size // 2), (-size // 3, -size * 2 // 3, size // 3),
                      (size // 3, -size * 2 // 3, size // 3)):  # fmt: skip
        draw.ellipse((x + dx - r, ground + dy - r, x + dx + r, ground + dy + r), fill=leaf)


def _window(draw: ImageDraw.ImageDraw, x: int, y: int, w: int, h: int) -> None:
    draw.rectangle((x - 4, y - 4, x + w + 4, y + h + 4), fill=TRIM)
    draw.rectangle((x, y, x + w, y + h), fill=GLASS)
    draw.rectangle((x, y, x + w, y + h // 3), fill=_shade(GLASS, 1.08))
    draw.line((x + w // 2, y, x + w // 2, y + h), fill=TRIM, width=4)
    draw.line((x, y + h // 2, x + w, y + h // 2), fill=TRIM, width=4)


def _house(draw: ImageDraw.ImageDraw, s: Scheme, left: int, ground: int, scale: float) -> None:
    floor = round(150 * scale)
    width = round(460 * scale)
    top = ground - floor * s.stories
    draw.rectangle((left, top, left + width, ground), fill=s.wall)
    for y in range(top + 12, ground, max(8, round(14 * scale))):  # siding
        draw.line((left, y, left + width, y), fill=_shade(s.wall, 0.94), width=1)
    overhang = round(30 * scale)
    peak = top - round(130 * scale)
    draw.polygon(
        [(left - overhang, top), (left + width // 2, peak), (left + width + overhang, top)],
        fill=s.roof,
    )
    draw.line(
        (left - overhang, top, left + width + overhang, top), fill=_shade(s.roof, 0.7), width=6
    )
    chimney = left + round(width * 0.72)
    chimney_box = (chimney, peak + round(40 * scale), chimney + round(34 * scale), top - 40)
    draw.rectangle(chimney_box, fill=_shade(s.roof, 1.3))
    door_w, door_h = round(64 * scale), round(110 * scale)
    door_x = left + width // 2 - door_w // 2
    draw.rectangle((door_x - 6, ground - door_h - 6, door_x + door_w + 6, ground), fill=TRIM)
    draw.rectangle((door_x, ground - door_h, door_x + door_w, ground), fill=s.door)
    knob = round(5 * scale)
    kx, ky = door_x + door_w - 16, ground - door_h // 2
    draw.ellipse((kx - knob, ky - knob, kx + knob, ky + knob), fill=(230, 200, 90))
    win_w, win_h = round(80 * scale), round(70 * scale)
    for story in range(s.stories):
        y = ground - floor * (story + 1) + round(35 * scale)
        for x in (left + round(45 * scale), left + width - round(45 * scale) - win_w):
            _window(draw, x, y, win_w, win_h)
        if story == 1:
            _window(draw, left + width // 2 - win_w // 2, y, win_w, win_h)
    if s.garage:
        g_left, g_w, g_h = left + width, round(200 * scale), round(120 * scale)
        draw.rectangle(
            (g_left, ground - g_h - round(30 * scale), g_left + g_w, ground), fill=s.wall
        )
        eave, ridge = ground - g_h - round(30 * scale), ground - g_h - round(60 * scale)
        corners = [(g_left, eave), (g_left + g_w + overhang // 2, eave), (g_left + g_w, ridge)]
        draw.polygon([*corners, (g_left, ridge)], fill=s.roof)
        d = round(20 * scale)
        draw.rectangle((g_left + d, ground - g_h + d // 2, g_left + g_w - d, ground), fill=TRIM)
        for y in range(ground - g_h + d, ground, max(6, round(18 * scale))):
            draw.line((g_left + d, y, g_left + g_w - d, y), fill=(210, 210, 206), width=2)
    path = [(door_x - 10, ground), (door_x + door_w + 10, ground),
            (door_x + door_w + 60, HEIGHT), (door_x - 60, HEIGHT)]  # fmt: skip
    draw.polygon(path, fill=(214, 200, 176))
    bush = _shade(s.grass, 0.6)
    for x in range(left + 10, left + width - 10, round(70 * scale)):
        if abs(x - (door_x + door_w // 2)) > door_w:
            r = round(26 * scale)
            draw.ellipse((x - r, ground - r, x + r, ground + r // 2), fill=bush)


def _shop(draw: ImageDraw.ImageDraw, s: Scheme, left: int, ground: int, scale: float) -> None:
    width, height = round(720 * scale), round(300 * scale)
    top = ground - height
    draw.rectangle((left, top, left + width, ground), fill=s.wall)
    draw.rectangle((left - 10, top - 20, left + width + 10, top), fill=_shade(s.roof, 1.1))
    draw.rectangle((left + 20, top + 20, left + width - 20, top + round(60 * scale)), fill=s.door)
    bay = round(110 * scale)
    for x in range(left + 30, left + width - bay, bay + 20):
        draw.rectangle((x, top + round(90 * scale), x + bay, ground - 10), fill=GLASS)
        draw.line(
            (x + bay // 2, top + round(90 * scale), x + bay // 2, ground - 10), fill=TRIM, width=3
        )
    draw.rectangle((0, ground, WIDTH, ground + round(40 * scale)), fill=(150, 150, 150))  # parking


def _lot(draw: ImageDraw.ImageDraw, s: Scheme, ground: int, rng: random.Random) -> None:
    for x in range(40, WIDTH, 90):  # a fence along the front
        draw.rectangle((x, ground + 60, x + 8, ground + 130), fill=(150, 120, 90))
    draw.line((40, ground + 80, WIDTH, ground + 80), fill=(150, 120, 90), width=5)
    draw.line((40, ground + 110, WIDTH, ground + 110), fill=(150, 120, 90), width=5)
    sx = rng.randint(200, 900)  # a for-sale sign
    draw.rectangle((sx, ground + 120, sx + 10, ground + 260), fill=(90, 70, 50))
    draw.rectangle((sx - 70, ground + 130, sx + 80, ground + 210), fill=(250, 250, 250))
    draw.rectangle((sx - 64, ground + 136, sx + 74, ground + 160), fill=s.door)
    for _ in range(40):  # tufts of dry grass
        x, y = rng.randint(0, WIDTH), rng.randint(ground + 140, HEIGHT)
        draw.line((x, y, x + rng.randint(-6, 6), y - 14), fill=_shade(s.grass, 1.2), width=2)


def draw_photo(s: Scheme, view: int) -> Image.Image:
    """One photo of the scheme: view 0 is the front (the cover), 1 closer, 2 from the side."""
    rng = random.Random(s.seed * 7 + view)
    horizon = (470, 430, 500)[view % 3]
    img = _landscape(s, rng, horizon)
    draw = ImageDraw.Draw(img)
    ground = horizon + (160, 240, 140)[view % 3]
    scale = (1.0, 1.35, 0.85)[view % 3]
    left = (330, 180, 120)[view % 3] - (60 if s.garage else 0)
    if s.kind == "land":
        _lot(draw, s, horizon, rng)
        _tree(draw, rng.randint(700, 1100), horizon + 40, 140, s.grass)
    elif s.kind == "commercial":
        _shop(draw, s, left - 40, ground, scale)
        _tree(draw, 80, ground, round(150 * scale), s.grass)
    else:
        _house(draw, s, left, ground, scale)
        _tree(draw, (1080, 1120, 1000)[view % 3], ground + 10, round(190 * scale), s.grass)
        if view == 0:
            _tree(draw, 110, ground - 30, round(140 * scale), s.grass)
    return img


def as_upload(img: Image.Image) -> bytes:
    """The photo as a file a browser would send (BMP: no compression, so encoding is free;
    the gallery decodes it and re-encodes a progressive JPEG as for any upload)."""
    out = io.BytesIO()
    img.save(out, "BMP")
    return out.getvalue()
