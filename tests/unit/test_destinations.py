"""docs/design.md §3.4: the SSRF guard — which callback URLs and resolved addresses are refused, and what allows more."""

from __future__ import annotations

import pytest

from asynctask_operator.core.destinations import DestinationPolicy, address_refusal, url_refusal

# --------------------------------------------------------------------------- SSRF: the URL


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://hooks.example.com/x", ["scheme 'ftp'"]),
        ("file:///etc/passwd", ["scheme 'file'"]),
        ("gopher://hooks.example.com/", ["scheme"]),
        ("hooks.example.com/x", ["scheme"]),
        ("http:///x", ["no host"]),
        ("https://user:pw@hooks.example.com/x", ["credentials"]),
        ("https://user@hooks.example.com/x", ["credentials"]),
        ("https://hooks.example.com:0/x", ["port 0"]),
        ("https://hooks.example.com:99999/x", ["cannot be parsed"]),
        ("https://[::1/x", ["cannot be parsed"]),
    ],
)
def test_url_refusal(url: str, words: list[str]) -> None:
    refusal = url_refusal(url)
    assert refusal is not None
    for word in words:
        assert word in refusal


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/x",
        "https://hooks.example.com/x?a=1#f",
        "https://hooks.example.com:8443/",
        "HTTPS://Hooks.Example.com/",
        "http://93.184.215.14/",
        "https://[2606:4700::1111]/",
        "http://127.0.0.1:8080/",  # a loopback literal passes here: the address check refuses it at connect time
    ],
)
def test_url_accepted(url: str) -> None:
    assert url_refusal(url) is None


# --------------------------------------------------------------------------- SSRF: the address


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.9.9.9", "loopback"),
        ("10.0.0.5", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "non-public"),  # shared address space (CGNAT)
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("255.255.255.255", None),
        ("198.18.0.1", None),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:10.1.2.3", "private"),
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
        ("2002:7f00:1::1", "loopback"),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 of 169.254.169.254
        ("2001:db8::1", None),  # documentation
    ],
)
def test_address_refused(address: str, kind: str | None) -> None:
    refusal = address_refusal("hooks.example.com", address, DestinationPolicy())
    assert refusal is not None
    assert f"hooks.example.com ({address})" in refusal
    assert "SSRF" in refusal and "allowedHosts" in refusal
    if kind is not None:
        assert f"{kind} addresses are not allowed" in refusal


def test_nat64_local_use_prefix_is_refused() -> None:
    assert address_refusal("h", "64:ff9b:1::a9fe:a9fe", DestinationPolicy()) is not None


def test_a_literal_host_is_shown_once() -> None:
    refusal = address_refusal("127.0.0.1", "127.0.0.1", DestinationPolicy())
    assert refusal is not None and "callback to 127.0.0.1 refused" in refusal


def test_a_resolved_name_that_is_not_an_address_is_refused() -> None:
    refusal = address_refusal("h", "not-an-ip", DestinationPolicy())
    assert refusal is not None and "not an IP address" in refusal


@pytest.mark.parametrize(
    "address",
    ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "::ffff:93.184.215.14", "64:ff9b::5db8:d70e", "2002:5db8:d70e::1"],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_refusal("hooks.example.com", address, DestinationPolicy()) is None


@pytest.mark.parametrize(
    ("hosts", "host", "allowed"),
    [
        (["receiver.test"], "receiver.test", True),
        (["receiver.test"], "RECEIVER.test.", True),
        ([" Receiver.Test. "], "receiver.test", True),
        (["receiver.test"], "other.test", False),
        (["receiver.test"], "a.receiver.test", False),  # exact means exact
        (["*.svc.cluster.local"], "hooks.media.svc.cluster.local", True),
        (["*.svc.cluster.local"], "svc.cluster.local", False),
        (["*.svc.cluster.local"], "evilsvc.cluster.local", False),
        (["*.svc.cluster.local"], "svc.cluster.local.evil.com", False),
        (["localhost", "*.internal"], "api.internal", True),
        ([""], "", False),
    ],
)
def test_allowed_hosts(hosts: list[str], host: str, allowed: bool) -> None:
    policy = DestinationPolicy.of(hosts=hosts)
    refusal = address_refusal(host, "10.0.0.5", policy)
    assert (refusal is None) is allowed
    assert policy.host_allowed(host) is allowed


@pytest.mark.parametrize(
    ("cidrs", "address", "allowed"),
    [
        (["10.0.0.0/8"], "10.1.2.3", True),
        (["10.0.0.0/8"], "192.168.1.1", False),
        (["127.0.0.1"], "127.0.0.1", True),  # a single address
        (["127.0.0.1/32"], "127.0.0.2", False),
        (["10.1.2.3/8"], "10.9.9.9", True),  # host bits set: taken as the network
        (["::1/128"], "::1", True),
        (["fd00::/8"], "fd00::5", True),
        (["fd00::/8"], "fc00::5", False),
        (["169.254.0.0/16"], "169.254.169.254", True),
    ],
)
def test_allowed_cidrs(cidrs: list[str], address: str, allowed: bool) -> None:
    refusal = address_refusal("hooks.example.com", address, DestinationPolicy.of(cidrs=cidrs))
    assert (refusal is None) is allowed


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "not-a-cidr", "300.1.1.1", "fe80::/129"])
def test_a_bad_cidr_is_named(bad: str) -> None:
    with pytest.raises(ValueError) as caught:
        DestinationPolicy.of(cidrs=["10.0.0.0/8", bad])
    assert repr(bad) in str(caught.value)
    assert "allowedCIDRs" in str(caught.value)
