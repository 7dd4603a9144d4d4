"""The SSRF-safe client: hostile URLs are refused before any connection is made."""

from __future__ import annotations

import asyncio
import ipaddress
import logging

import pytest
from django.core.exceptions import ImproperlyConfigured

from runtime import net

# Each entry: a URL template ({port} = the canary's port) and a word the refusal must contain.
HOSTILE = [
    ("http://2130706433:{port}/", "loopback"),  # decimal 127.0.0.1
    ("http://0177.0.0.1:{port}/", "loopback"),  # octal
    ("http://0x7f.1:{port}/", "loopback"),  # hex, short
    ("http://127.1:{port}/", "loopback"),  # short form
    ("http://127.0.0.1:{port}/", "loopback"),
    ("http://0.0.0.0:{port}/", "unspecified"),
    ("http://0:{port}/", "unspecified"),
    ("http://[::]:{port}/", "unspecified"),
    ("http://[::1]:{port}/", "loopback"),
    ("http://[::ffff:127.0.0.1]:{port}/", "IPv4-mapped form of 127.0.0.1"),
    ("http://[::ffff:7f00:1]:{port}/", "IPv4-mapped form of 127.0.0.1"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://100.64.0.1/", "carrier-grade NAT"),
    ("http://10.0.0.1/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://[fd00::1]/", "private"),
    ("http://[fd12:3456:789a::1]/", "private"),
    ("http://[64:ff9b::7f00:1]:{port}/", "NAT64 form of 127.0.0.1"),
    ("http://[64:ff9b::a9fe:a9fe]/", "NAT64 form of 169.254.169.254"),
    ("http://[64:ff9b:1::a00:1]/", "local-use NAT64"),
    ("http://[2002:a00:1::]/", "6to4 form of 10.0.0.1"),
    ("http://[2002:7f00:1::1]:{port}/", "6to4 form of 127.0.0.1"),
    ("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "Teredo"),
    ("http://224.0.0.1/", "multicast"),
    ("http://localhost:{port}/", "loopback"),
    ("http://LOCALHOST.:{port}/", "loopback"),
    ("file:///etc/passwd", "Only http and https"),
    ("gopher://127.0.0.1:{port}/_GET", "Only http and https"),
    ("ftp://example.com/", "Only http and https"),
    ("http://user:pw@127.0.0.1:{port}/", "Credentials"),
    ("http://1.2.3.4.5/", "not a valid"),
    ("http://256.1/", "out of range"),
    ("http://08.0.0.1/", "not a valid"),
    ("http://exa mple.com/", "spaces"),
    ("http://example.com\\@127.0.0.1/", "backslashes"),
]


@pytest.mark.parametrize(("template", "reason"), HOSTILE)
def test_hostile_urls_are_refused_and_the_canary_hears_nothing(canary, settings, template, reason):
    settings.AGENT_HTTP_ALLOWED_HOSTS = []
    url = template.format(port=canary.port)

    with pytest.raises(net.BlockedDestination) as excinfo:
        net.safe_request_sync("GET", url, timeout=3)

    assert reason.lower() in str(excinfo.value).lower()
    assert canary.connections() == 0


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("8.8.8.8", "8.8.8.8"),
        ("example.com", None),
        ("1e100.net", None),
    ],
)
def test_numeric_hosts_decode_to_the_address_they_mean(host, expected):
    parsed = net.parse_ipv4_host(host)
    assert (str(parsed) if parsed else None) == expected


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8"],
)
def test_public_addresses_pass_even_in_embedded_forms(address):
    assert net.blocked_reason(ipaddress.ip_address(address)) is None


def test_allow_list_entries_parse_and_bad_ones_name_the_entry(settings):
    entries = [
        net.parse_allow_entry(e)
        for e in ["internal.corp", "api.corp:8443", "*.svc", "10.0.0.0/8", "[::1]:81"]
    ]
    target = net.Target(scheme="http", host="x.svc", port=80, path="/", literal=None)
    assert entries[2].matches(target.host, 80, ipaddress.ip_address("10.1.1.1"))
    assert entries[3].matches("any", 1, ipaddress.ip_address("10.9.9.9"))
    assert not entries[1].matches("api.corp", 443, ipaddress.ip_address("10.9.9.9"))
    assert entries[4].matches("::1", 81, ipaddress.ip_address("::1"))
    with pytest.raises(ImproperlyConfigured, match="port must be a number"):
        net.parse_allow_entry("host:http")
    with pytest.raises(ImproperlyConfigured, match="'ba d'"):
        net.parse_allow_entry("ba d")


@pytest.mark.slow
def test_allow_listed_server_is_reachable_and_peer_is_checked(local_server):
    response = net.safe_request_sync("GET", f"{local_server.base}/hello?x=1", timeout=5)

    assert response.status == 200
    assert response.peer == "127.0.0.1"
    assert local_server.recorder.requests[-1]["query"] == {"x": "1"}
    # The original host travels in the Host header even though the socket went to the vetted IP.
    assert local_server.recorder.requests[-1]["headers"]["Host"] == f"127.0.0.1:{local_server.port}"


@pytest.mark.slow
def test_allow_list_by_port_does_not_open_other_ports(local_server, canary):
    with pytest.raises(net.BlockedDestination, match="loopback"):
        net.safe_request_sync("GET", f"http://127.0.0.1:{canary.port}/", timeout=3)
    assert canary.connections() == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    "target",
    ["http://127.0.0.1:{canary}/", "http://localhost:{canary}/", "http://[::ffff:127.0.0.1]:{canary}/"],
)
def test_redirect_from_allowed_server_to_loopback_is_refused(local_server, canary, target):
    location = target.format(canary=canary.port)
    with pytest.raises(net.BlockedDestination, match="loopback"):
        net.safe_request_sync("GET", f"{local_server.base}/redirect?to={location}", timeout=5)
    assert len(local_server.recorder.requests) == 1
    assert canary.connections() == 0


@pytest.mark.slow
def test_redirects_within_allowed_hosts_are_followed_up_to_five(local_server):
    final = f"{local_server.base}/done"
    response = net.safe_request_sync("GET", f"{local_server.base}/redirect?to={final}", timeout=5)
    assert response.status == 200
    assert response.redirects == [final]

    url = final
    for _ in range(6):
        url = f"{local_server.base}/redirect?to={url}"
    with pytest.raises(net.BlockedDestination, match="Too many redirects"):
        net.safe_request_sync("GET", url, timeout=5)


@pytest.mark.slow
def test_a_request_carrying_a_secret_follows_no_redirect(local_server):
    url = f"{local_server.base}/redirect?to={local_server.base}/done"
    with pytest.raises(net.RedirectNotFollowed, match="carry a secret") as excinfo:
        net.safe_request_sync(
            "GET",
            url,
            headers={"Authorization": "Bearer s3cret-token-value"},
            secrets=["Bearer s3cret-token-value"],
        )
    assert excinfo.value.status == 302
    assert [r["path"] for r in local_server.recorder.requests] == ["/redirect"]


@pytest.mark.slow
def test_response_is_capped_and_slow_servers_time_out(local_server):
    response = net.safe_request_sync("GET", f"{local_server.base}/big", max_response_bytes=1000)
    assert response.truncated and len(response.content) == 1000

    with pytest.raises(net.UpstreamError, match="within 0.5 seconds"):
        net.safe_request_sync("GET", f"{local_server.base}/slow", timeout=0.5)


@pytest.mark.slow
def test_secret_values_are_masked_in_http_library_logs(local_server, caplog):
    secret = "query-secret-abcdef123"
    caplog.set_level(logging.DEBUG)
    # other libraries (litellm) quieten httpx when imported; these checks need its records
    caplog.set_level(logging.DEBUG, logger="httpx")
    caplog.set_level(logging.DEBUG, logger="httpcore")
    net.safe_request_sync(
        "GET", f"{local_server.base}/hello?key={secret}", headers={"X-Api-Key": secret}, secrets=[secret]
    )
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)  # httpx did log the call
    assert secret not in caplog.text


def test_sync_wrapper_refuses_inside_an_event_loop():
    async def inside():
        with pytest.raises(RuntimeError, match="await safe_request"):
            net.safe_request_sync("GET", "http://example.com/")

    asyncio.run(inside())


def test_the_canary_does_notice_a_connection(canary):
    # Guards the other tests: a canary that never counts anything would prove nothing.
    import socket

    with socket.create_connection(("127.0.0.1", canary.port), timeout=2):
        pass
    assert canary.connections() == 1
