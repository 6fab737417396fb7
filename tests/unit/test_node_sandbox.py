"""What a pod's containers see in /etc: resolv.conf per dnsPolicy, the managed hosts file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubesvc.node.sandbox import (
    map_program,
    pod_hostname,
    render_hosts,
    render_resolv_conf,
    short_id,
)

NODE_RESOLV = "nameserver 192.0.2.53\nsearch corp.example\noptions timeout:2\n"


def pod(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "client", "namespace": "web", "uid": "u"}, "spec": spec}


def test_cluster_first() -> None:
    assert render_resolv_conf(pod(), NODE_RESOLV, "cluster.local", "10.96.0.10") == (
        "search web.svc.cluster.local svc.cluster.local cluster.local corp.example\n"
        "nameserver 10.96.0.10\n"
        "options ndots:5\n"
    )


def test_default_and_host_network() -> None:
    expected = "search corp.example\nnameserver 192.0.2.53\noptions timeout:2\n"
    assert (
        render_resolv_conf(pod(dnsPolicy="Default"), NODE_RESOLV, "cluster.local", "x") == expected
    )
    host = pod(hostNetwork=True)
    assert render_resolv_conf(host, NODE_RESOLV, "cluster.local", "x") == expected
    with_net = pod(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet")
    assert "nameserver 10.96.0.10" in render_resolv_conf(with_net, NODE_RESOLV, "c.l", "10.96.0.10")


def test_none_with_dns_config() -> None:
    spec = pod(
        dnsPolicy="None",
        dnsConfig={
            "nameservers": ["1.2.3.4"],
            "searches": ["ns1.svc.cluster-domain.example"],
            "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}],
        },
    )
    assert render_resolv_conf(spec, NODE_RESOLV, "cluster.local", "10.96.0.10") == (
        "search ns1.svc.cluster-domain.example\nnameserver 1.2.3.4\noptions ndots:2 edns0\n"
    )


def test_dns_config_merges_into_cluster_first() -> None:
    spec = pod(
        dnsConfig={"options": [{"name": "ndots", "value": "1"}], "nameservers": ["10.96.0.10"]}
    )
    text = render_resolv_conf(spec, "", "cluster.local", "10.96.0.10")
    assert text.count("nameserver") == 1 and "options ndots:1\n" in text


def test_hosts_file() -> None:
    aliases = [{"ip": "127.0.0.1", "hostnames": ["foo.local", "bar.local"]}]
    text = render_hosts(pod(hostAliases=aliases), "10.244.0.5", "client", "", "")
    assert text.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    assert "10.244.0.5\tclient\n" in text
    assert text.endswith("\n# Entries added by HostAliases.\n127.0.0.1\tfoo.local\tbar.local\n")
    sub = render_hosts(pod(), "10.244.0.5", "web-0", "nginx.web.svc.cluster.local", "")
    assert "10.244.0.5\tweb-0.nginx.web.svc.cluster.local\tweb-0\n" in sub
    host = render_hosts(pod(hostNetwork=True), "192.0.2.2", "node", "", "127.0.0.1 localhost\n")
    assert host == "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n"


def test_hostname() -> None:
    assert pod_hostname(pod(), "cluster.local") == ("client", "")
    assert pod_hostname(pod(hostname="h", subdomain="s"), "cluster.local") == (
        "h",
        "s.web.svc.cluster.local",
    )
    long = {"metadata": {"name": "a" * 62 + "-b", "namespace": "d"}, "spec": {}}
    assert pod_hostname(long, "cluster.local")[0] == "a" * 62


def test_short_id() -> None:
    assert short_id("3f2a9c1d-0e4b-4c5d-8e9f-001122334455") == "3f2a9c1d0e4"
    assert len(short_id("not-a-uuid")) == 11


def test_map_program(tmp_path: Path) -> None:
    (tmp_path / "sh").symlink_to("/bin/busybox")
    assert map_program("/bin/sh", tmp_path) == str(tmp_path / "sh")
    assert map_program("/usr/bin/sh", tmp_path) == str(tmp_path / "sh")
    assert map_program("/bin/bash", tmp_path) == "/bin/bash"
    assert map_program("/opt/sh", tmp_path) == "/opt/sh"
    assert map_program("sh", tmp_path) == "sh"
