"""Address allowlists and callback URL checks; traffic only ever goes to loopback addresses."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from engine.errors import BadInput
from service.access import DEFAULT_ALLOWLIST, AddressAllowlist, check_callback_url, guarded_socket_factory
from tests.receiver import Receiver

DEFAULT = AddressAllowlist(DEFAULT_ALLOWLIST)


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.255.255.254", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.20",
    "::1", "fc00::1", "fd12:3456::7", "::ffff:127.0.0.1", "::ffff:192.168.0.9", "fd00::1%eth0",
])
def test_default_allows_loopback_and_private(address: str) -> None:
    assert DEFAULT.allows(address)


@pytest.mark.parametrize("address", [
    "8.8.8.8", "172.32.0.1", "172.15.255.255", "192.169.0.1", "0.0.0.0", "169.254.169.254", "100.64.0.1",
    "::", "2001:db8::1", "fe80::1", "fe80::1%eth0", "::ffff:8.8.8.8", "::ffff:169.254.169.254", "::7f00:1",
    "", "localhost", "not an address", "127.0.0.1/8", "999.1.1.1",
])
def test_default_refuses_the_rest(address: str) -> None:
    assert not DEFAULT.allows(address)


def test_custom_lists() -> None:
    narrow = AddressAllowlist(["127.0.0.2/32", "10.1.2.3/16", "2001:db8::/32"])
    assert narrow.allows("127.0.0.2") and not narrow.allows("127.0.0.1")
    assert narrow.allows("10.1.200.1") and not narrow.allows("10.2.0.1")
    assert narrow.allows("2001:db8::5") and not narrow.allows("::1")
    assert narrow.allows("::ffff:127.0.0.2") and not narrow.allows("::ffff:127.0.0.3")
    assert not AddressAllowlist([]).allows("127.0.0.1")
    every_ipv4 = AddressAllowlist(["0.0.0.0/0"])
    assert every_ipv4.allows("::ffff:1.2.3.4") and not every_ipv4.allows("::2")
    with pytest.raises(ValueError):
        AddressAllowlist(["10.0.0.0/33"])
    with pytest.raises(TypeError):
        AddressAllowlist("10.0.0.0/8")


def _refused(url: str, allowlist: AddressAllowlist = DEFAULT) -> str:
    with pytest.raises(BadInput) as caught:
        asyncio.run(check_callback_url(url, allowlist))
    assert caught.value.error_code == 1003 and caught.value.http_status == 400
    assert caught.value.full_message.startswith("Failed to process data: callbackUrl")
    return caught.value.full_message


@pytest.mark.parametrize("url", [
    "ftp://127.0.0.1/hook", "file:///etc/passwd", "javascript:alert(1)", "127.0.0.1:8080/hook", "//127.0.0.1/x",
    "http:///hook", "http://127.0.0.1:99999/hook", "http://[::1/hook", "http://" + "a" * 3000,
])
def test_bad_callback_urls(url: str) -> None:
    _refused(url)


def test_disallowed_addresses_are_refused() -> None:
    only_2 = AddressAllowlist(["127.0.0.2/32"])
    asyncio.run(check_callback_url("http://127.0.0.2:8080/hook", only_2))
    asyncio.run(check_callback_url("HTTPS://127.0.0.2/hook", only_2))
    assert "allowlist" in _refused("http://127.0.0.3:8080/hook", only_2)
    assert "allowlist" in _refused("http://[::ffff:127.0.0.3]:8080/hook", only_2)
    assert "allowlist" in _refused("http://0x7f000003/hook", only_2)  # another spelling of 127.0.0.3
    asyncio.run(check_callback_url("http://[::1]:8080/hook", AddressAllowlist(["::1/128"])))
    _refused("http://[::1]:8080/hook", only_2)


def test_dns_names_are_judged_by_what_they_resolve_to() -> None:
    loopback = AddressAllowlist(["127.0.0.1/32", "::1/128"])
    asyncio.run(check_callback_url("http://localhost:8080/hook", loopback))
    assert "allowlist" in _refused("http://localhost:8080/hook", AddressAllowlist(["127.0.0.2/32"]))


def _guarded(cidrs: list[str]) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(
        socket_factory=guarded_socket_factory(AddressAllowlist(cidrs))))


def test_connections_outside_the_allowlist_are_refused_at_connect_time() -> None:
    """What a rebinding DNS name would get: the socket factory sees the final address, literal or resolved."""

    async def scenario() -> None:
        async with Receiver(host="127.0.0.3") as far, Receiver(host="127.0.0.1") as near:
            for url in (far.url, f"http://[::ffff:127.0.0.3]:{far.port}/", f"http://localhost:{near.port}/"):
                async with _guarded(["127.0.0.2/32"]) as session:
                    with pytest.raises(aiohttp.ClientConnectorError, match="allowlist"):
                        await session.post(url, data=b"{}")
            assert far.requests == [] and near.requests == []
            async with _guarded(["127.0.0.3/32"]) as session:
                for url in (far.url, f"http://[::ffff:127.0.0.3]:{far.port}/"):
                    async with session.post(url) as response:
                        assert response.status == 200
            assert len(far.requests) == 2

    asyncio.run(scenario())
