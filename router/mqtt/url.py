"""Broker URLs: ``mqtt://[user[:password]@]host[:port][?options]`` and ``mqtts://``.

Options (query string): ``ca=FILE`` (CA bundle; default: the system's), ``cert=FILE`` and
``key=FILE`` (a client certificate), ``insecure=1`` (skip the host name check, the chain
is still verified), ``client_id=ID``. A user without a password in the URL takes it from
a password file (``ppr run --mqtt-password-file``: its first line, readable by its owner
only, as ssh wants of a key) or the ``PPR_MQTT_PASSWORD`` environment variable, so it
need not appear in a process list; a user with no password at all is refused. The
password never appears in a message or a log line (``redacted``).
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from firmware_bridge.files import TooOpenError, read_owner_only
from router.mqtt.errors import BrokerUrlError

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
PASSWORD_ENV = "PPR_MQTT_PASSWORD"
_OPTIONS = ("ca", "cert", "key", "insecure", "client_id")


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    tls_insecure: bool = False
    client_id: str | None = None

    def redacted(self) -> str:
        """The URL for logs and messages: never the password."""
        user = f"{self.username}:***@" if self.username and self.password else ""
        if self.username and not self.password:
            user = f"{self.username}@"
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"

    def tls_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        try:
            ctx = ssl.create_default_context(cafile=self.ca_file)
            if self.cert_file is not None:
                ctx.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise BrokerUrlError(f"{self.redacted()}: TLS set-up failed: {exc}") from exc
        if self.tls_insecure:
            ctx.check_hostname = False
        return ctx


def parse_broker_url(url: str, password_file: Path | None = None) -> BrokerConfig:
    parts = urlsplit(url)
    shown = _redact(url, parts.password)  # what messages may show of the URL
    if parts.scheme not in DEFAULT_PORTS:
        raise BrokerUrlError(f"{shown}: the scheme must be mqtt:// or mqtts://")
    if not parts.hostname:
        raise BrokerUrlError(f"{shown}: no broker host")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise BrokerUrlError(f"{shown}: the port must be a number in 1..65535") from None
    if parts.path not in ("", "/"):
        raise BrokerUrlError(f"{shown}: a broker URL has no path (got '{parts.path}')")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - set(_OPTIONS))
    if unknown:
        raise BrokerUrlError(
            f"{shown}: unknown option '{unknown[0]}' (known: {', '.join(_OPTIONS)})"
        )
    opt = {k: v[-1] for k, v in query.items()}
    tls = parts.scheme == "mqtts"
    if not tls and any(k in opt for k in ("ca", "cert", "key", "insecure")):
        raise BrokerUrlError(f"{shown}: TLS options need an mqtts:// URL")
    if ("cert" in opt) != ("key" in opt):
        raise BrokerUrlError(f"{shown}: a client certificate needs both cert= and key=")
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    if password_file is not None:
        if not username or password is not None:
            raise BrokerUrlError(
                f"{shown}: a password file goes with a user and no password in the URL "
                f"(mqtt://USER@host)"
            )
        password = read_password(password_file)
    if username and password is None:
        password = os.environ.get(PASSWORD_ENV)
        if password is None:
            raise BrokerUrlError(
                f"{shown}: no password for user '{username}'; give --mqtt-password-file "
                f"FILE or set {PASSWORD_ENV}"
            )
    insecure = opt.get("insecure", "0")
    if insecure not in ("0", "1"):
        raise BrokerUrlError(f"{shown}: insecure= takes 0 or 1")
    return BrokerConfig(
        host=parts.hostname,
        port=port,
        tls=tls,
        username=username,
        password=password,
        ca_file=Path(opt["ca"]) if "ca" in opt else None,
        cert_file=Path(opt["cert"]) if "cert" in opt else None,
        key_file=Path(opt["key"]) if "key" in opt else None,
        tls_insecure=insecure == "1",
        client_id=opt.get("client_id") or None,
    )


def read_password(path: Path) -> str:
    """The first line of a password file that only its owner may read."""
    try:
        data = read_owner_only(path, 4096)
    except TooOpenError as exc:
        raise BrokerUrlError(
            f"{path}: the MQTT password is readable by group or others (mode "
            f"{exc.mode:04o}); fix with: chmod 600 {path}"
        ) from None
    except OSError as exc:
        raise BrokerUrlError(f"{path}: cannot read the MQTT password: {exc.strerror}") from exc
    try:
        line = data.decode("utf-8").splitlines()[0] if data.strip() else ""
    except UnicodeDecodeError:
        line = ""
    if not line:
        raise BrokerUrlError(f"{path}: no password on its first line (UTF-8 text)")
    return line


def _redact(url: str, password: str | None) -> str:
    """The URL as typed, but ``***`` for a password in it."""
    if not password:
        return url
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.partition("@")
    if not at:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"
