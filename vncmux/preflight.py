"""The start-up look at the machine: what the parsed ``Config`` names must exist.

``vncmux.config`` only reads strings.  Before anything is built or listens, ``check`` looks
at what those strings name — password, users and TLS files (there and readable), the tty
(there and a character device, unless ``--wait-device``), the socket endpoints (Twisted
can build them; an ``ssl:`` one reads its key here) — and refuses a view-only password that
is the full password.  Each problem is a one-line ``ConfigError`` (``vncmux.tap``: exit
status 2).  ``warnings`` lists what is allowed but unwise: secrets other users can read.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import fields

from vncmux.errors import ConfigError
from vncmux.specs import ByteServer, Config, DeviceSpec, Site, TokenSettings

_OTHERS_READ = 0o044  # group- or world-readable


def read_config_file(path: str) -> str:
    """The text of the ``--config`` file; ``ConfigError`` naming it when it cannot be read."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeError) as e:
        why = os.strerror(e.errno).lower() if isinstance(e, OSError) and e.errno else str(e)
        raise ConfigError(f"--config {path}: {why}") from None


def check_site(site: Site) -> None:
    """``check`` for each console of ``site``; from a config file, the error names the
    file, the console and the key."""
    for config in site.consoles:
        try:
            check(config)
        except ConfigError as e:
            if site.source is None:
                raise
            from vncmux.site_config import console_error

            keys = [f.name for f in fields(config)] + ["device", "sockets", "chardevs"]
            raise console_error(site.source, config.name, str(e), keys) from None


def check(config: Config) -> None:
    """Raise ``ConfigError`` for the first thing ``config`` names that cannot work."""
    check_device(config.device)
    for where, path, _secret in _files(config):
        check_readable(where, path)
    for server in config.servers:
        check_endpoint(server)
    check_view_password(config)
    check_api(config)
    if config.audit_log is not None:
        check_writable("--audit-log ", config.audit_log)
    if config.record is not None:
        check_writable("--record ", time.strftime(config.record, time.gmtime()))
    if config.console is not None:
        check_font(config)


def check_font(config: Config) -> None:
    """``--font`` loads at ``--font-size`` (the bundled Terminus only at its sizes) and
    ``--palette`` is a name or a file of 16 colours: both are read here, once."""
    from vncmux import fonts

    spec = config.font
    try:
        fonts.load_fonts(spec.path, spec.size, fallback=False)
    except fonts.FontError as e:
        option = f"--font {spec.path}" if spec.path else f"--font-size {spec.size}"
        raise ConfigError(f"{option}: {e}") from None
    try:
        fonts.load_palette(spec.palette)
    except fonts.FontError as e:
        raise ConfigError(f"--palette {spec.palette}: {e}") from None


def check_tokens(settings: TokenSettings) -> None:
    """``--websockify-tokens DIR`` is a directory vncmux can write files into."""
    directory = settings.directory
    if directory is None:
        return
    if not os.path.isdir(directory):
        raise ConfigError(f"--websockify-tokens {directory}: not a directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigError(f"--websockify-tokens {directory}: not writable by this user")


def _files(config: Config) -> list[tuple[str, str, bool]]:
    """(the option as typed, path, holds a secret) for each file vncmux reads at start.
    A secret is what lets its reader in: passwords and the TLS private key (which may sit in
    the certificate file); certificates are public."""
    files = [
        ("--password-file ", config.password_file, True),
        ("--view-password-file ", config.view_password_file, True),
        ("--users-file ", config.users_file, True),
    ]
    if config.api is not None:
        files += [
            ("--api-token-file ", config.api.token_file, True),
            ("--api-view-token-file ", config.api.view_token_file, True),
        ]
    tls = config.vnc.tls
    if tls is not None:
        if tls.key == tls.cert:
            files.append(("--vnc tls-cert=", tls.cert, True))
        else:
            files += [("--vnc tls-cert=", tls.cert, False), ("--vnc tls-key=", tls.key, True)]
        files.append(("--vnc tls-ca=", tls.ca, False))
    return [(where, path, secret) for where, path, secret in files if path is not None]


def check_readable(where: str, path: str) -> None:
    """``path`` is a regular file this process can read; ``where`` names the option."""
    if not os.path.isfile(path):
        raise ConfigError(f"{where}{path} does not exist")
    if not os.access(path, os.R_OK):
        raise ConfigError(f"{where}{path} is not readable")


def check_writable(where: str, path: str) -> None:
    """vncmux can create or append to ``path``: its directory exists and is writable, or
    the file exists (not a directory) and is writable."""
    if os.path.isdir(path):
        raise ConfigError(f"{where}{path} is a directory")
    if os.path.exists(path):
        if not os.access(path, os.W_OK):
            raise ConfigError(f"{where}{path} is not writable")
        return
    parent = os.path.dirname(path) or "."
    if not os.path.isdir(parent):
        raise ConfigError(f"{where}{path}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{where}{path}: the directory {parent} is not writable")


def check_device(spec: DeviceSpec) -> None:
    """A tty path must name a character device, so a typo fails now rather than as an endless
    reopen loop.  With ``--wait-device`` a path that is not there yet is fine (a USB adapter
    plugged in later); something there that is not a tty never is."""
    if spec.kind != "tty":
        return
    try:
        mode = os.stat(spec.path).st_mode
    except FileNotFoundError:
        if spec.wait:
            return
        raise ConfigError(
            f"device {spec.path} does not exist (--wait-device starts anyway and waits for it)"
        ) from None
    except OSError as e:
        raise ConfigError(f"device {spec.path}: {e.strerror}") from None
    if not stat.S_ISCHR(mode):
        raise ConfigError(f"device {spec.path} is not a character device (a tty)")


def check_endpoint(server: ByteServer) -> None:
    """Twisted can build ``server``'s endpoint (nothing listens yet).  For ``ssl:`` this reads
    the key and certificate, so a missing or bad key file is reported here."""
    from twisted.internet.endpoints import serverFromString

    if server.endpoint in (server.label, server.label + ":mode=600"):
        where = f"--socket {server.label}"  # as the user typed it
    else:
        where = f"chardev {server.label} ({server.endpoint})"
    try:
        serverFromString(object(), server.endpoint)  # builds the endpoint object only
    except (IndexError, KeyError) as e:
        if server.endpoint.startswith("systemd:"):  # socket activation without the socket
            raise ConfigError(
                f"{where}: systemd passed no such socket (is the unit socket-activated?)"
            ) from None
        raise ConfigError(f"{where}: {e}".replace("\n", " ")) from None
    except (ValueError, TypeError, OSError, ImportError) as e:
        raise ConfigError(f"{where}: {e}".replace("\n", " ")) from None
    except Exception as e:  # noqa: BLE001 - pyOpenSSL's errors for a bad ssl: key
        raise ConfigError(f"{where}: {type(e).__name__}: {e}".replace("\n", " ")) from None


def check_view_password(config: Config) -> None:
    """A view-only password that opens the full-control door too is a lie to whoever hands it
    out: refuse it.  Compared as VNC authentication compares them (the DES key), so two
    spellings of the same key count as the same password."""
    if config.view_password_file is None or config.password_file is None:
        return
    from vncmux.rfb import auth

    full = auth.read_password_file(config.password_file)
    view = auth.read_password_file(config.view_password_file)
    probe = bytes(16)  # any challenge: the same key gives the same answer
    if auth.vnc_auth_response(probe, full) == auth.vnc_auth_response(probe, view):
        raise ConfigError(
            f"--view-password-file {config.view_password_file} holds the same password as "
            f"--password-file {config.password_file}: a view-only viewer would get full "
            "control; choose a different view-only password"
        )


def read_token_file(where: str, path: str) -> str:
    """The API token in ``path``: its first line, stripped; ``ConfigError`` if there is
    none (an empty token would let anyone in)."""
    try:
        with open(path, encoding="utf-8", errors="strict") as f:
            token = f.readline().strip()
    except (OSError, UnicodeError) as e:
        raise ConfigError(f"{where}{path}: {e}") from None
    if not token:
        raise ConfigError(f"{where}{path}: the first line (the token) is empty")
    return token


def check_api(config: Config) -> None:
    """The API's endpoint can be built and its token files hold a token each, two
    different ones: a view-only token that also opens the input endpoints would be a lie."""
    api = config.api
    if api is None:
        return
    from twisted.internet.endpoints import serverFromString

    try:
        serverFromString(object(), api.endpoint)  # builds the endpoint object only
    except Exception as e:  # noqa: BLE001 - whatever Twisted or pyOpenSSL raise
        raise ConfigError(f"--api {api.endpoint}: {e}".replace("\n", " ")) from None
    full = read_token_file("--api-token-file ", api.token_file) if api.token_file else None
    view = (
        read_token_file("--api-view-token-file ", api.view_token_file)
        if api.view_token_file
        else None
    )
    if full is not None and full == view:
        raise ConfigError(
            f"--api-view-token-file {api.view_token_file} holds the same token as "
            f"--api-token-file {api.token_file}: choose a different view-only token"
        )


def warnings(config: Config) -> list[str]:
    """One line per secret file other users can read (mode & 0o044): password files, the
    users file, the TLS private key.  Allowed (the owner may want a group to share it), but
    said loudly, since whoever reads it gets the console."""
    lines: list[str] = []
    for where, path, secret in _files(config):
        if not secret:
            continue
        try:
            mode = os.stat(path).st_mode
        except OSError:
            continue
        if mode & _OTHERS_READ:
            who = {0o040: "its group", 0o004: "every user"}.get(
                mode & _OTHERS_READ, "its group and every user"
            )
            lines.append(
                f"{where}{path} is readable by {who} (mode {stat.S_IMODE(mode):04o}): whoever "
                f"reads it can use it to reach the console (chmod 600 {path})"
            )
    return lines
