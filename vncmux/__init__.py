"""vncmux: one console device, many backends (a VNC virtual console, raw sockets, logs, ptys)."""

__version__ = "0.2.0"
