"""The SMTP side's TLS certificate: the configured one, or a self-signed one made at first
start and kept in the state directory (``email-cert.pem``, ``email-key.pem``)."""

from __future__ import annotations

import hashlib
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from appliance.config import Settings

__all__ = ["Certificate", "certificate", "fingerprint", "make_self_signed", "state_dir"]

CERT_NAME = "email-cert.pem"
KEY_NAME = "email-key.pem"


@dataclass(frozen=True, slots=True)
class Certificate:
    cert_file: Path
    key_file: Path
    self_signed: bool

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.cert_file)

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        return ctx


def state_dir(settings: Settings) -> Path:
    """``[email] state_dir``, else the SQLite database's folder, else ``./var``."""
    if settings.email.state_dir:
        return Path(settings.email.state_dir)
    url = settings.appliance.database_url
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        if path and path != ":memory:":
            return Path(path).expanduser().resolve().parent
    return Path("var").resolve()


def fingerprint(cert_file: Path) -> str:
    """The certificate's SHA-256 fingerprint as ``AB:CD:…`` (what mail clients show)."""
    der = ssl.PEM_cert_to_DER_cert(cert_file.read_text(encoding="ascii"))
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def certificate(settings: Settings, *, create: bool = True, in_subprocess: bool = False) -> Certificate | None:
    """The certificate to use; a self-signed one is made when none is configured or kept
    (``create=False``: None instead). ``in_subprocess`` makes it in a child process: the
    daemon then never imports ``cryptography`` (~7 MB it would keep for nothing)."""
    cfg = settings.email
    if cfg.cert_file:
        return Certificate(Path(cfg.cert_file), Path(cfg.key_file), self_signed=False)
    folder = state_dir(settings)
    cert, key = folder / CERT_NAME, folder / KEY_NAME
    if cert.exists() and key.exists():
        return Certificate(cert, key, self_signed=True)
    if not create:
        return None
    if in_subprocess:
        import subprocess
        import sys

        subprocess.run([sys.executable, "-m", "appliance.email.certs", str(cert), str(key), cfg.domain],
                       check=True, timeout=120, capture_output=True)
    else:
        make_self_signed(cert, key, cfg.domain)
    return Certificate(cert, key, self_signed=True)


def make_self_signed(cert_path: Path, key_path: Path, domain: str) -> None:
    """Make a self-signed EC P-256 certificate for ``domain`` valid 10 years (key 0600)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_bytes = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    tmp_key = key_path.with_suffix(".tmp")
    fd = os.open(tmp_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_bytes)
    os.replace(tmp_key, key_path)
    tmp_cert = cert_path.with_suffix(".tmp")
    tmp_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.replace(tmp_cert, cert_path)


if __name__ == "__main__":  # the daemon's child process: CERT KEY DOMAIN
    import sys

    make_self_signed(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
