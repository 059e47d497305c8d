"""A TLS front for the Temporal dev server (which speaks only plaintext): terminates TLS with ALPN h2,
requires a client certificate signed by its own CA (mTLS), and relays the bytes to the dev server.

Certificates (a CA, the server's for 127.0.0.1, and a client's) are made with ``cryptography``.
``accepted`` lists the client certificates' common names of accepted connections; ``refused`` counts
handshakes that failed (no or wrong client certificate).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.ports import free_port


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _write(path: Path, cert, key=None) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.with_suffix(".key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def _issue(name: str, key, issuer_name, issuer_key, *, ca: bool = False, server: bool = False,
           dns_names: tuple[str, ...] = ()):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .issuer_name(issuer_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
             *(x509.DNSName(n) for n in ("localhost", *dns_names))]), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(directory: Path, server_dns_names: tuple[str, ...] = ()) -> dict[str, Path]:
    """``ca.pem``, ``server.pem``/``server.key`` (for 127.0.0.1, localhost and ``server_dns_names``),
    ``client.pem``/``client.key`` (CN agent-host)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test temporal CA")])
    ca = _issue("test temporal CA", ca_key, ca_name, ca_key, ca=True)
    _write(directory / "ca.pem", ca)
    for name, server in (("server", True), ("client", False)):
        key = _key()
        _write(directory / f"{name}.pem", _issue("127.0.0.1" if server else "agent-host", key, ca_name, ca_key,
                                                  server=server, dns_names=server_dns_names), key)
    return {"ca": directory / "ca.pem", "server_cert": directory / "server.pem", "server_key": directory / "server.key",
            "client_cert": directory / "client.pem", "client_key": directory / "client.key"}


class TlsProxy:
    """127.0.0.1:<port> (mTLS) → ``upstream`` (plaintext), in a background thread."""

    def __init__(self, upstream: str, pki: dict[str, Path]) -> None:
        self.upstream_host, port = upstream.rsplit(":", 1)
        self.upstream_port = int(port)
        self.port = free_port()
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki["ca"]))
        self.context.load_cert_chain(pki["server_cert"], pki["server_key"])
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.set_alpn_protocols(["h2"])
        self.accepted: list[str] = []
        self.refused = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tls-proxy", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "TlsProxy":
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", self.port))
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await writer.start_tls(self.context)
        except (ssl.SSLError, ConnectionError, OSError):
            self.refused += 1
            writer.close()
            return
        peer = writer.get_extra_info("peercert") or {}
        subject = dict(item for rdn in peer.get("subject", ()) for item in rdn)
        self.accepted.append(subject.get("commonName", "?"))
        try:
            up_reader, up_writer = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError, ssl.SSLError):
            pass
        finally:
            try:
                writer.close()
            except (ConnectionError, OSError, RuntimeError):
                pass
