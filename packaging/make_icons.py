#!/usr/bin/env python3
"""Draw the app icon and write it in every format the installers need.

    python packaging/make_icons.py [OUT_DIR]     (default: resources/icons)

One drawing, several containers: an SVG for Linux desktops and the Qt window icon,
PNGs for the .deb's hicolor theme, an .ico for Windows (PyInstaller and NSIS) and an
.icns for macOS. The outputs are small and committed; rerun this only when the
design changes. Needs Pillow (in the ``packaging`` extra).
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
MASTER = 1024
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)

# Design on a 1024 grid: a rounded tile, a speech bubble with a tail, three dots.
BACKGROUND_TOP = (46, 94, 170)
BACKGROUND_BOTTOM = (28, 56, 110)
BUBBLE = (250, 248, 242)
DOT = (46, 94, 170)
TILE = (64, 64, 960, 960, 200)            # x0, y0, x1, y1, corner radius
BODY = (200, 250, 824, 690, 150)
TAIL = ((330, 660), (300, 830), (480, 680))
DOTS = ((372, 470), (512, 470), (652, 470))
DOT_RADIUS = 52

SVG = f"""<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {MASTER} {MASTER}" \
width="{MASTER}" height="{MASTER}">
  <defs>
    <linearGradient id="bg" x1="0" y1="0" x2="0" y2="1">
      <stop offset="0" stop-color="rgb{BACKGROUND_TOP}"/>
      <stop offset="1" stop-color="rgb{BACKGROUND_BOTTOM}"/>
    </linearGradient>
  </defs>
  <rect x="{TILE[0]}" y="{TILE[1]}" width="{TILE[2] - TILE[0]}" height="{TILE[3] - TILE[1]}" \
rx="{TILE[4]}" fill="url(#bg)"/>
  <rect x="{BODY[0]}" y="{BODY[1]}" width="{BODY[2] - BODY[0]}" height="{BODY[3] - BODY[1]}" \
rx="{BODY[4]}" fill="rgb{BUBBLE}"/>
  <polygon points="{' '.join(f'{x},{y}' for x, y in TAIL)}" fill="rgb{BUBBLE}"/>
{chr(10).join(f'  <circle cx="{x}" cy="{y}" r="{DOT_RADIUS}" fill="rgb{DOT}"/>' for x, y in DOTS)}
</svg>
"""


def draw(size: int = MASTER) -> Image.Image:
    """Render the icon at ``size`` pixels, drawn at 4x and downsampled for smooth edges."""
    scale = 4 * size / MASTER
    big = int(MASTER * scale)
    gradient = Image.new("RGBA", (big, big))
    pixels = ImageDraw.Draw(gradient)
    for y in range(big):
        t = y / max(big - 1, 1)
        colour = tuple(round(a + (b - a) * t) for a, b in zip(BACKGROUND_TOP, BACKGROUND_BOTTOM,
                                                              strict=True))
        pixels.line([(0, y), (big, y)], fill=(*colour, 255))
    mask = Image.new("L", (big, big), 0)
    ImageDraw.Draw(mask).rounded_rectangle(
        [c * scale for c in TILE[:4]], radius=TILE[4] * scale, fill=255)
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    image.paste(gradient, (0, 0), mask)
    pen = ImageDraw.Draw(image)
    pen.rounded_rectangle([c * scale for c in BODY[:4]], radius=BODY[4] * scale, fill=BUBBLE)
    pen.polygon([(x * scale, y * scale) for x, y in TAIL], fill=BUBBLE)
    r = DOT_RADIUS * scale
    for x, y in DOTS:
        pen.ellipse([x * scale - r, y * scale - r, x * scale + r, y * scale + r], fill=DOT)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    """Write llamadesk.svg, llamadesk-<N>.png, llamadesk.ico and llamadesk.icns."""
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "resources" / "icons"
    out.mkdir(parents=True, exist_ok=True)
    (out / "llamadesk.svg").write_text(SVG, encoding="utf-8")
    master = draw(MASTER)
    for size in PNG_SIZES:
        draw(size).save(out / f"llamadesk-{size}.png", optimize=True)
    master.save(out / "llamadesk.ico", sizes=[(s, s) for s in ICO_SIZES])
    master.save(out / "llamadesk.icns")
    for path in sorted(out.iterdir()):
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        print(f"{path.stat().st_size:>9,}  {shown}")


if __name__ == "__main__":
    main()
