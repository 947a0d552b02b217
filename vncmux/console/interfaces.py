"""What a console promises its viewers, and what it expects of them.

The console package knows nothing of RFB: a VNC session (``vncmux.rfb``), and later an HTTP
API or a recorder, reach a console only through these interfaces.  The arrows point one
way: ``vncmux.rfb`` imports ``vncmux.console``; ``vncmux.console`` never imports
``vncmux.rfb``.

- ``IConsole``: one console (terminal + framebuffer + its place on the hub).  Nothing here
  assumes one console per process; every piece of per-console state hangs off the object.
- ``IViewer``: what a console calls back on a viewer that attached.
- ``IViewerSession``: what one attached viewer may do (keys, pointer, clipboard, update
  requests).  Per-viewer input state (dead keys, mouse buttons, the paste buffer) lives
  in the session, inside the console, so the protocol code does no terminal work.
- ``IConsoleListener``: events for consumers that are not viewers (history, recordings,
  the screen API): output changed, bell, title, lines scrolled off the top.
- ``ITerminalEvents`` (and the optional ``ITerminalClipboard``): what a terminal tells
  its owner.
"""

from __future__ import annotations

from zope.interface import Attribute, Interface, implementer

from vncmux.events import Client


class IViewer(Interface):
    """What a console calls back on a viewer (an RFB session)."""

    def updateAvailable() -> None:
        """Your accumulator holds damage; called once per ``IViewerSession.requestUpdate``."""

    def bell() -> None:
        """The console rang its bell."""

    def nameChanged(name: str) -> None:
        """The desktop name (the terminal title) changed."""

    def sizeChanged(width: int, height: int) -> None:
        """The console was resized: announce it and send a full frame when asked."""

    def cutText(text: str) -> None:
        """Put ``text`` on the viewer's clipboard (what it selected; OSC 52 when the
        console allows it).  Sent as the viewer can take it (Latin-1 or UTF-8)."""


class IViewerSession(Interface):
    """One viewer attached to a console: the only way a viewer acts on it.

    Input from a view-only session is dropped (logged once), whatever the method; it may
    still scroll its own view back and copy text out (neither reaches the device).
    Coordinates are framebuffer pixels; the console maps them to cells."""

    damage = Attribute(
        "The viewer's ``Damage`` accumulator: what changed since the picture it last got. "
        "The viewer takes from it (and may hold part back); the console only adds."
    )
    view_only = Attribute("True when this viewer may only watch.")
    resize_origin = Attribute(
        "Who caused the last resize this viewer heard of (``IViewer.sizeChanged``): a "
        "``vncmux.console.sizing.ResizeOrigin`` (the console, this viewer, another viewer)."
    )

    def requestUpdate() -> None:
        """The viewer has an update request pending: ``updateAvailable`` follows as soon
        as the accumulator holds something (at once if it already does)."""

    def cancelRequest() -> None:
        """Forget a pending request (the viewer paused, or answered it itself)."""

    def crop(box: tuple[int, int, int, int]) -> object:
        """A PIL image of ``box`` (left, top, right, bottom) of what *this* viewer sees:
        the console's shared crop (``IConsole.crop``) while it watches the live screen,
        its own picture while it is scrolled back or shows a selection.  The viewer
        encodes its updates from this, never from the console directly."""

    def key(keysym: int, down: bool) -> None:
        """An X keysym pressed or released; becomes the bytes xterm would send, except
        Shift+PgUp/PgDn, which scroll this viewer's view while there is a scrollback, and
        Ctrl+Alt+T, which takes the keyboard under the exclusive input policy
        (``vncmux.keyboard``).  Typing brings a scrolled-back view back to the live screen."""

    def pointer(buttons: int, x: int, y: int) -> None:
        """The pointer at framebuffer pixel (x, y) with this button mask: mouse reports
        when the application asked for them (and Shift is not held); otherwise the left
        button selects text (drag, double click a word, triple click a line) for
        ``IViewer.cutText``, the wheel scrolls this viewer's view back and forth, and a
        middle click pastes."""

    def clipboard(text: str) -> None:
        """The viewer's clipboard changed: kept as this viewer's paste buffer, typed only
        on Shift+Insert or a middle click, never on arrival."""

    def requestSize(width: int, height: int) -> int:
        """The viewer asks for a framebuffer of ``width``×``height`` pixels; the answer is
        a ``vncmux.console.sizing.SizeStatus``.  On success the console has the cells that
        fit (maybe smaller than asked) and every viewer has heard ``sizeChanged``, this one
        with ``resize_origin`` ``THIS_VIEWER``, the others ``OTHER_VIEWER``."""

    def detach() -> None:
        """The viewer is gone; the session does nothing after this."""


class IConsole(Interface):
    """One virtual console as viewers see it: a framebuffer, its text, and input."""

    name = Attribute("The desktop name: the terminal's title, or the console's default.")
    width = Attribute("Framebuffer width in pixels.")
    height = Attribute("Framebuffer height in pixels.")
    cols = Attribute("Terminal columns.")
    rows = Attribute("Terminal rows.")
    viewers = Attribute("How many viewers are attached (encoders share work past a few).")
    events = Attribute(
        "The console's event bus (``vncmux.events.EventBus``): viewers report attach, "
        "detach and failed authentication there."
    )

    def attach(
        viewer: IViewer, view_only: bool = False, peer: str = "", client: Client | None = None
    ) -> IViewerSession:
        """Register ``viewer``; its accumulator starts all dirty (it has seen nothing).
        ``peer`` names it in log lines; ``client`` (a ``vncmux.events.Client``) is who it
        is on the event bus (default: a VNC client at ``peer``)."""

    def crop(box: tuple[int, int, int, int]) -> object:
        """A PIL image of ``box`` (left, top, right, bottom) of the current frame; the
        same object for every viewer until the frame changes."""

    def row_box(first_row: int, count: int) -> tuple[int, int, int, int]:
        """The pixel rectangle (x, y, w, h) covering ``count`` rows from ``first_row``."""

    def text() -> list[str]:
        """The screen as one string per row (wide characters once, combining marks
        joined to their base, trailing blanks removed)."""

    def resize(cols: int, rows: int) -> None:
        """Change the terminal's size; every viewer hears ``sizeChanged``."""

    def subscribe(listener: IConsoleListener) -> None:
        """Start telling ``listener`` of console events."""

    def unsubscribe(listener: IConsoleListener) -> None:
        """Stop telling ``listener``."""


class IConsoleListener(Interface):
    """Console events for consumers other than viewers."""

    def changed() -> None:
        """The terminal was fed and its screen may differ."""

    def bell() -> None:
        """The terminal rang its bell."""

    def titleChanged(title: str) -> None:
        """The application set the terminal title."""

    def scrolledOff(lines: list[str]) -> None:
        """These rows left the top of the main screen, oldest first (text only).

        A listener with a class attribute ``wantsScrolledOff = False`` is not called: the
        console then does not turn rows into text for it (building them costs the
        terminal's fast path)."""


@implementer(IConsoleListener)
class ChangeListener:
    """An ``IConsoleListener`` that wants ``changed`` alone (a subclass defines it): bells
    and titles are ignored, and scrolled-off rows are never made into text for it."""

    wantsScrolledOff = False

    def changed(self) -> None:
        raise NotImplementedError

    def bell(self) -> None:
        pass

    def titleChanged(self, title: str) -> None:
        pass

    def scrolledOff(self, lines: list[str]) -> None:
        pass


class ITerminalEvents(Interface):
    """What a terminal tells its owner (the ``Console``).  One object receives every
    event, given to the terminal when it is made; nothing is patched on afterwards."""

    def reply(data: bytes) -> None:
        """Bytes the terminal owes the program (DA, DSR, CPR answers): to the device."""

    def bell() -> None:
        """BEL was received (a run of BELs in one feed may be reported once)."""

    def title(title: str) -> None:
        """The application set the window title."""

    def scrolledOff(rows: list) -> None:  # type: ignore[type-arg]
        """Rows that left the top of the main screen (not the alternate screen), oldest
        first; each is a list of pyte ``Char`` one per column.  The fast path reports
        them too, so a scrollback buffer sees every line whichever path fed it."""


class ITerminalClipboard(Interface):
    """An optional part of a terminal's events object: the application's clipboard
    writes (OSC 52).  Kept apart from ``ITerminalEvents``: an owner that does not provide
    it never hears of them."""

    def clipboard(text: str) -> None:
        """The application asked to set the clipboard to ``text`` (OSC 52)."""
