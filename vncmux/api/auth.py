"""Who may use the API: a bearer token for full access, another for reading only.

Pure: the tokens are given (``vncmux.preflight`` checked the files, the service reads
them), and a request is judged from its ``Authorization`` header and whether it came over a
UNIX socket.  Without any token the API is open, which the configuration allows only on a
UNIX socket (its file mode decides who connects).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import Enum


class Access(Enum):
    """What a request may do."""

    VIEW = "view"  # read the screen and the output, wait, status
    FULL = "full"  # also send input and keys


@dataclass(frozen=True)
class Tokens:
    """The configured tokens (None: not configured)."""

    full: str | None = None
    view: str | None = None

    @property
    def open(self) -> bool:
        """True when no token is configured: every request gets full access."""
        return self.full is None and self.view is None

    def access(self, authorization: bytes | None) -> Access | None:
        """The access ``authorization`` (the header's value) grants; None: refused.

        Compared in constant time, so the answer's timing says nothing about the token."""
        if self.open:
            return Access.FULL
        if not authorization:
            return None
        scheme, _sep, value = authorization.strip().partition(b" ")
        if scheme.lower() != b"bearer":
            return None
        offered = value.strip()
        if self.full is not None and hmac.compare_digest(offered, self.full.encode()):
            return Access.FULL
        if self.view is not None and hmac.compare_digest(offered, self.view.encode()):
            return Access.VIEW
        return None


def read_token(path: str) -> str:
    """The token in ``path``: its first line, stripped (preflight made sure there is one)."""
    with open(path, encoding="utf-8") as f:
        return f.readline().strip()
