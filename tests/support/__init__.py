"""Helpers the tests share, imported as ``tests.support.<module>`` (pytest's
``pythonpath = .`` in setup.cfg puts the repository root on the import path, and
``tests`` is a package).

- ``waiting``: ``wait_until`` and ``WaitTimeout``: poll a condition with a deadline.
- ``net``: free ports, UNIX connects, reads with deadlines, "closed by the peer".
- ``pty_device``: a pty standing in for a serial line (``Pty``, ``fresh_pty``).
- ``vncmux_process``: a real ``twistd -n vncmux`` in a subprocess (``start_vncmux``).
- ``rfbkit``: a small blocking RFB viewer written from the spec.
- ``tls_files``: a throwaway CA with server and client certificates.
- ``abuse_server``: one vncmux shared by a module of hostile-client tests, with survivors.
- ``fakes``: in-memory stand-ins (``FakeDevice``, a terminal's ``Events``).
- ``viewer_setup``: a console with recording viewers on a fake clock.
- ``fake_console``: a console for RFB session tests, over a patterned image.
- ``rfb_client``: a fake viewer connection to an in-memory RFB session.
- ``ci_skips``: the pytest plugin that fails skipped tests under CI.
- ``pixel_reference``: pixel formats converted the slow way, from the spec.
- ``screen_picture``: what a viewer sees of a Terminal, and catching up through damage.
- ``render_probe``: a fake terminal for the renderer, and one cell's pixels and ink.
- ``display_fakes``: a display over a fake terminal and renderer (``make_display``).
- ``encoding_reference``: decoders for the encoders' output, written from rfbproto.
- ``ws_client``: a WebSocket client and a GET on the global reactor, ``listen``.
- ``browser``: headless Chromium over DevTools (the ``browser`` fixture, ``CDP``).
- ``web_site``: three consoles behind the web entry (the ``site`` fixture), ``get``.
- ``api_setup``: an API over a real hub and console on a test clock, fake requests (``Setup``).
- ``serial_line``: a fake serial line (``FakeLine``) and an RFC 2217 server over it (``Rig``).
"""

import pkgutil

import pytest

# The helpers assert too (survivor checks, handshakes): let pytest explain those failures
# as it does in test modules.  Runs before any of them is imported.
pytest.register_assert_rewrite(*(f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__)))
