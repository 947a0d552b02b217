"""Full-frame render time of vncmux.console.render.Renderer against naive per-cell drawing.

Screens: several different 80×24 screens of coloured text (TUI redraws and SGR-heavy lines
from console_feed's generators) held by real Terminals.  Figures, medians:

- cold: a fresh Renderer's first ``render_all`` (empty glyph cache; construction timed apart);
- warm: ``render_all`` of the other screens once the cache has seen their glyphs;
- scroll: one line of output that scrolls the screen, ``take_damage`` + ``render``;
- baseline, same run: ``ImageDraw.rectangle`` + ``ImageDraw.text`` per cell with the same
  font and colours (what a straightforward server does).

    .venv/bin/python bench/render.py [--quick] [--reps N]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, BenchError, machine_line, median, require, table
from console_feed import gen_colour, gen_tui

sys.path.insert(0, str(ROOT))


def screens(n: int) -> list[Any]:
    """n Terminals, each showing a different coloured screen."""
    from vncmux.console.terminal import Terminal

    out = []
    for i in range(n):
        term = Terminal(80, 24)
        rng = random.Random(f"render-{i}")
        term.feed(gen_tui(6000, rng) if i % 2 else gen_colour(4000, rng))
        term.take_damage()
        out.append(term)
    return out


def naive(term: Any, renderer: Any) -> float:
    """Per cell: paint the background, draw the character with ImageDraw.text."""
    from PIL import Image, ImageDraw

    from vncmux.console import palette

    cw, ch = renderer.cell_width, renderer.cell_height
    fonts = renderer.fonts
    t0 = time.perf_counter()
    img = Image.new("RGB", (80 * cw, 24 * ch))
    d = ImageDraw.Draw(img)
    for y in range(24):
        for x, c in enumerate(term.line(y)):
            fg, bg = palette.resolve(c.fg, c.bg, c.bold, False, c.reverse, False)
            d.rectangle((x * cw, y * ch, x * cw + cw - 1, y * ch + ch - 1), fill=bg)
            if c.data and c.data != " ":
                d.text((x * cw, y * ch), c.data, font=fonts.face(c.bold, c.italics), fill=fg)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="a few seconds' smoke run")
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 9, quick 2)")
    args = ap.parse_args()
    reps = args.reps or (2 if args.quick else 9)
    try:
        require("vncmux.console.render", "render bench")
        require("vncmux.console.terminal", "render bench")
    except BenchError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 2
    from vncmux.console.render import Renderer

    print(f"render: {machine_line()}")
    terms = screens(6)
    construct, cold, warm, scroll, base = [], [], [], [], []
    renderer = None
    for rep in range(reps):
        t0 = time.perf_counter()
        renderer = Renderer(80, 24)
        construct.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        renderer.render_all(terms[0])
        cold.append(time.perf_counter() - t0)
        for t in terms[1:]:  # let the cache see every screen's glyphs once
            renderer.render_all(t)
        for t in terms:
            t0 = time.perf_counter()
            renderer.render_all(t)
            warm.append(time.perf_counter() - t0)
        rng = random.Random(rep)
        for t in terms[:3]:
            renderer.render_all(t)
            t.feed(b"\r\n" + gen_colour(200, rng).split(b"\r\n")[0][:160])
            t0 = time.perf_counter()
            dmg = t.take_damage()
            renderer.render(t, dmg)
            scroll.append(time.perf_counter() - t0)
        for t in terms[:2]:
            base.append(naive(t, renderer))
    assert renderer is not None
    ms = 1000.0
    b = median(base)
    rows = [
        ["naive ImageDraw.text per cell (baseline)", f"{b * ms:.2f}", "1.0x"],
        ["Renderer() construction (fonts)", f"{median(construct) * ms:.2f}", "-"],
        ["render_all, cold glyph cache", f"{median(cold) * ms:.2f}", f"{b / median(cold):.1f}x"],
        ["render_all, warm glyph cache", f"{median(warm) * ms:.2f}", f"{b / median(warm):.1f}x"],
        [
            "one scrolled line (take_damage + render)",
            f"{median(scroll) * ms:.2f}",
            f"{b / median(scroll):.1f}x",
        ],
    ]
    print(
        f"80x24 cells of {renderer.cell_width}x{renderer.cell_height} px "
        f"({renderer.width}x{renderer.height}), medians of {reps} reps\n"
    )
    print(table(rows, ["what", "ms per frame", "speed-up vs baseline"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
