"""The kernel appliers the proxy uses (nft, iptables, conntrack), in a namespace made here
(root). Nothing is sent anywhere; the namespace and everything in it goes at the end."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from kubesvc.kernel import conntrack, iptables, nft, nftnl
from kubesvc.kernel.cmd import CommandError
from kubesvc.kernel.netns import list_netns

pytestmark = [pytest.mark.root]

NETNS = f"kpk{os.getpid() % 100000}"


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.fail("the kernel tests need root (network namespaces)")
    missing = [t for t in ("ip", "nft", "iptables", "conntrack", "nsenter") if not shutil.which(t)]
    if missing:
        pytest.fail(f"missing tools: {', '.join(missing)}")
    subprocess.run(["ip", "netns", "add", NETNS], check=True)
    subprocess.run(["ip", "-n", NETNS, "link", "set", "lo", "up"], check=True)
    try:
        yield NETNS
    finally:
        subprocess.run(["ip", "netns", "delete", NETNS], check=True)
    assert NETNS not in list_netns()


async def test_nft_transactions_are_atomic(netns: str) -> None:
    assert await nft.list_table(netns, "ip", "kt") is None
    await nft.apply(netns, "add table ip kt\nadd chain ip kt a\nadd chain ip kt b\n")
    assert await nft.chain_names(netns, "ip", "kt") == {"a", "b"}
    with pytest.raises(CommandError):  # the second command fails: the first is not applied
        await nft.apply(netns, "add chain ip kt c\nadd rule ip kt nosuch accept\n")
    assert await nft.chain_names(netns, "ip", "kt") == {"a", "b"}
    assert "chain a" in (await nft.list_table(netns, "ip", "kt") or "")
    await nft.apply(netns, "add table ip kt2\nadd chain ip kt2 z\n")
    assert await nft.table_names(netns, "ip") == {"kt", "kt2"}
    listing = await nft.list_tables(netns, "ip", {"kt2"})
    assert listing.startswith("table ip kt2 {") and "chain a" not in listing
    await nft.delete_tables(netns, "ip", ["kt", "kt2"])  # kt2 never existed: fine
    assert await nft.list_table(netns, "ip", "kt") is None


SKELETON = """\
add table ip {t}
add chain ip {t} mark-for-masquerade
add chain ip {t} svc
add set ip {t} ips {{ type ipv4_addr . inet_proto . inet_service ; }}
add map ip {t} ports {{ type inet_proto . inet_service : verdict ; }}
add map ip {t} tcp-endpoints-0 {{ typeof numgen random mod 1 : ip daddr . tcp dport ; }}
add map ip {t} udp-endpoints-0 {{ typeof numgen random mod 1 : ip daddr . udp dport ; }}
add element ip {t} tcp-endpoints-0 {{ 5 : 10.244.0.5 . 80 }}
add rule ip {t} svc meta l4proto tcp dnat ip to numgen random mod 1 offset 5 map @tcp-endpoints-0
"""
RULES = [
    "ip daddr 10.100.0.1 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade",
    "ip daddr 10.100.0.2 udp dport 53 ip saddr != 10.0.0.0/8 goto mark-for-masquerade",
    "ip saddr 192.168.0.0/24 sctp dport 9 jump mark-for-masquerade",
    "meta l4proto tcp dnat ip to numgen random mod 10 offset 65536 map @tcp-endpoints-0",
    "meta l4proto udp dnat ip to numgen random mod 3 offset 0 map @udp-endpoints-0",
]


async def test_netlink_batches_program_what_nft_does(netns: str) -> None:
    """The same changes through nft and through netlink: nft lists the same tables."""
    ips = nftnl.SetType(("ipv4_addr", "inet_proto", "inet_service"))
    ports = nftnl.SetType(("inet_proto", "inet_service"), ("verdict",))
    endpoints = nftnl.SetType(("integer",), ("ipv4_addr", "inet_service"))
    await nft.apply(netns, SKELETON.format(t="kcli") + SKELETON.format(t="knl"))
    await nft.apply(netns, "flush chain ip kcli svc\n" + "".join(
        f"add rule ip kcli svc {rule}\n" for rule in RULES) + """\
add element ip kcli ips { 10.0.0.1 . tcp . 80, 10.0.0.2 . udp . 53 }
add element ip kcli ports { tcp . 30001 : goto svc, udp . 30002 : drop }
delete element ip kcli tcp-endpoints-0 { 5 }
add element ip kcli tcp-endpoints-0 { 65536 : 10.244.0.9 . 8080, 7 : 10.244.0.7 . 53 }
""")
    batch = nftnl.Batch("ip")
    batch.flush_chain("knl", "svc")
    for rule in RULES:
        exprs = nftnl.compile_rule(rule)
        assert exprs is not None, rule
        batch.add_rule("knl", "svc", exprs)
    batch.add("knl", "ips", ips, [("10.0.0.1 . tcp . 80", None), ("10.0.0.2 . udp . 53", None)])
    batch.add("knl", "ports", ports, [("tcp . 30001", "goto svc"), ("udp . 30002", "drop")])
    batch.delete("knl", "tcp-endpoints-0", endpoints, ["5"])
    batch.add("knl", "tcp-endpoints-0", endpoints,
              [("65536", "10.244.0.9 . 8080"), ("7", "10.244.0.7 . 53")])
    await nftnl.apply(netns, batch)
    cli, netlink = [await nft.list_table(netns, "ip", t) or "" for t in ("kcli", "knl")]
    assert netlink.replace("table ip knl", "table ip kcli") == cli
    assert "10.244.0.9 . 8080" in cli and "offset 65536" in cli

    # All or nothing: the second message fails, so the first is not applied either.
    bad = nftnl.Batch("ip")
    bad.add("knl", "ips", ips, [("10.0.0.3 . tcp . 80", None)])
    bad.delete("knl", "tcp-endpoints-0", endpoints, ["999"])
    with pytest.raises(nftnl.NetlinkError, match="set knl tcp-endpoints-0"):
        await nftnl.apply(netns, bad)
    assert "10.0.0.3" not in (await nft.list_table(netns, "ip", "knl") or "")
    await nft.delete_tables(netns, "ip", ["kcli", "knl"])


def test_rules_outside_the_known_language_are_left_to_nft() -> None:
    assert nftnl.compile_rule("ip saddr != 10.240.0.0/12 jump x") is None  # needs a mask
    assert nftnl.compile_rule("ct state new jump x") is None
    assert nftnl.compile_rule("meta l4proto tcp dnat to 10.0.0.1:80") is None


async def test_iptables_restore_rules_and_chains(netns: str) -> None:
    await iptables.restore(netns, "*nat\n:KT-A - [0:0]\n:KT-B - [0:0]\n-A KT-A -j KT-B\nCOMMIT\n")
    assert {"KT-A", "KT-B"} <= await iptables.chain_names(netns, "nat")
    jump = ["-m", "comment", "--comment", "kt portals", "-j", "KT-A"]
    await iptables.ensure_rule(netns, "nat", "PREROUTING", jump)
    await iptables.ensure_rule(netns, "nat", "PREROUTING", jump)
    assert (await iptables.save(netns, "nat")).count("-j KT-A") == 1
    await iptables.delete_rule(netns, "nat", "PREROUTING", jump)
    await iptables.delete_rule(netns, "nat", "PREROUTING", jump)  # none left: fine
    await iptables.delete_chains(netns, "nat", ["KT-A", "KT-B"])
    assert not {"KT-A", "KT-B"} & await iptables.chain_names(netns, "nat")


def udp_flows(netns: str) -> str:
    return subprocess.run(["ip", "netns", "exec", netns, "conntrack", "-L", "-p", "udp"],
                          capture_output=True, text=True).stdout


async def test_conntrack_delete_flows(netns: str) -> None:
    # A UDP datagram to a closed local port still creates a conntrack entry, once a rule
    # that looks at conntrack state has switched conntrack on in the namespace.
    await nft.apply(netns, "add table ip kt\n"
                           "add chain ip kt out { type filter hook output priority 0 ; }\n"
                           "add rule ip kt out ct state new counter\n")
    to_port = conntrack.FlowFilter("udp", orig_dst="127.0.0.1", orig_port_dst=40999)
    await conntrack.delete_flows(netns, [to_port])  # nothing to delete: not an error
    subprocess.run(["ip", "netns", "exec", netns, "python3", "-c",
                    "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
                    ".sendto(b'x', ('127.0.0.1', 40999))"], check=True)
    assert "dport=40999" in udp_flows(netns)
    # Not DNAT-ed: the reply comes from the original destination, not from 10.9.9.9.
    await conntrack.delete_flows(netns, [conntrack.FlowFilter(
        "udp", orig_dst="127.0.0.1", reply_src="10.9.9.9")])
    assert "dport=40999" in udp_flows(netns)
    await conntrack.delete_flows(netns, [conntrack.FlowFilter(
        "udp", orig_dst="127.0.0.1", reply_src="127.0.0.1", reply_port_src=40999)])
    assert "dport=40999" not in udp_flows(netns)
    with pytest.raises(CommandError):
        await conntrack.delete_flows(netns, [conntrack.FlowFilter("nosuchproto")])
    await nft.delete_tables(netns, "ip", ["kt"])
