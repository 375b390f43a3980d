"""Who may reach the box and where callbacks may go: address allowlists, checked after DNS resolution."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from aiohappyeyeballs import AddrInfoType, SocketFactoryType

from engine.errors import BadInput

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Loopback and the private ranges: a box on a LAN talks to its LAN.
DEFAULT_ALLOWLIST = ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")

MAX_CALLBACK_URL = 2048


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs (or bare addresses) as networks; host bits are allowed. Raises ValueError on a bad one."""
    if isinstance(cidrs, str):
        raise TypeError("a list of CIDRs, not one string")
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs)


class AddressAllowlist:
    """A set of networks; an IPv4-mapped IPv6 address (::ffff:a.b.c.d) is judged as the IPv4 address it is."""

    def __init__(self, cidrs: Iterable[str]) -> None:
        self.networks = parse_networks(cidrs)

    def allows(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone id names no other host
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip.version == net.version and ip in net for net in self.networks)

    def __repr__(self) -> str:
        return f"AddressAllowlist({[str(net) for net in self.networks]})"


async def check_callback_url(url: str, allowlist: AddressAllowlist) -> None:
    """Refuse (1003) a callbackUrl that is not http(s), has no host, or whose host resolves to any address
    outside the allowlist: one bad address is enough, since the client may be given any of them."""
    if len(url) > MAX_CALLBACK_URL:
        raise BadInput("callbackUrl is too long")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BadInput("callbackUrl is not a valid URL") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise BadInput("callbackUrl must be http or https")
    if not parts.hostname:
        raise BadInput("callbackUrl has no host")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise BadInput("callbackUrl host does not resolve") from exc
    if not infos or not all(allowlist.allows(str(info[4][0])) for info in infos):
        raise BadInput("callbackUrl host is not in the callback allowlist")


def guarded_socket_factory(allowlist: AddressAllowlist) -> SocketFactoryType:
    """A socket factory for aiohttp's TCPConnector that refuses to connect outside the allowlist.

    It sees the very address about to be connected to, after any DNS lookup (and aiohttp skips its resolver
    for literal addresses), so a name that resolved to an allowed address when the job was accepted and
    to another one at delivery time (DNS rebinding) is still refused.
    """

    def create(addr_info: AddrInfoType) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        if not allowlist.allows(str(sockaddr[0])):
            raise OSError(errno.EACCES, f"callback address {sockaddr[0]} is not in the callback allowlist")
        return socket.socket(family=family, type=type_, proto=proto)

    return create
