"""Throwaway TLS material for VeNCrypt tests: a CA, a server certificate for
localhost/127.0.0.1 and a client certificate, made fresh per test (EC P-256, valid a day)."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


class TLSFiles:
    """A throwaway CA, a server certificate for localhost/127.0.0.1 and a client
    certificate, all signed by the CA, written as PEM files in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = (
            x509.CertificateBuilder()
            .subject_name(_name("vncmux test CA"))
            .issuer_name(_name("vncmux test CA"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        self.ca = directory / "ca-cert.pem"
        self.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))

        def leaf(
            cn: str, san: list[x509.GeneralName] | None
        ) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
            key = ec.generate_private_key(ec.SECP256R1())
            builder = (
                x509.CertificateBuilder()
                .subject_name(_name(cn))
                .issuer_name(ca.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=1))
            )
            if san:
                builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
            return builder.sign(ca_key, hashes.SHA256()).public_bytes(
                serialization.Encoding.PEM
            ), key

        cert, key = leaf(
            "localhost",
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
        )
        self.cert = directory / "server-cert.pem"
        self.key = directory / "server-key.pem"
        self.cert.write_bytes(cert)
        _write_key(key, self.key)
        ccert, ckey = leaf("alice", None)
        self.client_cert = directory / "client-cert.pem"
        self.client_key = directory / "client-key.pem"
        self.client_cert.write_bytes(ccert)
        _write_key(ckey, self.client_key)

    def client_context(self, with_cert: bool = False) -> ssl.SSLContext:
        """A client context that trusts only the test CA (hostname 'localhost')."""
        ctx = ssl.create_default_context(cafile=str(self.ca))
        if with_cert:
            ctx.load_cert_chain(str(self.client_cert), str(self.client_key))
        return ctx
