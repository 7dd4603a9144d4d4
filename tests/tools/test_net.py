"""The SSRF-safe client: hostile URLs are refused before any connection is made."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket

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
    ("http://192.0.0.8/", "IETF protocol assignment"),  # "global" to Python before 3.12.4
    ("http://[2001:1::1]/", "IETF protocol assignment"),  # "global" to Python 3.12.4 and later
    ("http://[3fff::1]/", "documentation"),  # "global" to Python 3.12 and 3.13
    ("http://[127.0.0.1]:{port}/", "malformed"),
    ("http://[::1:{port}/", "malformed"),
    ("http://[::1]x:{port}/", "other than a port"),
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


# IPv6 spellings of loopback. Those of ::1 aim at the [::1] canary ({port6}); an IPv4-mapped
# address is reached over IPv6 sockets as the IPv4 address itself, so those aim at the
# 127.0.0.1 canary ({port}). Both canaries must hear nothing.
HOSTILE_V6 = [
    ("http://[::1]:{port6}/", "a loopback address"),
    ("http://[0:0:0:0:0:0:0:1]:{port6}/", "a loopback address"),
    ("http://[0000:0000:0000:0000:0000:0000:0000:0001]:{port6}/", "a loopback address"),
    ("http://[::0:0:1]:{port6}/", "a loopback address"),
    ("http://[::]:{port6}/", "unspecified"),
    ("http://[0:0:0:0:0:0:0:0]:{port6}/", "unspecified"),
    ("http://[::1%25lo]:{port6}/", "zone identifiers"),
    ("http://[fe80::1%25lo]:{port6}/", "zone identifiers"),
    ("http://[::ffff:127.0.0.1]:{port}/", "IPv4-mapped form of 127.0.0.1: a loopback"),
    ("http://[0:0:0:0:0:ffff:127.0.0.1]:{port}/", "IPv4-mapped form of 127.0.0.1: a loopback"),
    ("http://[::FFFF:7F00:0001]:{port}/", "IPv4-mapped form of 127.0.0.1: a loopback"),
    ("http://[::ffff:127.1.2.3]:{port}/", "IPv4-mapped form of 127.1.2.3: a loopback"),
    ("http://[::ffff:0.0.0.0]:{port}/", "IPv4-mapped form of 0.0.0.0: an unspecified"),
    ("http://[::ffff:169.254.169.254]/", "IPv4-mapped form of 169.254.169.254: a link-local"),
    ("http://[::127.0.0.1]:{port}/", "IPv4-compatible"),  # ::7f00:1, deprecated
    ("http://[::ffff:0:127.0.0.1]:{port}/", "reserved"),  # IPv4-translated (SIIT)
    ("http://[64:ff9b::127.0.0.1]:{port}/", "NAT64 form of 127.0.0.1"),
    ("http://[2002:7f00:1::]:{port}/", "6to4 form of 127.0.0.1"),
]


@pytest.mark.parametrize(("template", "reason"), HOSTILE_V6)
def test_ipv6_loopback_in_every_spelling_is_refused_and_both_canaries_hear_nothing(
    canary, canary6, settings, template, reason
):
    settings.AGENT_HTTP_ALLOWED_HOSTS = []
    url = template.format(port=canary.port, port6=canary6.port)

    with pytest.raises(net.BlockedDestination) as excinfo:
        net.safe_request_sync("GET", url, timeout=3)

    assert reason.lower() in str(excinfo.value).lower()
    assert canary.connections() == 0
    assert canary6.connections() == 0


@pytest.fixture
def dns(monkeypatch):
    """Answers for names under ``.ssrf.test`` (a reserved TLD): what a hostile DNS server would say.

    The client resolves with the event loop's ``getaddrinfo``, which asks ``socket.getaddrinfo``
    (asyncio's loop does so in a thread); other names resolve as usual.
    """
    answers: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if isinstance(host, str) and host in answers:
            return [
                (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, port, 0, 0))
                if ":" in ip
                else (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, port))
                for ip in answers[host]
            ]
        return real(host, port, family, type, proto, flags)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


@pytest.mark.parametrize(
    ("addresses", "reason"),
    [
        (["::1"], "a loopback address"),
        (["0:0:0:0:0:0:0:1"], "a loopback address"),
        (["::ffff:127.0.0.1"], "IPv4-mapped form of 127.0.0.1"),
        (["64:ff9b::7f00:1"], "NAT64 form of 127.0.0.1"),
        # one bad answer among good ones is enough: the client could be handed either
        (["2606:4700:4700::1111", "::1"], "a loopback address"),
        (["8.8.8.8", "::ffff:10.0.0.1"], "IPv4-mapped form of 10.0.0.1"),
    ],
)
def test_a_name_that_resolves_to_a_hostile_ipv6_address_is_refused(
    canary, canary6, dns, settings, addresses, reason
):
    settings.AGENT_HTTP_ALLOWED_HOSTS = []
    dns["rebind.ssrf.test"] = addresses
    # aimed at each canary in turn: ::1 would land on the IPv6 one, IPv4-mapped forms on the IPv4 one
    for port in (canary6.port, canary.port):
        with pytest.raises(net.BlockedDestination) as excinfo:
            net.safe_request_sync("GET", f"http://rebind.ssrf.test:{port}/", timeout=3)
        assert reason.lower() in str(excinfo.value).lower()
    assert canary.connections() == 0
    assert canary6.connections() == 0


def test_a_real_name_for_ipv6_loopback_is_refused(canary, canary6, settings):
    names = [
        n
        for n in ("localhost", "ip6-localhost", "ip6-loopback", "localhost6")
        if _resolves_to_ipv6_loopback(n)
    ]
    if not names:
        pytest.skip(
            "no host name resolves to ::1 on this machine (see its /etc/hosts); stubbed DNS covers it"
        )
    settings.AGENT_HTTP_ALLOWED_HOSTS = []
    for name in names:
        with pytest.raises(net.BlockedDestination, match="loopback"):
            net.safe_request_sync("GET", f"http://{name}:{canary6.port}/", timeout=3)
    assert canary6.connections() == 0
    assert canary.connections() == 0


def _resolves_to_ipv6_loopback(name: str) -> bool:
    try:
        infos = socket.getaddrinfo(name, 80, socket.AF_INET6, socket.SOCK_STREAM)
    except OSError:
        return False
    return any(
        ipaddress.ip_address(info[4][0].split("%")[0]) == ipaddress.ip_address("::1") for info in infos
    )


# Addresses on which Python versions disagree: 3.12.4 and 3.13 rewrote ipaddress's is_private
# and is_global tables (192.0.0.0/24, 2001::/23's anycast services, 2002::/16, 64:ff9b:1::/48)
# and 3.13 unmaps IPv4-mapped addresses in is_loopback. The verdict must not depend on it.
VERSION_SENSITIVE = [
    ("192.0.0.8", "IETF protocol assignment"),  # global before 3.12.4
    ("192.0.0.200", "IETF protocol assignment"),  # global before 3.12.4
    ("192.0.0.9", "IETF protocol assignment"),  # global since 3.12.4 (an anycast service)
    ("::ffff:192.0.0.8", "IPv4-mapped form of 192.0.0.8: an IETF protocol assignment"),
    ("64:ff9b::c000:8", "NAT64 form of 192.0.0.8: an IETF protocol assignment"),
    ("2002:c000:8::1", "6to4 form of 192.0.0.8: an IETF protocol assignment"),
    ("2001:1::1", "IETF protocol assignment"),  # global since 3.12.4
    ("2001:3::1", "IETF protocol assignment"),  # global since 3.12.4
    ("2001:4:112::1", "IETF protocol assignment"),  # global since 3.12.4
    ("2001:20::1", "IETF protocol assignment"),  # global since 3.12.4
    ("2001:30::1", "IETF protocol assignment"),  # global since 3.12.4
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
    ("3fff::1", "documentation"),  # global in 3.12 and 3.13
    ("2001:db8::1", "documentation"),
    ("100::1", "discard-only"),
    ("5f00::1", "segment routing"),
    ("64:ff9b:1::1", "local-use NAT64"),  # private only since 3.12.4
    ("::ffff:127.0.0.1", "IPv4-mapped form of 127.0.0.1: a loopback"),  # is_loopback since 3.13
    ("::7f00:1", "IPv4-compatible"),
    ("0.1.2.3", "this network"),
    ("198.18.0.1", "benchmarking"),
    ("192.88.99.1", "6to4 relay"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
]


@pytest.mark.parametrize(("address", "reason"), VERSION_SENSITIVE)
def test_refusals_do_not_depend_on_pythons_ipaddress_tables(monkeypatch, address, reason):
    ip = ipaddress.ip_address(address)
    assert reason.lower() in (net.blocked_reason(ip) or "").lower()

    # The same verdict from an ipaddress that calls every address global, as some version may.
    for cls in (ipaddress.IPv4Address, ipaddress.IPv6Address):
        monkeypatch.setattr(cls, "is_private", property(lambda self: False))
        monkeypatch.setattr(cls, "is_global", property(lambda self: True))
        monkeypatch.setattr(cls, "is_reserved", property(lambda self: False))
    assert reason.lower() in (net.blocked_reason(ip) or "").lower()


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
    [
        "8.8.8.8",
        "1.1.1.1",
        "2606:4700:4700::1111",
        "64:ff9b::808:808",
        "2002:808:808::1",  # private to Python 3.12.4 and later, but 8.8.8.8 inside is public
        "::ffff:8.8.8.8",
        "192.31.196.1",  # AS112, next to the IETF block: global in every version
        "2001:200::1",  # just past 2001::/23
    ],
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
@pytest.mark.parametrize("target", ["http://[::1]:{canary6}/", "http://[0:0:0:0:0:0:0:1]:{canary6}/"])
def test_redirect_from_allowed_server_to_ipv6_loopback_is_refused(local_server, canary6, target):
    location = target.format(canary6=canary6.port)
    with pytest.raises(net.BlockedDestination, match="loopback"):
        net.safe_request_sync("GET", f"{local_server.base}/redirect?to={location}", timeout=5)
    assert len(local_server.recorder.requests) == 1
    assert canary6.connections() == 0


@pytest.mark.slow
def test_allowing_ipv4_loopback_does_not_open_ipv6_loopback(settings, canary6):
    settings.AGENT_HTTP_ALLOWED_HOSTS = ["127.0.0.0/8", f"127.0.0.1:{canary6.port}"]
    with pytest.raises(net.BlockedDestination, match="loopback"):
        net.safe_request_sync("GET", f"http://[::1]:{canary6.port}/", timeout=3)
    assert canary6.connections() == 0


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
    with socket.create_connection(("127.0.0.1", canary.port), timeout=2):
        pass
    assert canary.connections() == 1


def test_the_ipv6_canary_does_notice_a_connection(canary6):
    with socket.create_connection(("::1", canary6.port), timeout=2):
        pass
    assert canary6.connections() == 1


def test_an_ipv4_mapped_address_does_reach_the_ipv4_canary(canary, canary6):
    # Why HOSTILE_V6 aims the ::ffff:127.0.0.1 forms at the IPv4 canary: that is where they land.
    with socket.create_connection(("::ffff:127.0.0.1", canary.port), timeout=2):
        pass
    assert canary.connections() == 1
    assert canary6.connections() == 0
