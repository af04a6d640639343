"""Tiny numpy raster helpers for ``rgb_array`` frames (no display, no extra dependency)."""

from __future__ import annotations

import numpy as np

AGENT_COLOURS: tuple[tuple[int, int, int], ...] = (
    (66, 135, 245),
    (235, 87, 87),
    (46, 184, 114),
    (242, 183, 5),
    (155, 89, 182),
    (26, 188, 156),
)


class Canvas:
    """An ``(H, W, 3)`` uint8 image with a few drawing primitives.

    Parameters
    ----------
    height, width : int
        Size in pixels.
    background : tuple of int
        RGB fill.
    """

    def __init__(
        self, height: int, width: int, background: tuple[int, int, int] = (30, 30, 30)
    ) -> None:
        self.image = np.empty((height, width, 3), dtype=np.uint8)
        self.image[:] = background

    @property
    def height(self) -> int:
        return self.image.shape[0]

    @property
    def width(self) -> int:
        return self.image.shape[1]

    def rect(self, y: int, x: int, h: int, w: int, colour: tuple[int, int, int]) -> None:
        """Fill the rectangle with top-left corner ``(y, x)``, clipped to the image."""
        y0, x0 = max(y, 0), max(x, 0)
        y1, x1 = min(y + h, self.height), min(x + w, self.width)
        if y1 > y0 and x1 > x0:
            self.image[y0:y1, x0:x1] = colour

    def disc(self, cy: float, cx: float, radius: float, colour: tuple[int, int, int]) -> None:
        """Fill a disc centred at ``(cy, cx)``."""
        ys, xs = np.ogrid[: self.height, : self.width]
        self.image[(ys - cy) ** 2 + (xs - cx) ** 2 <= radius**2] = colour

    def line(
        self,
        y0: float,
        x0: float,
        y1: float,
        x1: float,
        colour: tuple[int, int, int],
        width: int = 2,
    ) -> None:
        """Draw a segment from ``(y0, x0)`` to ``(y1, x1)``, ``width`` pixels thick."""
        n = int(max(abs(y1 - y0), abs(x1 - x0))) + 1
        ys = np.rint(np.linspace(y0, y1, n)).astype(np.int64)
        xs = np.rint(np.linspace(x0, x1, n)).astype(np.int64)
        for dy in range(width):
            for dx in range(width):
                yy, xx = ys + dy - width // 2, xs + dx - width // 2
                ok = (yy >= 0) & (yy < self.height) & (xx >= 0) & (xx < self.width)
                self.image[yy[ok], xx[ok]] = colour

    def glyph(self, cy: int, cx: int, value: int, colour: tuple[int, int, int]) -> None:
        """Mark a small integer as ``value + 1`` dots in a row centred at ``(cy, cx)``."""
        n, size, gap = value + 1, 4, 3
        start = cx - (n * size + (n - 1) * gap) // 2
        for k in range(n):
            self.rect(cy - size // 2, start + k * (size + gap), size, size, colour)
