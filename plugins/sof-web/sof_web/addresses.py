"""Which addresses the web tool may connect to: parsing every IP spelling, classifying
addresses, and the allow-list.

The guard's rule: a destination is refused unless every address its host stands for is a
public (globally routable, unicast) address, or the allow-list names it. Hosts are read the
way browsers and the C resolver read them, so an address cannot hide behind another
spelling: ``2130706433``, ``0x7f.1``, ``017700000001`` and ``127.1`` are all 127.0.0.1
(WHATWG URL "IPv4 parser"), and the IPv4 address inside an IPv6 one (IPv4-mapped
``::ffff:a.b.c.d``, 6to4, Teredo, NAT64 ``64:ff9b::/96``) is judged as well.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Cloud instance-metadata services (AWS IMDS v4/v6, ECS task metadata, AWS DNS, Azure, GCP
#: and Oracle at 169.254.169.254, Oracle's 192.0.0.192, Alibaba's 100.100.100.200). They
#: hand out credentials, so only an allow-list entry naming the exact address lets one through.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254", "169.254.170.2", "169.254.169.253", "169.254.169.123",
        "100.100.100.200", "192.0.0.192", "fd00:ec2::254", "fd00:ec2::23",
    )
)
#: Names of metadata services, refused before they are even resolved (unless allow-listed).
METADATA_HOSTS: frozenset[str] = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data",
     "instance-data.ec2.internal", "metadata.azure.com"}
)

_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # well-known NAT64 prefix (RFC 6052)
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # local-use NAT64 (RFC 8215)
_COMPAT = ipaddress.ip_network("::/96")  # deprecated IPv4-compatible IPv6 (RFC 4291)


class HostSyntaxError(ValueError):
    """A host that looks like an IP address but is not a valid one (``1.2.3.4.5``)."""


# --- reading hosts -----------------------------------------------------------------------------


def _ipv4_number(part: str) -> int | None:
    """One part of a WHATWG IPv4 host: decimal, ``0x`` hex or leading-``0`` octal."""
    if part[:2].lower() == "0x":
        digits, base = part[2:], 16
        if digits == "":
            return 0
    elif len(part) > 1 and part[0] == "0":
        digits, base = part[1:], 8
    else:
        digits, base = part, 10
    allowed = "0123456789abcdefABCDEF"[: 10 if base == 10 else 8 if base == 8 else 22]
    if not digits or any(c not in allowed for c in digits):
        return None
    return int(digits, base)


def _ends_in_number(host: str) -> bool:
    """WHATWG's test: a host whose last label is numeric is read as an IPv4 address."""
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    last = parts[-1]
    if last and all(c.isascii() and c.isdigit() for c in last):
        return True
    return last[:2].lower() == "0x" and all(c in "0123456789abcdefABCDEF" for c in last[2:])


def parse_ipv4(host: str) -> ipaddress.IPv4Address:
    """``host`` read by the WHATWG URL IPv4 parser (what browsers and inet_aton accept).

    ``2130706433``, ``0x7f.1``, ``0177.0.0.01``, ``127.1`` all give 127.0.0.1. Raises
    ``HostSyntaxError`` for a numeric host that is no valid address (``1.2.3.4.5``, ``256.1.1.1``).
    """
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if len(parts) > 4:
        raise HostSyntaxError(f"{host!r} has more than four numeric parts")
    numbers: list[int] = []
    for part in parts:
        number = _ipv4_number(part)
        if number is None:
            raise HostSyntaxError(f"{host!r} is not a valid IPv4 address ({part!r})")
        numbers.append(number)
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise HostSyntaxError(f"{host!r} is out of range for an IPv4 address")
    value = numbers[-1]
    for index, number in enumerate(numbers[:-1]):
        value += number * 256 ** (3 - index)
    return ipaddress.IPv4Address(value)


def literal_address(host: str) -> IPAddress | None:
    """The address ``host`` spells (any IPv4 spelling, or IPv6 with or without brackets),
    or None when it is a name. Raises ``HostSyntaxError`` for a malformed numeric host."""
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        if "%" in text:
            raise HostSyntaxError(f"{host!r}: IPv6 zone identifiers are not supported")
        try:
            return ipaddress.IPv6Address(text)
        except ValueError as exc:
            raise HostSyntaxError(f"{host!r} is not a valid IPv6 address") from exc
    if text and _ends_in_number(text):
        return parse_ipv4(text)
    return None


def normalise_host(host: str) -> str:
    """A host name as compared with the allow-list: lower case, ASCII (IDNA), no final dot."""
    name = host.strip().rstrip(".").lower()
    if name and not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise HostSyntaxError(f"{host!r} is not a valid host name") from exc
    return name


# --- classifying addresses ---------------------------------------------------------------------


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    """IPv4 addresses an IPv6 address carries, with how (they are where packets may go)."""
    found: list[tuple[str, ipaddress.IPv4Address]] = []
    if address.ipv4_mapped is not None:
        found.append(("IPv4-mapped", address.ipv4_mapped))
    if address.sixtofour is not None:
        found.append(("6to4", address.sixtofour))
    if address.teredo is not None:
        server, client = address.teredo
        found += [("Teredo server", server), ("Teredo client", client)]
    if address in _NAT64 or address in _NAT64_LOCAL:
        found.append(("NAT64", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)))
    return found


def why_blocked(address: IPAddress) -> str | None:
    """Why the guard refuses ``address`` ("a loopback address"), or None for a public one."""
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        for how, inner in embedded_ipv4(address):
            reason = why_blocked(inner)
            if reason is not None:
                return f"an IPv6 address carrying {inner} ({how}), {reason}"
        if address.ipv4_mapped is not None:  # ::ffff:a.b.c.d is a.b.c.d on the wire
            return None
        if address in _COMPAT and int(address) > 1:
            return "a deprecated IPv4-compatible IPv6 address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "a site-local address"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if address.is_reserved:  # before is_private: Python counts 240.0.0.0/4 as private too
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "a special-purpose (not globally routable) address"
    return None


# --- the allow-list ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AllowList:
    """Destinations let through although the guard would refuse them (``web_allowed_hosts``).

    Entries are host names (``intranet.example``), wildcards for subdomains
    (``*.example.com``), addresses in any spelling, or CIDR networks (``10.0.0.0/8``,
    ``fd00::/8``). A listed name is trusted wherever it resolves; a listed network lets its
    addresses through whatever name led there. A cloud metadata address needs an entry naming
    exactly it (a single address, or a /32 or /128 network).
    """

    entries: tuple[str, ...] = ()
    hosts: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        """Read entries; raises ``ValueError`` naming the first bad one and how to write it."""
        kept: list[str] = []
        hosts: set[str] = set()
        suffixes: list[str] = []
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            kept.append(entry)
            if "://" in entry or entry.count("/") > 1 or any(c.isspace() for c in entry):
                raise ValueError(
                    f"entry {raw!r} is not a host or CIDR; write a host ('example.com'), "
                    "an address ('127.0.0.1') or a network ('10.0.0.0/8')"
                )
            if "/" in entry:
                networks.append(_network(entry))
                continue
            if entry.count(":") == 1 and not entry.startswith("["):
                raise ValueError(
                    f"entry {raw!r} has a port; ports are not supported (write the host "
                    "alone: 'example.com')"
                )
            try:
                address = literal_address(entry)
            except HostSyntaxError as exc:
                raise ValueError(f"entry {raw!r}: {exc}") from None
            if address is not None:
                networks.append(ipaddress.ip_network(address))
                continue
            if entry.startswith("*."):
                suffixes.append("." + _host_entry(entry[2:], raw))
                continue
            if ":" in entry or "*" in entry:
                raise ValueError(
                    f"entry {raw!r} is not a host or CIDR (ports and inner wildcards are "
                    "not supported; '*.example.com' allows the subdomains of example.com)"
                )
            hosts.add(_host_entry(entry, raw))
        return cls(tuple(kept), frozenset(hosts), tuple(suffixes), tuple(networks))

    def __bool__(self) -> bool:
        return bool(self.entries)

    def host_entry(self, host: str) -> str | None:
        """The entry allowing host name ``host`` (normalised), or None."""
        if host in self.hosts:
            return host
        for suffix in self.suffixes:
            if host.endswith(suffix):
                return "*" + suffix
        return None

    def network_entry(self, address: IPAddress) -> IPNetwork | None:
        """The network allowing ``address`` (an IPv4-mapped IPv6 address also matches its
        IPv4 entries), or None."""
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        for network in self.networks:
            for candidate in candidates:
                if candidate.version == network.version and candidate in network:
                    return network
        return None

    def names_exactly(self, address: IPAddress) -> bool:
        """Whether an entry is this one address (what a metadata address needs)."""
        network = self.network_entry(address)
        return network is not None and network.num_addresses == 1


def _network(entry: str) -> IPNetwork:
    address, _, prefix = entry.partition("/")
    try:
        base = literal_address(address)
    except HostSyntaxError as exc:
        raise ValueError(f"entry {entry!r}: {exc}") from None
    if base is None or not prefix.isdigit():
        raise ValueError(f"entry {entry!r} is not a CIDR network such as '10.0.0.0/8'")
    try:
        return ipaddress.ip_network(f"{base}/{prefix}", strict=False)
    except ValueError as exc:
        raise ValueError(f"entry {entry!r} is not a CIDR network: {exc}") from None


def _host_entry(name: str, raw: str) -> str:
    try:
        host = normalise_host(name)
    except HostSyntaxError as exc:
        raise ValueError(f"entry {raw!r}: {exc}") from None
    if not host or any(not (c.isalnum() or c in "-._") for c in host):
        raise ValueError(f"entry {raw!r} is not a valid host name")
    return host


__all__ = [
    "METADATA_ADDRESSES",
    "METADATA_HOSTS",
    "AllowList",
    "HostSyntaxError",
    "IPAddress",
    "embedded_ipv4",
    "literal_address",
    "normalise_host",
    "parse_ipv4",
    "why_blocked",
]
