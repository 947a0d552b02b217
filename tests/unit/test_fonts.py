"""Every glyph: the Unifont fallback behind Terminus, user fonts (BDF), ``--scale``,
``--palette`` and the option parsing of all four.

The oracle for "no replacement glyph" is the replacement tile itself: a private-use
character that no bundled font has is drawn, and every cell of the lines under test must
differ from it (and from a blank cell).
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from tests.support.render_probe import FakeTerminal, crop, ink
from tests.support.screen_image import same
from vncmux import fonts
from vncmux.config import build_config
from vncmux.console import palette
from vncmux.console.glyphs import fit_mask
from vncmux.console.render import Renderer
from vncmux.errors import ConfigError
from vncmux.font_opts import parse_font
from vncmux.specs import FontSpec

CJK = "中文字符 日本語 かな カナ 한국어"
SYMBOLS = "─│┌┐└┘├┤┼═║╔╗╚╝ █▀▄▌▐░▒▓ ←↑→↓↔⇒ ✓✔✗ ▽△◆● ⏻"
MISSING = "\ue000"  # private use: no bundled font has it


def render_lines(lines: list[str], **kwargs: object) -> tuple[Renderer, FakeTerminal]:
    cols = max(
        sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line) for line in lines
    )
    term = FakeTerminal(cols + 1, len(lines) + 1)
    for y, line in enumerate(lines):
        term.put(0, y, line)
    term.put(0, len(lines), MISSING)
    r = Renderer(term.cols, term.rows, **kwargs)  # type: ignore[arg-type]
    r.render_all(term)
    return r, term


def cells_of(term: FakeTerminal, y: int) -> list[tuple[int, int]]:
    """(x, width in cells) of every non-blank character of row ``y``."""
    row = term.buf[y]
    out = []
    for x, cell in enumerate(row):
        if cell.data in ("", " "):
            continue
        wide = x + 1 < len(row) and row[x + 1].data == ""
        out.append((x, 2 if wide else 1))
    return out


@pytest.mark.parametrize("size", fonts.TERMINUS_SIZES)
def test_cjk_and_symbol_lines_have_no_replacement_glyph(size: int) -> None:
    r, term = render_lines([CJK, SYMBOLS], font_size=size)
    box = crop(r, 0, 2)  # the replacement, as drawn for MISSING
    box2 = r.tile_for(term.buf[2][0]._replace(data=MISSING), cells=2)
    blank = crop(r, term.cols - 1, 0)
    assert not same(box, blank)
    for y in (0, 1):
        for x, width in cells_of(term, y):
            drawn = crop(r, x, y, cells=width)
            assert not same(drawn, box2 if width == 2 else box), (size, term.buf[y][x].data)
            assert not same(drawn, crop(r, term.cols - width, 0, cells=width)), (
                size,
                term.buf[y][x].data,
            )
    assert all(
        w == 2 for x, w in cells_of(term, 0) if term.buf[0][x].data in "中文字符日本語한국어"
    )


def test_sources_of_the_glyphs() -> None:
    glyphs = Renderer(1, 1).glyphs
    assert glyphs.source("A") == "font"
    assert glyphs.source("─") == "code"
    assert glyphs.source("中") == "fallback"
    assert glyphs.source("▽") == "fallback"
    assert glyphs.source("😀") == "fallback"  # Unifont's upper planes: monochrome emoji
    assert glyphs.source(MISSING) == "replacement"
    assert not Renderer(1, 1, fallback=False).glyphs.source("中") == "fallback"


def test_fallback_glyph_at_the_native_size_is_unifont_pixel_for_pixel() -> None:
    """At 16 px (8×16 cells) a CJK glyph is Unifont's 16×16 bitmap, unscaled."""
    r, term = render_lines(["中"])
    face = r.fonts.fallbacks[0]
    mask = face.getmask2("中", mode="1")[0]
    expected = Image.new("L", (16, 16), 0)
    expected.im.paste(mask, (0, 0, *mask.size))  # type: ignore[attr-defined]
    fg = palette.DEFAULT_FG
    got = {(x, y) for x, y in ink(crop(r, 0, 0, cells=2), fg)}
    want = {(x, y) for x in range(16) for y in range(16) if expected.getpixel((x, y))}
    assert got == want and got


def test_wide_emoji_and_combining_marks_from_the_fallback() -> None:
    r, term = render_lines(["😀x", "a\u0316"])
    fg = palette.DEFAULT_FG
    assert term.buf[0][1].data == ""  # the terminal made the emoji wide
    emoji = ink(crop(r, 0, 0, cells=2), fg)
    cw = r.cell_width
    assert any(x < cw for x, _ in emoji) and any(x >= cw for x, _ in emoji)
    # U+0316 (combining grave accent below) is not in Terminus: Unifont's, under the 'a'
    assert term.buf[1][0].data == "a\u0316" and r.glyphs.source("\u0316") == "fallback"
    plain = render_lines(["a"])[0]
    accented = ink(crop(r, 0, 1), fg)
    assert ink(crop(plain, 0, 0), fg) < accented
    assert max(y for _, y in accented) > max(y for _, y in ink(crop(plain, 0, 0), fg))


def test_bold_and_italic_keep_the_cell_width() -> None:
    r, term = render_lines(["中A"])
    for bold in (False, True):
        for italic in (False, True):
            cell = term.buf[0][0]._replace(bold=bold, italics=italic)
            assert r.tile_for(cell, cells=2).size == (2 * r.cell_width, r.cell_height)
            narrow = term.buf[0][2]._replace(bold=bold, italics=italic)
            assert r.tile_for(narrow).size == (r.cell_width, r.cell_height)
    overstruck = r.tile_for(term.buf[0][0]._replace(bold=True), cells=2)
    assert not same(overstruck, r.tile_for(term.buf[0][0], cells=2))


def test_fallback_costs_nothing_after_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    r = Renderer(1, 1)
    first = r.glyphs.mask("中", False, False, 2)
    calls: list[object] = []

    def counted(*args: object) -> bool:
        calls.append(args)
        return True

    monkeypatch.setattr(r.glyphs, "has_glyph", counted)
    assert r.glyphs.mask("中", False, False, 2) is first
    assert calls == []


def test_fit_mask_scales_crisply_and_keeps_thin_strokes() -> None:
    src = Image.new("L", (8, 16), 0)
    src.paste(255, (3, 0, 4, 16))  # a one-pixel vertical stroke
    doubled = fit_mask(src, 16, 32)
    assert doubled.getbbox() == (6, 0, 8, 32)
    assert set(doubled.tobytes()) == {0, 255}
    small = fit_mask(src, 6, 12)
    assert small.size == (6, 12) and small.getbbox() is not None
    assert set(small.tobytes()) == {0, 255}
    centred = fit_mask(src, 10, 18)  # 1.125: not enlarged, centred
    assert centred.getbbox() == (4, 1, 5, 17)


# --- user fonts ------------------------------------------------------------------------------


def bdf_font(path: Path) -> Path:
    """A two-glyph 8×16 BDF font (a box as the default character, and 'M')."""
    rows = {
        0: ["00", "FF"] + ["81"] * 10 + ["FF", "00", "00", "00"],
        77: ["00", "00"] + ["C3", "E7", "FF", "DB"] + ["C3"] * 5 + ["00"] * 5,
    }
    chars = "".join(
        f"STARTCHAR c{code}\nENCODING {code}\nSWIDTH 500 0\nDWIDTH 8 0\nBBX 8 16 0 -4\n"
        f"BITMAP\n" + "\n".join(bits) + "\nENDCHAR\n"
        for code, bits in rows.items()
    )
    path.write_text(
        "STARTFONT 2.1\nFONT -test-fixed-medium-r-normal--16-160-75-75-c-80-iso10646-1\n"
        "SIZE 16 75 75\nFONTBOUNDINGBOX 8 16 0 -4\nSTARTPROPERTIES 6\nPIXEL_SIZE 16\n"
        'CHARSET_REGISTRY "ISO10646"\nCHARSET_ENCODING "1"\nFONT_ASCENT 12\nFONT_DESCENT 4\n'
        f"DEFAULT_CHAR 0\nENDPROPERTIES\nCHARS {len(rows)}\n{chars}ENDFONT\n"
    )
    return path


def test_a_bdf_font_with_the_unifont_fallback_behind_it(tmp_path: Path) -> None:
    path = bdf_font(tmp_path / "tiny.bdf")
    r = Renderer(3, 1, font_path=str(path), font_size=16)
    assert (r.cell_width, r.cell_height) == (8, 16)
    assert r.glyphs.source("M") == "font"
    assert r.glyphs.source("A") == "fallback"  # the font lacks it, Unifont has it
    with pytest.raises(fonts.FontError, match="cannot load"):
        Renderer(1, 1, font_path=str(path), font_size=20)  # a bitmap font: its size only


# --- scale -----------------------------------------------------------------------------------


def test_scale_doubles_the_cell_and_each_pixel() -> None:
    one, term = render_lines([CJK, SYMBOLS, "\x1b"])
    two = Renderer(term.cols, term.rows, scale=2)
    two.render_all(term)
    assert (two.cell_width, two.cell_height) == (one.cell_width * 2, one.cell_height * 2)
    assert two.image.size == (one.width * 2, one.height * 2)
    enlarged = one.image.resize(two.image.size, Image.Resampling.NEAREST)
    assert ImageChops.difference(enlarged, two.image).getbbox() is None
    with pytest.raises(ValueError, match="scale"):
        Renderer(1, 1, scale=5)


# --- palette ---------------------------------------------------------------------------------


def contrast(a: palette.RGB, b: palette.RGB) -> float:
    def lum(c: palette.RGB) -> float:
        lin = [(v / 255 / 12.92) if v <= 10 else ((v / 255 + 0.055) / 1.055) ** 2.4 for v in c]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_default_palette_keeps_dark_blue_readable_on_black() -> None:
    blue, bg = palette.resolve("blue", "default", False, False, False, False)
    assert contrast(blue, bg) >= 3.0
    assert contrast(palette.XTERM_16[4], bg) < 3.0  # why the default is not plain xterm
    assert palette.ANSI_16[:4] == palette.XTERM_16[:4]
    assert palette.ANSI_16[5:] == palette.XTERM_16[5:]


def test_named_palettes() -> None:
    vga = palette.named("vga")
    assert vga is not None and palette.named("linux") is not None
    assert vga.base16[3] == (0xAA, 0x55, 0x00) and vga.base16[12] == (0x55, 0x55, 0xFF)
    assert vga.resolve("blue", "default", True, False, False, False)[0] == vga.base16[12]
    xterm = palette.named("XTERM")
    assert xterm is not None and xterm.base16 == palette.XTERM_16
    assert palette.named("nope") is None


def test_palette_file_format() -> None:
    text = "! my colours\n# the normal ones\n" + "\n".join(
        f"#{i:02x}{i:02x}{i:02x}  colour {i}" for i in range(8)
    )
    text += "\n\n" + "\n".join(f"rgb:{i:02x}/00/{i:02x}" for i in range(8, 15)) + "\nfff\n"
    colours = palette.parse_palette_text(text)
    assert colours[1] == (1, 1, 1) and colours[9] == (9, 0, 9) and colours[15] == (255,) * 3
    with pytest.raises(palette.PaletteError, match="needs exactly 16 colours"):
        palette.parse_palette_text("#000000\n")
    with pytest.raises(palette.PaletteError, match=r"p:2: not a colour"):
        palette.parse_palette_text("#000000\nblue\n", "p")


def test_load_palette_and_a_renderer_painting_with_it(tmp_path: Path) -> None:
    path = tmp_path / "pal"
    path.write_text("\n".join(f"#0000{i:02x}" for i in range(15)) + "\n#123456\n")
    pal = fonts.load_palette(str(path))
    term = FakeTerminal(2, 1)
    term.put(0, 0, "x", fg="brightwhite", bg="red")
    r = Renderer(2, 1, palette=pal)
    r.render_all(term)
    found = crop(r, 0, 0).getcolors()
    assert found is not None
    assert {tuple(c) for _, c in found} == {(0x12, 0x34, 0x56), (0, 0, 1)}  # type: ignore[arg-type]
    with pytest.raises(fonts.FontError, match="not a palette name"):
        fonts.load_palette(str(tmp_path / "missing"))
    (tmp_path / "short").write_text("#000000\n")
    with pytest.raises(fonts.FontError, match="16 colours"):
        fonts.load_palette(str(tmp_path / "short"))


# --- options ---------------------------------------------------------------------------------


def test_parse_font_options() -> None:
    assert parse_font() == FontSpec()
    spec = parse_font("/x.bdf", "24", "2", "VGA")
    assert spec == FontSpec(path="/x.bdf", size=24, scale=2, palette="vga")
    assert parse_font(palette="/etc/My.pal").palette == "/etc/My.pal"
    for kwargs, message in [
        ({"scale": "0"}, "--scale"),
        ({"scale": "x"}, "--scale"),
        ({"font_size": "500"}, "--font-size"),
        ({"font": " "}, "--font"),
        ({"palette": ""}, "--palette"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_font(**kwargs)  # type: ignore[arg-type]


def test_build_config_carries_the_font_spec() -> None:
    config = build_config(device="exec:true", font_size="32", scale="2", palette="linux")
    assert config.font == FontSpec(size=32, scale=2, palette="linux")


def test_preflight_reads_the_font_and_palette_and_names_the_option(tmp_path: Path) -> None:
    from vncmux import preflight

    preflight.check_font(build_config(device="exec:true", font_size="28", palette="vga"))
    with pytest.raises(ConfigError, match=r"^--font-size 15: the bundled Terminus font"):
        preflight.check_font(build_config(device="exec:true", font_size="15"))
    bdf = str(bdf_font(tmp_path / "tiny.bdf"))
    preflight.check_font(build_config(device="exec:true", font=bdf))
    with pytest.raises(ConfigError, match=rf"^--font {bdf}: cannot load"):
        preflight.check_font(build_config(device="exec:true", font=bdf, font_size="20"))
    bad = tmp_path / "bad.pal"
    bad.write_text("#000000\n" * 15 + "purple\n")
    with pytest.raises(ConfigError, match=rf"^--palette {bad}: {bad}:16: not a colour"):
        preflight.check_font(build_config(device="exec:true", palette=str(bad)))
