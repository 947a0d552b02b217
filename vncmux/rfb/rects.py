"""Rectangles on the framebuffer, as (x, y, w, h) tuples: clipping, union, difference.

Pure geometry for the update path.  Done in unbounded Python integers, so a request whose
x + w passes 65535 cannot wrap around (LibVNCServer 673c07a7).
"""

from __future__ import annotations

Rect = tuple[int, int, int, int]


def clip_rect(x: int, y: int, w: int, h: int, width: int, height: int) -> Rect | None:
    """``(x, y, w, h)`` clipped to a ``width``×``height`` framebuffer, None if empty.

    Done in unbounded integers, so x + w past 65535 cannot wrap around."""
    x0, y0 = min(x, width), min(y, height)
    x1, y1 = min(x + w, width), min(y + h, height)
    if x1 <= x0 or y1 <= y0:
        return None
    return (x0, y0, x1 - x0, y1 - y0)


def union(a: Rect | None, b: Rect | None) -> Rect | None:
    if a is None:
        return b
    if b is None:
        return a
    x0, y0 = min(a[0], b[0]), min(a[1], b[1])
    x1, y1 = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
    return (x0, y0, x1 - x0, y1 - y0)


def intersects(a: Rect, b: Rect) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def contains(outer: Rect, inner: Rect) -> bool:
    return (
        outer[0] <= inner[0]
        and outer[1] <= inner[1]
        and inner[0] + inner[2] <= outer[0] + outer[2]
        and inner[1] + inner[3] <= outer[1] + outer[3]
    )


def subtract(a: Rect, b: Rect) -> list[Rect]:
    """``a`` minus ``b`` as up to four rectangles (above, below, left, right)."""
    if not intersects(a, b):
        return [a]
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    out: list[Rect] = []
    if b[1] > a[1]:
        out.append((a[0], a[1], a[2], b[1] - a[1]))
    if by1 < ay1:
        out.append((a[0], by1, a[2], ay1 - by1))
    top, bottom = max(a[1], b[1]), min(ay1, by1)
    if b[0] > a[0]:
        out.append((a[0], top, b[0] - a[0], bottom - top))
    if bx1 < ax1:
        out.append((bx1, top, ax1 - bx1, bottom - top))
    return out
