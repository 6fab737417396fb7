"""The kernel appliers the proxy uses (nft, iptables, conntrack), in a namespace made here
(root). Nothing is sent anywhere; the namespace and everything in it goes at the end."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from kubesvc.kernel import conntrack, iptables, nft
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
