"""The TLS server context for VeNCrypt, built once at start from the typed ``TlsSettings``.

``vncmux.qemu_opts.parse_tls`` reads ``tls-cert=FILE,tls-key=FILE`` (PEM; the key may also
sit in the cert file), ``tls-ca=FILE`` and ``x509verify=on`` (a client certificate signed by
that CA is required, as QEMU's ``tls-creds-x509,verify-peer=on``) into ``config.vnc.tls``.
The files are read and checked here, while the service is built, so a key that does not
match its certificate is a one-line ``ConfigError`` before anything listens.  The protocol
is TLS 1.2 (ECDHE, AEAD ciphers): ``context_factory`` says why not 1.3.
"""

from __future__ import annotations

from typing import Any

from vncmux.errors import ConfigError
from vncmux.specs import TlsSettings


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ConfigError(f"--vnc {what}={path}: {e.strerror or e}") from None


def context_factory(settings: TlsSettings) -> Any:
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
