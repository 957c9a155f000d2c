"""Pod networking, phase 1: virt-handler wires the launcher pod's network namespace for the guest.

As upstream KubeVirt splits it: the privileged half runs here, in virt-handler, inside the launcher pod's
network namespace (found through the launcher's pid); the launcher (phase 2) only serves DHCP on the bridge
and hands the tap device to libvirt, so the launcher itself needs neither CAP_NET_ADMIN nor CAP_NET_RAW.

    podfacts.py  what the pod's namespace holds (links, addresses, routes), parsed from iproute2's JSON
    plan.py      pure: VMI + pod facts -> what to build, the commands to build it, and what the launcher
                 needs to know (the wire config below)
    nft.py       pure: the masquerade binding's nftables ruleset
    netns.py     I/O: reads the facts and runs the commands in the namespace (nsenter, ip, sysctl, nft)

What is built (names and addresses as upstream's):
- masquerade: bridge `k6t-eth0` (MAC 02:00:00:00:00:00, the gateway address of vmNetworkCIDR, default
  10.0.2.1/24) with tap `tap0`; nftables NAT: the guest (10.0.2.2) leaves masqueraded as the pod, and what
  arrives on eth0 is forwarded to the guest: every port, or only the declared `ports` when there are any;
  connections the pod makes to 127.0.0.1 reach the same ports of the guest;
- bridge: the pod's eth0 becomes `eth0-nic`, a port of bridge `k6t-eth0` next to `tap0`; the guest takes
  the pod's address, gateway, routes and MAC over DHCP; a port-less bridge named `eth0` keeps the pod's
  address, MAC and routes for the CNI plugin and for a virt-handler restart; the bridge answers DHCP from
  169.254.75.10.

The wire config (sync option "network", read by the launcher's network.py):
    {"interfaces": [{"name", "binding", "tap", "bridge", "mac" (null: the launcher's stable MAC), "mtu",
                     "dhcp": {"address", "prefix", "gateway", "server", "routes": [[dst/len, gateway]]},
                     "podIPs": [...]}]}
"""
