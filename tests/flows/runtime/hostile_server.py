"""A local HTTP(S) server that answers the way a hostile or careless host would: slowly, by redirects, with a
gzip bomb, with more bytes than it declares. Loopback only; every request is recorded (path, Host header, the
address it arrived on), so a test can prove that a refused URL was never asked for."""

from __future__ import annotations

import datetime as dt
import http.server
import socket
import ssl
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

Handler = Callable[[http.server.BaseHTTPRequestHandler], None]


@dataclass
class Hit:
    path: str
    host: str
    accept_encoding: str


@dataclass
class HostileServer:
    base_url: str
    host: str
    port: int
    routes: dict[str, Handler]
    hits: list[Hit] = field(default_factory=list)
    # per ``hold`` route: requests held now and the most at once (a route of an earlier test may still be holding)
    active: dict[str, int] = field(default_factory=dict)
    most_active: dict[str, int] = field(default_factory=dict)
    guard: threading.Lock = field(default_factory=threading.Lock)

    def route(self, handler: Handler, name: str = "x") -> str:
        path = f"/{uuid.uuid4().hex[:10]}/{name}"
        self.routes[path] = handler
        return self.base_url + path

    def asked(self, url: str) -> int:
        path = url.removeprefix(self.base_url) if url.startswith(self.base_url) else url
        return sum(1 for hit in self.hits if hit.path == path)

    # --- answers ---------------------------------------------------------------------------------------------

    def body(self, data: bytes, name: str = "x", headers: dict[str, str] | None = None, length: bool = True) -> str:
        def handle(req: http.server.BaseHTTPRequestHandler) -> None:
            req.send_response(200)
            for key, value in (headers or {"Content-Type": "image/png"}).items():
                req.send_header(key, value)
            if length:
                req.send_header("Content-Length", str(len(data)))
            else:
                req.send_header("Connection", "close")  # the body ends when the connection does
            req.end_headers()
            _write(req, data)

        return self.route(handle, name)

    def redirect(self, location: str, status: int = 302, name: str = "r") -> str:
        def handle(req: http.server.BaseHTTPRequestHandler) -> None:
            req.send_response(status)
            req.send_header("Location", location)
            req.send_header("Content-Length", "0")
            req.end_headers()

        return self.route(handle, name)

    def drip(self, data: bytes, every: float, name: str = "slow.png") -> str:
        """Declares the whole length, then sends one byte every ``every`` seconds."""
        def handle(req: http.server.BaseHTTPRequestHandler) -> None:
            req.send_response(200)
            req.send_header("Content-Type", "image/png")
            req.send_header("Content-Length", str(len(data)))
            req.end_headers()
            for i in range(len(data)):
                if not _write(req, data[i:i + 1]):
                    return
                time.sleep(every)

        return self.route(handle, name)

    def hold(self, seconds: float, data: bytes, name: str = "busy.png") -> str:
        """Answers after ``seconds``; ``most_active[url]`` is how many requests it held at once."""
        def handle(req: http.server.BaseHTTPRequestHandler) -> None:
            with self.guard:
                self.active[url] += 1
                self.most_active[url] = max(self.most_active[url], self.active[url])
            try:
                time.sleep(seconds)
            finally:
                with self.guard:
                    self.active[url] -= 1
            req.send_response(200)
            req.send_header("Content-Length", str(len(data)))
            req.end_headers()
            _write(req, data)

        url = self.route(handle, name)
        self.active[url] = self.most_active[url] = 0
        return url


def _write(req: http.server.BaseHTTPRequestHandler, data: bytes) -> bool:
    try:
        req.wfile.write(data)
        req.wfile.flush()
        return True
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
        return False  # the client stopped reading: that is the point of most tests here


def gzip_bomb(inflated: int = 200 * 1024 * 1024) -> bytes:
    """``inflated`` zero bytes, gzip-compressed (200 MiB -> about 200 KB), built without holding them."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    block = bytes(1024 * 1024)
    parts = [packer.compress(block) for _ in range(inflated // len(block))]
    parts.append(packer.flush())
    return b"".join(parts)


@contextmanager
def hostile_server(host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> Iterator[HostileServer]:
    routes: dict[str, Handler] = {}
    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    class Server(http.server.ThreadingHTTPServer):
        address_family = family
        daemon_threads = True

    state: HostileServer

    class Handle(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            path = self.path.split("?", 1)[0]
            state.hits.append(Hit(path, self.headers.get("Host", ""), self.headers.get("Accept-Encoding", "")))
            handler = routes.get(path)
            if handler is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            handler(self)

        def log_message(self, *args: object) -> None:
            pass

    server = Server((host, 0), Handle)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    shown = f"[{host}]" if ":" in host else host
    state = HostileServer(f"{'https' if tls else 'http'}://{shown}:{port}", host, port, routes)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class Certificate:
    server: ssl.SSLContext  # serves the certificate
    client: ssl.SSLContext  # trusts it (and nothing else)


def self_signed(*names: str) -> Certificate:
    """A throw-away CA-less certificate for ``names`` (DNS subject alternative names)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = Path(tempfile.mkdtemp(prefix="clipflow-tls-"))
    cert_pem, key_pem = folder / "cert.pem", folder / "key.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_pem, key_pem)
    client = ssl.create_default_context(cafile=str(cert_pem))
    return Certificate(server, client)
