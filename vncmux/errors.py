"""The errors vncmux raises on purpose, in one place, importing nothing of vncmux.

Parsing (``vncmux.config``), the start-up checks (``vncmux.preflight``) and the services
that bind ports or read key files all raise these; ``vncmux.tap`` turns each into one line
on stderr and exit status 2.  Keeping them here lets every layer raise them without
importing another layer (``rfb/tls.py`` used to import ``config`` for this, and ``config``
imported it back).
"""

from __future__ import annotations


class ConfigError(Exception):
    """A bad option value or a resource the options name that cannot be had (a missing
    file, a busy port); ``str()`` is the one-line message shown to the user."""
