"""In-memory stand-ins for vncmux's parts, for unit tests of what sits around them: a device
for the hub (``FakeDevice``), a recorder of a terminal's events (``Events``) and a viewer
that records what a console or display told it (``RecordingViewer``)."""

from __future__ import annotations

from typing import Any

from zope.interface import implementer

from vncmux.console.cells import Cell
from vncmux.console.interfaces import ITerminalEvents, IViewer
from vncmux.interfaces import IDevice


@implementer(IDevice)
class FakeDevice:
    """A device the hub writes to and pauses: records the bytes and the flow control."""

    def __init__(self, label: str = "fake0") -> None:
        self.label = label
        self.written: list[bytes] = []
        self.paused = False
        self.pauses = 0
        self.resumes = 0
        self.breaks: list[float] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def pauseProducing(self) -> None:
        self.paused = True
        self.pauses += 1

    def resumeProducing(self) -> None:
        self.paused = False
        self.resumes += 1

    def sendBreak(self, duration: float) -> str:
        self.breaks.append(duration)
        return f"break of {duration:g} s"


@implementer(ITerminalEvents)
class Events:
    """Records every event a terminal emits."""

    def __init__(self) -> None:
        self.replies: list[bytes] = []
        self.bells = 0
        self.titles: list[str] = []
        self.gone: list[list[Cell]] = []  # every row scrolled off, oldest first

    def reply(self, data: bytes) -> None:
        self.replies.append(data)

    def bell(self) -> None:
        self.bells += 1

    def title(self, title: str) -> None:
        self.titles.append(title)

    def scrolledOff(self, rows: list[Cell]) -> None:  # type: ignore[override]
        self.gone.extend(rows)  # type: ignore[arg-type]

    def gone_text(self) -> list[str]:
        return ["".join(c.data for c in row).rstrip() for row in self.gone]


@implementer(IViewer)
class RecordingViewer:
    """Records what it was told, in order, in ``events``; ``cut`` holds the texts sent to
    its clipboard."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.cut: list[str] = []

    def updateAvailable(self) -> None:
        self.events.append("update")

    def bell(self) -> None:
        self.events.append("bell")

    def nameChanged(self, name: str) -> None:
        self.events.append(("name", name))

    def sizeChanged(self, width: int, height: int) -> None:
        self.events.append(("size", width, height))

    def cutText(self, text: str) -> None:
        self.cut.append(text)
