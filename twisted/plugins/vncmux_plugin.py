"""twistd plugin entry: ``twistd -n vncmux``.  Only the ServiceMaker lives here."""

from twisted.application.service import ServiceMaker

vncmux = ServiceMaker(
    "vncmux",
    "vncmux.tap",
    "Multiplex one console device onto a VNC virtual console and raw sockets.",
    "vncmux",
)
