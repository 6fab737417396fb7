"""iptables mode on the nft backend (`--iptables-backend nft`): the rules are iptables-nft's, a
ClusterIP answers through them, and `kubesvc down` takes them away with the node."""

import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from kubesvc.kernel.netns import netns_exists
from kubesvc.kernel.nodenet import NodeNetwork
from kubesvc.testing import Cluster

KUBERNETES_IP = "10.96.0.1"
DNS_IP = "10.96.0.10"  # kube-system/kube-dns


def eventually_holds(output: Callable[[], str], expected: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while expected not in (out := output()):
        assert time.monotonic() < deadline, out
        time.sleep(0.2)


def in_node(netns: str, *argv: str) -> str:
    return subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True, text=True,
                          check=True).stdout


def test_iptables_mode_on_the_nft_backend(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "state",
                      extra_args=["--proxy-mode", "iptables", "--iptables-backend", "nft"])
    cluster.start()
    try:
        config = cluster.config
        assert config.iptables_backend == "iptables-nft"
        netns = NodeNetwork(config.name, isolated=config.isolated).netns
        assert netns is not None
        cluster.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client"},
                       "spec": {"containers": [{"name": "c", "image": "busybox",
                                                "command": ["sleep", "3600"]}]}})
        cluster.kubectl("wait", "--for=condition=Ready", "pod/client", "--timeout=60s")
        # The kube-dns ClusterIP answers, through the rules.
        eventually_holds(lambda: cluster.kubectl(
            "exec", "client", "--", "nslookup", "kubernetes.default.svc.cluster.local", DNS_IP,
            check=False).stdout, f"Address: {KUBERNETES_IP}")
        assert re.search(rf"^-A KUBE-SERVICES -d {DNS_IP}/32 ",
                         in_node(netns, "iptables-nft-save", "-t", "nat"), re.MULTILINE)
        rules = subprocess.run([sys.executable, "-m", "kubesvc", "proxy", "rules", "--state-dir",
                                str(cluster.state_dir)], capture_output=True, text=True)
        assert f"-A KUBE-SERVICES -d {DNS_IP}/32 " in rules.stdout, rules
        # Not a legacy table exists: looking for leftovers there created none either.
        assert in_node(netns, "cat", "/proc/net/ip_tables_names") == ""

        down = subprocess.run([sys.executable, "-m", "kubesvc", "down", "--state-dir",
                               str(cluster.state_dir)], capture_output=True, text=True)
        assert down.returncode == 0 and "kubesvc stopped" in down.stdout, down
    finally:
        cluster.stop()
    assert not netns_exists(netns)  # and the rules with it
