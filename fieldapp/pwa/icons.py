"""Draw the app's PNG icons with Pillow: ``python -m fieldapp.pwa.icons static/icons``.

The same picture as static/icons/icon.svg (a checklist card with a location pin), drawn from
code because Pillow cannot read SVG. The PNGs fill the whole square and keep the drawing inside
the central 80 %, so a phone may crop them to any shape ("maskable"). Made by `make assets`,
never committed.
"""
from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

from .shell import ICON_SIZES

BRAND, PAPER, OK, MUTED, LINE, FOCUS, INK = (
    "#0b5cad", "#ffffff", "#1c6b35", "#4a5560", "#c9d1d9", "#ffbf47", "#1b1f24")
CANVAS = 512      # the SVG's coordinates
SUPERSAMPLE = 4   # draw large, then shrink: smooth edges without an anti-aliasing library
SAFE_ZONE = 0.8   # the share of the square a maskable icon may be cropped to


def draw_icon(size: int) -> Image.Image:
    big = CANVAS * SUPERSAMPLE
    image = Image.new("RGB", (big, big), BRAND)
    draw = ImageDraw.Draw(image)
    scale = SUPERSAMPLE * SAFE_ZONE
    offset = big * (1 - SAFE_ZONE) / 2

    def at(x: float, y: float) -> tuple[float, float]:
        return offset + x * scale, offset + y * scale

    def box(x0, y0, x1, y1):
        return (*at(x0, y0), *at(x1, y1))

    draw.rounded_rectangle(box(112, 96, 360, 416), radius=28 * scale, fill=PAPER)
    for top in (150, 230):  # two ticked lines
        draw.line([at(152, top + 22), at(174, top + 44), at(214, top)], fill=OK,
                  width=round(20 * scale), joint="curve")
        draw.rounded_rectangle(box(232, top + 12, 328, top + 32), radius=10 * scale, fill=MUTED)
    draw.rounded_rectangle(box(152, 322, 216, 342), radius=10 * scale, fill=LINE)
    # The pin: a circle on a triangle pointing down, outlined, with a dark centre.
    draw.polygon([at(312, 330), at(440, 330), at(376, 428)], fill=INK)
    draw.ellipse(box(294, 226, 458, 390), fill=INK)
    inset = 12
    draw.polygon([at(318 + inset, 330), at(434 - inset, 330), at(376, 428 - 1.6 * inset)], fill=FOCUS)
    draw.ellipse(box(294 + inset, 226 + inset, 458 - inset, 390 - inset), fill=FOCUS)
    draw.ellipse(box(350, 278, 402, 330), fill=INK)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def write_icons(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for size in ICON_SIZES:
        path = folder / f"icon-{size}.png"
        draw_icon(size).save(path, optimize=True)
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_icons(Path(sys.argv[1] if len(sys.argv) > 1 else "static/icons")):
        print(written_path)
