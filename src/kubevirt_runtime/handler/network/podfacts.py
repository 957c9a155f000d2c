"""What a pod's network namespace holds, from iproute2's JSON (`ip -j -d addr show`, `ip -j route show`).

Pure parsers, so the planner's table tests feed them recorded output.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Link:
    name: str
    index: int
    kind: str = ""          # veth, bridge, tun, dummy, ... ("" for a plain device such as lo)
    mac: str = ""
    mtu: int = 1500
    master: str | None = None
    ipv4: tuple = ()        # ("10.244.0.7/24", ...)
    ipv6: tuple = ()        # global addresses only
    up: bool = False


@dataclass(frozen=True)
class Route:
    dst: str                # "default" or "a.b.c.d/len"
    dev: str
    gateway: str | None = None


@dataclass(frozen=True)
class PodFacts:
    links: dict = field(default_factory=dict)   # name -> Link
    routes: tuple = ()                          # IPv4 routes of the main table

    def link(self, name: str) -> Link | None:
        return self.links.get(name)

    def routes_via(self, dev: str) -> list[Route]:
        return [r for r in self.routes if r.dev == dev]


def parse_links(addr_json: str) -> dict:
    links = {}
    for entry in json.loads(addr_json or "[]"):
        info = entry.get("linkinfo") or {}
        kind = info.get("info_kind") or ""
        if kind == "tun":
            kind = (info.get("info_data") or {}).get("type") or "tun"  # tap or tun
        ipv4 = tuple(f"{a['local']}/{a['prefixlen']}" for a in entry.get("addr_info") or []
                     if a.get("family") == "inet")
        ipv6 = tuple(f"{a['local']}/{a['prefixlen']}" for a in entry.get("addr_info") or []
                     if a.get("family") == "inet6" and a.get("scope") == "global")
        links[entry["ifname"]] = Link(name=entry["ifname"], index=int(entry.get("ifindex", 0)), kind=kind,
                                      mac=(entry.get("address") or "").lower(), mtu=int(entry.get("mtu", 1500)),
                                      master=entry.get("master"), ipv4=ipv4, ipv6=ipv6,
                                      up="UP" in (entry.get("flags") or []))
    return links


def parse_routes(route_json: str) -> tuple:
    routes = []
    for entry in json.loads(route_json or "[]"):
        if entry.get("type", "unicast") != "unicast" or not entry.get("dev"):
            continue
        routes.append(Route(dst=entry.get("dst", "default"), dev=entry["dev"], gateway=entry.get("gateway")))
    return tuple(routes)


def parse(addr_json: str, route_json: str) -> PodFacts:
    return PodFacts(links=parse_links(addr_json), routes=parse_routes(route_json))
