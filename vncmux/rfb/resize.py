"""A viewer's size in RFB: SetDesktopSize in, DesktopSize and ExtendedDesktopSize out.

The console decides whether a viewer may resize it and to what (``Console.requestSize``,
``vncmux.console.sizing``); this room says it in RFB.  The codes of the ExtendedDesktopSize
pseudo-rectangle (rfbproto): its x is the *reason* (0 the server changed the size, 1 this
client asked, 2 another client asked), its y the *status* of a client's request (0 done,
1 resize prohibited, 2 out of resources, 3 invalid screen layout).

What the session owes (``SizeAnswers``): the client that sent SetDesktopSize always gets
one reason-1 answer with the status, carrying the framebuffer size as it is after the
request (the cells that fit may be smaller than asked); when the size changed, every
other viewer gets reason 2, and a viewer that only announced DesktopSize gets that.
"""

from __future__ import annotations

from twisted.logger import Logger

from vncmux.console.interfaces import IViewerSession
from vncmux.console.sizing import ResizeOrigin, SizeStatus
from vncmux.rfb import writer
from vncmux.rfb.updates import Update, UpdateScheduler

log = Logger()

# ExtendedDesktopSize reasons (the rectangle's x).
REASON_SERVER, REASON_CLIENT, REASON_OTHER = 0, 1, 2
# ExtendedDesktopSize statuses (the rectangle's y).
STATUS_OK, STATUS_PROHIBITED, STATUS_NO_RESOURCES, STATUS_INVALID = 0, 1, 2, 3

#: The console's word for who resized, as an RFB reason.
REASONS = {
    ResizeOrigin.SERVER: REASON_SERVER,
    ResizeOrigin.THIS_VIEWER: REASON_CLIENT,
    ResizeOrigin.OTHER_VIEWER: REASON_OTHER,
}
#: The console's answer to a size request, as an RFB status.
STATUSES = {
    SizeStatus.OK: STATUS_OK,
    SizeStatus.PROHIBITED: STATUS_PROHIBITED,
    SizeStatus.NO_RESOURCES: STATUS_NO_RESOURCES,
    SizeStatus.INVALID: STATUS_INVALID,
}


def reason_of(session: IViewerSession) -> int:
    """The RFB reason of the resize ``session`` heard of last."""
    return REASONS.get(ResizeOrigin(session.resize_origin), REASON_SERVER)


def request_status(session: IViewerSession, width: int, height: int, screens: int) -> int:
    """The RFB status of a SetDesktopSize: a layout with no screen or an empty framebuffer
    is invalid before the console is asked; otherwise the console decides."""
    if screens < 1 or width < 1 or height < 1:
        return STATUS_INVALID
    return STATUSES.get(SizeStatus(session.requestSize(width, height)), STATUS_PROHIBITED)


def size_rects(update: Update, extended: bool, width: int, height: int) -> list[bytes]:
    """The size pseudo-rectangles of ``update``, in wire order: the new size (as
    ExtendedDesktopSize with its reason for a viewer that announced it, else DesktopSize),
    then the ExtendedDesktopSize answers owed; all carry ``width``×``height``."""
    rects: list[bytes] = []
    if update.resize is not None:
        if extended:
            rects.append(
                writer.extended_desktop_size(update.resize_reason, STATUS_OK, width, height)
            )
        else:
            rects.append(writer.desktop_size(width, height))
    for reason, status in update.ext_sizes:
        rects.append(writer.extended_desktop_size(reason, status, width, height))
    return rects


class SizeAnswers:
    """One viewer's side of resizing: its SetDesktopSize requests and the resizes it hears.

    ``request`` asks the console and owes the client its reason-1 answer (exactly one per
    request); ``resized`` records a new console size in the scheduler, to be announced
    with the reason the console gives.  The session pulls an update after either."""

    def __init__(self, updates: UpdateScheduler, peer: str) -> None:
        self.updates = updates
        self.peer = peer
        self._answered = False  # the request in progress got its answer as the resize

    def request(self, session: IViewerSession, width: int, height: int, screens: int) -> int:
        """SetDesktopSize from this client; the RFB status it is answered with."""
        if screens < 1 or width < 1 or height < 1:
            log.info(
                "VNC viewer {peer}: SetDesktopSize {w}x{h} with {n} screens: invalid layout",
                peer=self.peer,
                w=width,
                h=height,
                n=screens,
            )
        self._answered = False
        status = request_status(session, width, height, screens)
        if status != STATUS_OK or not self._answered:
            # Refused, or nothing changed (the same cells): the answer carries the size
            # as it is.  Repeats collapse in the scheduler.
            self.updates.queueExtDesktopSize(REASON_CLIENT, status)
        self._answered = False
        return status

    def resized(self, session: IViewerSession, announce: bool, width: int, height: int) -> bool:
        """The console is ``width``×``height`` now: everything is dirty; ``announce`` it
        (the viewer can be told) with the reason the console gives.  A viewer that cannot
        be told keeps its size (logged).  True when there is something to send."""
        reason = reason_of(session)
        if reason == REASON_CLIENT:
            self._answered = True
        self.updates.resized(self.updates.damage.lines, announce, reason)
        if not announce:
            log.info(
                "VNC viewer {peer} cannot be told of the new size {w}x{h}; it keeps {ow}x{oh}",
                peer=self.peer,
                w=width,
                h=height,
                ow=self.updates.width,
                oh=self.updates.height,
            )
        return announce
