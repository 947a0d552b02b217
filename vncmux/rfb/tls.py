"""The TLS server context for VeNCrypt, built once at start from the ``--vnc`` options.

``tls-cert=FILE,tls-key=FILE`` (PEM; the key may also sit in the cert file), optionally
``tls-ca=FILE`` and ``x509verify=on`` to require a client certificate signed by that CA, as
QEMU's ``tls-creds-x509,verify-peer=on``.  Files are read and checked here, while the
service is built, so a missing file or a key that does not match its certificate is a
one-line ``ConfigError`` before anything listens.  The protocol is TLS 1.2 (ECDHE, AEAD
ciphers): ``context_factory`` says why not 1.3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vncmux.config import ConfigError


@dataclass(frozen=True)
class TLSSettings:
    """What the ``--vnc`` TLS options say (file paths, not yet read)."""

    cert: str
    key: str
    ca: str | None = None
    verify: bool = False


def settings_from_options(options: tuple[tuple[str, str], ...]) -> TLSSettings | None:
    """The TLS settings among ``VncSpec.options``; None when TLS is not asked for.

    ``tls-cert=FILE[,tls-key=FILE][,tls-ca=FILE][,x509verify=on]``: ``tls-key`` defaults to
    the cert file (one PEM holding both); ``x509verify=on`` needs ``tls-ca``.  QEMU's older
    ``x509verify=DIR`` also works: DIR holds ``server-cert.pem``, ``server-key.pem`` and
    ``ca-cert.pem``, and client certificates are verified.  ``tls-ca``/``tls-key`` without a
    certificate is an error."""
    opts = dict(options)
    cert = opts.get("tls-cert")
    key = opts.get("tls-key")
    ca = opts.get("tls-ca")
    verify_text = opts.get("x509verify", "off")
    lowered = verify_text.lower()
    if lowered in ("on", "yes", "true", "y"):
        verify = True
    elif lowered in ("off", "no", "false", "n"):
        verify = False
    else:  # QEMU's x509verify=DIR
        directory = verify_text.rstrip("/")
        verify = True
        cert = cert or f"{directory}/server-cert.pem"
        key = key or f"{directory}/server-key.pem"
        ca = ca or f"{directory}/ca-cert.pem"
    if cert is None:
        for name in ("tls-key", "tls-ca", "x509verify"):
            if name in opts:
                raise ConfigError(f"--vnc {name}= needs tls-cert= as well")
        return None
    if verify and ca is None:
        raise ConfigError("--vnc x509verify=on needs tls-ca=FILE (the CA that signs clients)")
    return TLSSettings(cert=cert, key=key or cert, ca=ca, verify=verify)


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ConfigError(f"--vnc {what}={path}: {e.strerror or e}") from None


def context_factory(settings: TLSSettings) -> Any:
    """A Twisted ``CertificateOptions`` (an IOpenSSLServerConnectionCreator) for ``settings``.

    Raises ConfigError when a file cannot be read or parsed or the key does not match."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from OpenSSL import SSL, crypto
    from twisted.internet import ssl

    cert_pem = _read(settings.cert, "tls-cert")
    key_pem = _read(settings.key, "tls-key")
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise ConfigError(f"--vnc tls-cert={settings.cert}: not a PEM certificate") from None
    try:
        key = load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise ConfigError(
            f"--vnc tls-key={settings.key}: not an unencrypted PEM private key"
        ) from None
    check = SSL.Context(SSL.TLS_SERVER_METHOD)
    try:
        check.use_certificate(cert)
        check.use_privatekey(key)  # type: ignore[arg-type]
        check.check_privatekey()
    except SSL.Error:
        raise ConfigError(
            f"--vnc tls-key={settings.key} does not match tls-cert={settings.cert}"
        ) from None
    authorities: list[Any] = []
    if settings.ca is not None:
        ca_pem = _read(settings.ca, "tls-ca")
        try:
            # Twisted adds CAs to an X509Store, which takes pyOpenSSL certificates only
            authorities.append(
                crypto.X509.from_cryptography(x509.load_pem_x509_certificate(ca_pem))
            )
        except ValueError:
            raise ConfigError(f"--vnc tls-ca={settings.ca}: not a PEM certificate") from None
    # cryptography objects, not pyOpenSSL's PKey/X509 (deprecated by pyOpenSSL; Twisted's
    # annotations still name those, but hands them straight to pyOpenSSL, which takes both).
    key_any: Any = key
    cert_any: Any = cert
    options = ssl.CertificateOptions(
        privateKey=key_any,
        certificate=cert_any,
        verify=settings.verify,
        caCerts=authorities if settings.verify else None,
        requireCertificate=settings.verify,
        raiseMinimumTo=ssl.TLSVersion.TLSv1_2,
        # TLS 1.2 only: under TLS 1.3 OpenSSL sends session tickets right after the
        # handshake (pyOpenSSL cannot set their number to 0), and TigerVNC 1.12's viewer
        # then waits forever for the first RFB bytes GnuTLS has already buffered.
        lowerMaximumSecurityTo=ssl.TLSVersion.TLSv1_2,
    )
    try:
        options.getContext()  # built now: a problem shows at start, not per viewer
    except (SSL.Error, TypeError, ValueError) as e:
        raise ConfigError(f"--vnc TLS settings: {e or type(e).__name__}") from None
    return options


def peer_subject(transport: Any) -> str | None:
    """The verified client certificate's subject as text ('CN=alice, O=...'), if any."""
    getter = getattr(transport, "getPeerCertificate", None)
    if getter is None:
        return None
    try:
        cert = getter()
    except Exception:  # noqa: BLE001 - no certificate, or not TLS yet
        return None
    if cert is None:
        return None
    parts = cert.get_subject().get_components()
    return ", ".join(f"{k.decode()}={v.decode(errors='replace')}" for k, v in parts)
