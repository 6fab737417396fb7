"""A pod's sandbox: its IP, network namespace and the files its containers see.

The sandbox is everything a pod's containers share: the network (a namespace of its own with
a veth into the node's bridge, or the node's for hostNetwork pods), /etc/resolv.conf,
/etc/hosts and /etc/hostname (written here and bind-mounted in each container), and a
directory on every container's PATH with busybox's applets and the image's programs.
"""

from __future__ import annotations

import functools
import hashlib
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from kubesvc.kernel.nodenet import NodeNetwork
from kubesvc.kernel.podnet import create_pod_network, delete_pod_network, pod_network_ready
from kubesvc.node.images import ImageEntry, host_program
from kubesvc.node.ipam import IPAM
from kubesvc.node.podfiles import PodDir, read_json, write_json

NODE_RESOLV_CONF = Path("/etc/resolv.conf")
NODE_HOSTS = Path("/etc/hosts")
BUSYBOX = "/bin/busybox"
_BIN_DIRS = {"/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"}
# The kubelet's limits (pkg/apis/core/validation, pkg/kubelet/network/dns).
MAX_NAMESERVERS = 3
MAX_SEARCHES = 32
MAX_HOSTNAME = 63


@dataclass
class Sandbox:
    uid: str
    name: str
    namespace: str
    ip: str
    host_network: bool
    # The namespace the pod's processes join: the pod's own, or the node's for hostNetwork.
    netns: str | None
    # The host end of the pod's veth pair, in the node's namespace ("" for hostNetwork).
    veth: str
    # The pod's hostname in its own UTS namespace; None shares the node's (hostNetwork).
    hostname: str | None

    @classmethod
    def load(cls, pod_dir: PodDir) -> Sandbox | None:
        try:
            return cls(**read_json(pod_dir.sandbox))
        except FileNotFoundError:
            return None


def short_id(uid: str) -> str:
    """11 characters naming a pod's kernel objects: the uid's first hex digits when it is a
    UUID (so `veth3f2a9c1d0e4` can be told by its uid), else a hash of it."""
    digits = re.sub(r"[^0-9a-f]", "", uid.lower())
    return digits[:11] if len(digits) >= 11 else hashlib.sha256(uid.encode()).hexdigest()[:11]


def pod_hostname(pod: dict[str, Any], cluster_domain: str) -> tuple[str, str]:
    """(hostname, domain) as the kubelet derives them; domain is "" without a subdomain."""
    spec = pod.get("spec") or {}
    hostname = spec.get("hostname") or pod["metadata"]["name"]
    if len(hostname) > MAX_HOSTNAME:
        hostname = hostname[:MAX_HOSTNAME].rstrip("-.")
    subdomain = spec.get("subdomain")
    namespace = pod["metadata"].get("namespace", "default")
    domain = f"{subdomain}.{namespace}.svc.{cluster_domain}" if subdomain else ""
    return hostname, domain


def _parse_resolv_conf(text: str) -> tuple[list[str], list[str], list[str]]:
    nameservers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            nameservers.append(fields[1])
        elif fields[0] in ("search", "domain"):
            searches = fields[1:]  # the last one wins, as in glibc
        elif fields[0] == "options":
            options.extend(fields[1:])
    return nameservers, searches, options


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _merge_options(base: list[str], extra: list[dict[str, Any]]) -> list[str]:
    merged = {opt.split(":", 1)[0]: opt for opt in base}
    for option in extra:
        name = option["name"]
        merged[name] = f"{name}:{option['value']}" if option.get("value") is not None else name
    return list(merged.values())


def render_resolv_conf(
    pod: dict[str, Any], node_resolv_conf: str, cluster_domain: str, dns_ip: str
) -> str:
    """The pod's resolv.conf per its dnsPolicy and dnsConfig, as the kubelet builds it."""
    spec = pod.get("spec") or {}
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    host_network = bool(spec.get("hostNetwork"))
    namespace = pod["metadata"].get("namespace", "default")
    host_ns, host_search, host_opts = _parse_resolv_conf(node_resolv_conf)
    if policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not host_network):
        nameservers = [dns_ip]
        zone = f"svc.{cluster_domain}"
        searches = [f"{namespace}.{zone}", zone, cluster_domain, *host_search]
        options = ["ndots:5"]
    elif policy == "None":
        nameservers, searches, options = [], [], []
    else:  # Default, and ClusterFirst on the host network
        nameservers, searches, options = host_ns, host_search, host_opts
    dns_config = spec.get("dnsConfig") or {}
    nameservers = _unique(nameservers + list(dns_config.get("nameservers") or []))
    searches = _unique(searches + list(dns_config.get("searches") or []))
    options = _merge_options(options, list(dns_config.get("options") or []))
    lines = []
    if searches:
        lines.append("search " + " ".join(searches[:MAX_SEARCHES]))
    lines += [f"nameserver {ns}" for ns in nameservers[:MAX_NAMESERVERS]]
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def render_hosts(pod: dict[str, Any], ip: str, hostname: str, domain: str, node_hosts: str) -> str:
    """The pod's /etc/hosts, as the kubelet's managed hosts file."""
    spec = pod.get("spec") or {}
    aliases = spec.get("hostAliases") or []
    if spec.get("hostNetwork"):
        text = "# Kubernetes-managed hosts file (host network).\n" + node_hosts
    else:
        text = (
            "# Kubernetes-managed hosts file.\n"
            "127.0.0.1\tlocalhost\n"
            "::1\tlocalhost ip6-localhost ip6-loopback\n"
            "fe00::0\tip6-localnet\n"
            "fe00::0\tip6-mcastprefix\n"
            "fe00::1\tip6-allnodes\n"
            "fe00::2\tip6-allrouters\n"
        )
        text += f"{ip}\t{hostname}.{domain}\t{hostname}\n" if domain else f"{ip}\t{hostname}\n"
    if aliases:
        text += "\n# Entries added by HostAliases.\n"
        text += "".join(
            f"{a['ip']}\t" + "\t".join(a.get("hostnames") or []) + "\n" for a in aliases
        )
    return text


@functools.cache
def busybox_applets() -> tuple[str, ...]:
    out = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True)
    return tuple(out.stdout.split())


def map_program(program: str, bin_dir: Path) -> str:
    """`/bin/sh`, `/usr/sbin/nginx`: the pod's own program of that name when it has one, as
    an image would (its /bin/sh is busybox's); anything else unchanged."""
    path = Path(program)
    if str(path.parent) in _BIN_DIRS and (bin_dir / path.name).exists():
        return str(bin_dir / path.name)
    return program


def _write_bin_dir(pod_dir: PodDir, entries: list[ImageEntry]) -> None:
    pod_dir.bin.mkdir(parents=True, exist_ok=True)
    links = dict.fromkeys(busybox_applets(), BUSYBOX)
    for entry in entries:
        for name, program in entry.links.items():
            links[name] = host_program(program) or program
    for name, target in links.items():
        link = pod_dir.bin / name
        if not link.is_symlink():
            link.symlink_to(target)
    if any(entry.nginx for entry in entries):
        _write_nginx(pod_dir)


def _write_nginx(pod_dir: PodDir) -> None:
    """A pod-private nginx: the official image's configuration with the pod's own paths."""
    root = pod_dir.nginx
    for sub in ("html", "conf.d", "temp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    data = resources.files("kubesvc.node").joinpath("data/nginx")
    for page in ("index.html", "50x.html"):
        (root / "html" / page).write_bytes(data.joinpath(page).read_bytes())
    mime = (
        "    include       /etc/nginx/mime.types;\n"
        if Path("/etc/nginx/mime.types").exists()
        else ""
    )
    temps = "".join(
        f"    {kind}_temp_path {root}/temp/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (root / "nginx.conf").write_text(
        "user  root;\n"
        "worker_processes  auto;\n\n"
        "error_log  stderr notice;\n"
        f"pid        {root}/nginx.pid;\n\n"
        "events {\n    worker_connections  1024;\n}\n\n"
        "http {\n"
        f"{mime}"
        "    default_type  application/octet-stream;\n\n"
        "    log_format  main  '$remote_addr - $remote_user [$time_local] \"$request\" '\n"
        "                      '$status $body_bytes_sent \"$http_referer\" '\n"
        '                      \'"$http_user_agent" "$http_x_forwarded_for"\';\n\n'
        "    access_log  /dev/stdout  main;\n\n"
        "    sendfile        on;\n"
        "    keepalive_timeout  65;\n\n"
        f"{temps}\n"
        f"    include {root}/conf.d/*.conf;\n"
        "}\n"
    )
    ipv6 = "    listen  [::]:80;\n" if Path("/proc/net/if_inet6").exists() else ""
    (root / "conf.d" / "default.conf").write_text(
        "server {\n"
        "    listen       80;\n"
        f"{ipv6}"
        "    server_name  localhost;\n\n"
        "    location / {\n"
        f"        root   {root}/html;\n"
        "        index  index.html index.htm;\n"
        "    }\n\n"
        "    error_page   500 502 503 504  /50x.html;\n"
        "    location = /50x.html {\n"
        f"        root   {root}/html;\n"
        "    }\n"
        "}\n"
    )
    wrapper = pod_dir.bin / "nginx"
    wrapper.unlink(missing_ok=True)
    wrapper.write_text(
        "#!/bin/sh\n"
        "# nginx with this pod's own configuration (kubesvc)\n"
        f'exec {host_program("nginx")} -p {root}/ -c {root}/nginx.conf -e stderr "$@"\n'
    )
    wrapper.chmod(0o755)


def container_mounts(pod_dir: PodDir) -> list[tuple[str, str]]:
    """The pod's files bind-mounted over the node's in every container."""
    names = ("resolv.conf", "hosts", "hostname")
    return [(str(pod_dir.etc / n), f"/etc/{n}") for n in names if Path("/etc", n).exists()]


async def create_sandbox(
    pod: dict[str, Any],
    pod_dir: PodDir,
    node: NodeNetwork,
    ipam: IPAM,
    entries: list[ImageEntry],
    cluster_domain: str,
    dns_ip: str,
) -> Sandbox:
    """Create (or complete) the pod's sandbox; its record is written last, once it works."""
    meta = pod["metadata"]
    uid = meta["uid"]
    host_network = bool((pod.get("spec") or {}).get("hostNetwork"))
    short = short_id(uid)
    pod_dir.path.mkdir(parents=True, exist_ok=True)
    hostname, domain = pod_hostname(pod, cluster_domain)
    if (pod.get("spec") or {}).get("setHostnameAsFQDN") and domain:
        uts_name = f"{hostname}.{domain}"
    else:
        uts_name = hostname
    if host_network:
        # A hostNetwork pod has the node's name; only an isolated node needs its own UTS.
        sandbox = Sandbox(uid, meta["name"], meta.get("namespace", "default"), node.node_ip,
                          True, node.netns, "", node.name if node.isolated else None)  # fmt: skip
    else:
        ip = ipam.allocate(uid)
        sandbox = Sandbox(uid, meta["name"], meta.get("namespace", "default"), ip, False,
                          node.pod_netns(short), f"veth{short}", uts_name)  # fmt: skip
        assert sandbox.netns is not None
        await create_pod_network(node, sandbox.netns, sandbox.veth, ip)
    pod_dir.etc.mkdir(exist_ok=True)
    node_resolv = NODE_RESOLV_CONF.read_text() if NODE_RESOLV_CONF.exists() else ""
    node_hosts = NODE_HOSTS.read_text() if NODE_HOSTS.exists() else ""
    (pod_dir.etc / "resolv.conf").write_text(
        render_resolv_conf(pod, node_resolv, cluster_domain, dns_ip)
    )
    (pod_dir.etc / "hosts").write_text(render_hosts(pod, sandbox.ip, hostname, domain, node_hosts))
    (pod_dir.etc / "hostname").write_text(f"{sandbox.hostname or node.name}\n")
    _write_bin_dir(pod_dir, entries)
    write_json(pod_dir.sandbox, asdict(sandbox))
    return sandbox


async def sandbox_ready(sandbox: Sandbox, node: NodeNetwork) -> bool:
    if sandbox.host_network:
        return True
    assert sandbox.netns is not None
    return await pod_network_ready(node, sandbox.netns, sandbox.veth)


async def destroy_sandbox(pod_dir: PodDir, node: NodeNetwork, ipam: IPAM, uid: str) -> None:
    """Release the pod's network, IP and files; each step tolerates a half-made sandbox."""
    sandbox = Sandbox.load(pod_dir)
    if sandbox is not None and not sandbox.host_network and sandbox.netns is not None:
        await delete_pod_network(node, sandbox.netns, sandbox.veth)
    elif sandbox is None:
        short = short_id(uid)
        await delete_pod_network(node, node.pod_netns(short), f"veth{short}")
    ipam.release(uid)
    shutil.rmtree(pod_dir.path, ignore_errors=True)
