"""A real Mosquitto broker on a free loopback port, for tests and the services benchmark.

``Broker(tmp_path)`` writes a configuration (anonymous, or a password file, or TLS with a
throw-away CA), starts ``mosquitto -c``, waits until it accepts connections, and can be
stopped and restarted on the same port. Persistence is on, so a persistent subscriber's
queued messages survive a restart (Mosquitto saves them on SIGTERM).
"""

from __future__ import annotations

import datetime as dt
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
START_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


class Broker:
    def __init__(
        self,
        directory: Path,
        *,
        users: dict[str, str] | None = None,
        tls: bool = False,
        shipped: Path | None = None,
    ) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.users = users
        self.shipped = shipped  # a folder with ppr.conf and ppr.acl, used as shipped
        self.tls = make_tls_files(self.dir) if tls else None
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = self.dir / "mosquitto.conf"
        self._write_conf()

    def url(self, user: str | None = None, password: str | None = None) -> str:
        auth = f"{user}:{password}@" if user and password else (f"{user}@" if user else "")
        if self.tls:
            return f"mqtts://{auth}localhost:{self.port}?ca={self.tls.ca}"
        return f"mqtt://{auth}127.0.0.1:{self.port}"

    def _write_conf(self) -> None:
        lines = [
            f"listener {self.port} 127.0.0.1",
            # as root, Mosquitto would switch to user 'mosquitto', who cannot read tmp dirs
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
            "persistence true",
            f"persistence_location {self.dir}/",
            "autosave_interval 0",
            "log_dest none",
            "max_queued_messages 100000",
        ]
        if self.shipped is not None:
            # the shipped files, with the test's folder for /etc/mosquitto and its port
            assert self.users, "the shipped configuration admits users only"
            self._passwords(self.dir / "ppr.passwd")
            shutil.copy(self.shipped / "ppr.acl", self.dir / "ppr.acl")
            text = (
                (self.shipped / "ppr.conf").read_text().replace("/etc/mosquitto/", f"{self.dir}/")
            )
            lines = [line for line in lines if not line.startswith("listener ")] + [
                f"listener {self.port} 127.0.0.1" if line.startswith("listener ") else line
                for line in text.splitlines()
            ]
        elif self.users is not None:
            pw = self.dir / "passwords"
            self._passwords(pw)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        if self.tls:
            lines += [
                f"cafile {self.tls.ca}",
                f"certfile {self.tls.cert}",
                f"keyfile {self.tls.key}",
            ]
        self.conf.write_text("\n".join(lines) + "\n")

    def _passwords(self, path: Path) -> None:
        """The password file, made with mosquitto_passwd as docs/mqtt.md says."""
        assert self.users is not None
        path.write_text("")
        for user, password in self.users.items():
            subprocess.run(
                ["mosquitto_passwd", "-b", str(path), user, password],
                check=True, capture_output=True, timeout=30,
            )  # fmt: skip
        path.chmod(0o600)

    def start(self) -> None:
        assert self.proc is None, "already running"
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                self.proc = None
                raise RuntimeError(f"mosquitto exited at start: {err.strip()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on {self.port} in {START_TIMEOUT_S} s")

    def stop(self) -> None:
        """SIGTERM (Mosquitto saves its persistence file), then wait; SIGKILL if stuck."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()

    def __enter__(self) -> Broker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


_CA_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def make_tls_files(directory: Path) -> TlsFiles:
    """A throw-away CA and a server certificate for ``localhost``."""
    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("ppr test CA"))
        .issuer_name(name("ppr test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    files.key.chmod(0o600)
    return files
