"""A DHCPv4 server for exactly one client per bridge: the guest behind the launcher's tap device.

Phase 2 of the pod network (virt-handler did phase 1): the guest asks for its address over DHCP, and the
launcher answers on the bridge with what virt-handler planned (address, prefix, gateway, routes, MTU) plus
the pod's DNS servers and search domains from its resolv.conf, as upstream's launcher does. Only requests
from the guest's MAC and only those that arrive on the bridge are answered (in bridge binding the guest's
broadcasts also reach the pod network, where other launchers must stay silent); leases never expire.

Packets are parsed and built by pure functions (table-tested); `DHCPServer` only does the socket work: one
UDP socket on port 67 (CAP_NET_BIND_SERVICE), IP_PKTINFO to learn the arriving interface and to send the
broadcast answer out of the same one, so no raw socket (CAP_NET_RAW) is needed.
"""
from __future__ import annotations

import ipaddress
import logging
import re
import socket
import struct
import threading
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

SERVER_PORT, CLIENT_PORT = 67, 68
BOOTREQUEST, BOOTREPLY = 1, 2
MAGIC = b"\x63\x82\x53\x63"
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = 1, 2, 3, 4, 5, 6, 7, 8
INFINITE_LEASE = 0xFFFFFFFF
IP_PKTINFO = 8  # Linux; Python 3.11's socket module does not name it

OPT_SUBNET_MASK, OPT_ROUTER, OPT_DNS, OPT_HOSTNAME, OPT_DOMAIN_NAME = 1, 3, 6, 12, 15
OPT_MTU, OPT_BROADCAST, OPT_REQUESTED_IP, OPT_LEASE_TIME, OPT_MESSAGE_TYPE = 26, 28, 50, 51, 53
OPT_SERVER_ID, OPT_DOMAIN_SEARCH, OPT_CLASSLESS_ROUTES, OPT_END, OPT_PAD = 54, 119, 121, 255, 0
_HEADER = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")
_DOMAIN = re.compile(r"^(?:[_a-z0-9](?:[_a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$")


class DHCPError(ValueError):
    pass


@dataclass(frozen=True)
class Lease:
    mac: str
    address: str
    prefix: int
    server: str
    gateway: str | None = None
    routes: tuple = ()          # ((dst/len, gateway), ...) for option 121, the default route among them
    dns: tuple = ()
    search: tuple = ()
    hostname: str = ""
    mtu: int | None = None


@dataclass(frozen=True)
class Request:
    xid: int
    flags: int
    chaddr: str
    ciaddr: str
    giaddr: str
    message_type: int
    options: dict = field(default_factory=dict)


def parse_request(data: bytes) -> Request:
    if len(data) < _HEADER.size + 4:
        raise DHCPError(f"too short for DHCP ({len(data)} bytes)")
    op, htype, hlen, _hops, xid, _secs, flags, ciaddr, _yiaddr, _siaddr, giaddr, chaddr, _sname, _file = \
        _HEADER.unpack_from(data)
    if op != BOOTREQUEST:
        raise DHCPError("not a BOOTREQUEST")
    if htype != 1 or hlen != 6:
        raise DHCPError("not an Ethernet client")
    if data[_HEADER.size:_HEADER.size + 4] != MAGIC:
        raise DHCPError("no DHCP magic cookie")
    options = _parse_options(data[_HEADER.size + 4:])
    kind = options.get(OPT_MESSAGE_TYPE, b"")
    if len(kind) != 1:
        raise DHCPError("no DHCP message type")
    return Request(xid=xid, flags=flags, chaddr=":".join(f"{b:02x}" for b in chaddr[:6]),
                   ciaddr=socket.inet_ntoa(ciaddr), giaddr=socket.inet_ntoa(giaddr), message_type=kind[0],
                   options=options)


def _parse_options(raw: bytes) -> dict:
    options, i = {}, 0
    while i < len(raw):
        code = raw[i]
        if code == OPT_END:
            break
        if code == OPT_PAD:
            i += 1
            continue
        if i + 1 >= len(raw) or i + 2 + raw[i + 1] > len(raw):
            raise DHCPError(f"option {code} runs past the packet")
        length = raw[i + 1]
        options[code] = options.get(code, b"") + raw[i + 2:i + 2 + length]  # RFC 3396: split options concatenate
        i += 2 + length
    return options


def encode_search_domains(domains) -> bytes:
    """RFC 3397 (option 119) without compression: each domain as length-prefixed labels, zero-terminated."""
    out = b""
    for domain in domains:
        domain = domain.rstrip(".").lower()
        if len(domain) > 253 or not _DOMAIN.match(domain):
            raise DHCPError(f"search domain {domain!r} is not a valid domain name")
        out += b"".join(bytes([len(label)]) + label.encode() for label in domain.split(".")) + b"\0"
    if len(out) > 255:
        raise DHCPError(f"search domains take {len(out)} bytes; a DHCP option holds 255")
    return out


def encode_classless_routes(routes) -> bytes:
    """RFC 3442 (option 121): width, the significant octets of the destination, the gateway."""
    out = b""
    for dst, gateway in routes:
        net = ipaddress.IPv4Network(dst, strict=False)
        octets = (net.prefixlen + 7) // 8
        out += bytes([net.prefixlen]) + net.network_address.packed[:octets] + ipaddress.IPv4Address(gateway).packed
    return out


def lease_options(lease: Lease) -> dict:
    """Option code -> value bytes of every answer (upstream sends them all, asked for or not)."""
    net = ipaddress.IPv4Network(f"{lease.address}/{lease.prefix}", strict=False)
    options = {OPT_SUBNET_MASK: net.netmask.packed, OPT_SERVER_ID: socket.inet_aton(lease.server),
               OPT_LEASE_TIME: struct.pack("!I", INFINITE_LEASE)}
    if lease.prefix < 31:
        options[OPT_BROADCAST] = net.broadcast_address.packed
    if lease.gateway:
        options[OPT_ROUTER] = socket.inet_aton(lease.gateway)
    if lease.routes:
        options[OPT_CLASSLESS_ROUTES] = encode_classless_routes(lease.routes)
    dns = [a for a in lease.dns if ipaddress.ip_address(a).version == 4]
    if dns:
        options[OPT_DNS] = b"".join(socket.inet_aton(a) for a in dns)
    if lease.search:
        options[OPT_DOMAIN_SEARCH] = encode_search_domains(lease.search)
        options[OPT_DOMAIN_NAME] = lease.search[0].rstrip(".").encode()
    if lease.hostname:
        options[OPT_HOSTNAME] = lease.hostname.encode()[:63]
    if lease.mtu:
        options[OPT_MTU] = struct.pack("!H", lease.mtu)
    return options


def build_reply(request: Request, message_type: int, lease: Lease) -> bytes:
    chaddr = bytes.fromhex(request.chaddr.replace(":", "")).ljust(16, b"\0")
    header = _HEADER.pack(BOOTREPLY, 1, 6, 0, request.xid, 0, request.flags, socket.inet_aton(request.ciaddr),
                          socket.inet_aton(lease.address), socket.inet_aton(lease.server),
                          socket.inet_aton(request.giaddr), chaddr, b"", b"")
    options = {OPT_MESSAGE_TYPE: bytes([message_type]), **lease_options(lease)}
    body = b"".join(_encode_option(code, value) for code, value in options.items())
    packet = header + MAGIC + body + bytes([OPT_END])
    return packet.ljust(300, b"\0")  # BOOTP's minimum, which some clients still expect


def _encode_option(code: int, value: bytes) -> bytes:
    return b"".join(bytes([code, len(value[i:i + 255])]) + value[i:i + 255] for i in range(0, max(len(value), 1), 255))


def answer(request: Request, lease: Lease) -> bytes | None:
    """The reply to `request`, or None when it is not for us: another client's, or a type we do not answer
    (DECLINE, RELEASE, INFORM: the lease is fixed anyway)."""
    if request.chaddr != lease.mac.lower():
        return None
    if request.message_type == DISCOVER:
        return build_reply(request, OFFER, lease)
    if request.message_type == REQUEST:
        return build_reply(request, ACK, lease)
    return None


class DHCPServer:
    """Serves one lease per interface index from one socket, in a daemon thread."""

    def __init__(self, leases: dict):
        self.leases = dict(leases)  # interface name -> Lease
        self.by_index: dict[int, Lease] = {}
        self.sock: socket.socket | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> DHCPServer:
        for name, lease in self.leases.items():
            self.by_index[socket.if_nametoindex(name)] = lease
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        sock.bind(("0.0.0.0", SERVER_PORT))
        self.sock = sock
        self.thread = threading.Thread(target=self._serve, name="dhcp", daemon=True)
        self.thread.start()
        log.info("DHCP serving %s", ", ".join(f"{lease.address}/{lease.prefix} to {lease.mac} on {name}"
                                              for name, lease in self.leases.items()))
        return self

    def _serve(self):
        while True:
            try:
                data, ancillary, _flags, _addr = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
            except OSError:
                return
            index = next((struct.unpack_from("i", d)[0] for level, kind, d in ancillary
                          if level == socket.IPPROTO_IP and kind == IP_PKTINFO), None)
            lease = self.by_index.get(index)
            if lease is None:
                continue
            try:
                request = parse_request(data)
            except DHCPError as exc:
                log.debug("ignored a packet on interface %s: %s", index, exc)
                continue
            reply = answer(request, lease)
            if reply is None:
                continue
            pktinfo = struct.pack("i4s4s", index, socket.inet_aton(lease.server), b"\0" * 4)
            try:
                self.sock.sendmsg([reply], [(socket.IPPROTO_IP, IP_PKTINFO, pktinfo)],
                                  0, ("255.255.255.255", CLIENT_PORT))
            except OSError as exc:
                log.warning("DHCP answer to %s failed: %s", lease.mac, exc)
                continue
            log.info("DHCP %s: %s -> %s", "offer" if request.message_type == DISCOVER else "ack", lease.mac,
                     lease.address)

    def stop(self):
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in recvmsg
            except OSError:
                pass
            self.sock.close()
