"""HTTPS with a pinned address still checks the certificate against the host name."""

from __future__ import annotations

import datetime
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from runtime import net


def _self_signed(tmp_path, name: str) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)


class _Hello(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = f"sni ok, host={self.headers['Host']}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def tls_server(tmp_path, settings) -> Iterator[tuple[int, str, str]]:
    """An HTTPS server on 127.0.0.1 whose certificate names ``localhost``."""
    cert, key = _self_signed(tmp_path, "localhost")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    settings.AGENT_HTTP_ALLOWED_HOSTS = [f"localhost:{port}"]
    try:
        yield port, cert, str(tmp_path)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.slow
def test_pinned_https_verifies_the_name_and_sends_sni(tls_server):
    port, cert, _ = tls_server
    trusted = ssl.create_default_context(cafile=cert)
    response = net.safe_request_sync("GET", f"https://localhost:{port}/", verify=trusted, timeout=5)
    assert response.status == 200
    assert response.peer == "127.0.0.1"
    assert response.text == f"sni ok, host=localhost:{port}"


@pytest.mark.slow
def test_a_certificate_for_another_name_is_refused(tls_server, settings):
    port, cert, _ = tls_server
    trusted = ssl.create_default_context(cafile=cert)
    settings.AGENT_HTTP_ALLOWED_HOSTS = [f"127.0.0.1:{port}"]
    # Same server, same trusted certificate, but asked for by another name: no match, no data.
    with pytest.raises(net.UpstreamError, match="CERTIFICATE_VERIFY_FAILED"):
        net.safe_request_sync("GET", f"https://127.0.0.1:{port}/", verify=trusted, timeout=5)
