"""Cluster settings shared by every component, and where their state lives."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from kubesvc.config.pki import Pki
from kubesvc.kernel.iptables import DEFAULT_BACKEND as DEFAULT_IPTABLES_BACKEND

DEFAULT_STATE_DIR = Path("/var/lib/kubesvc")


@dataclass
class ClusterConfig:
    state_dir: Path = DEFAULT_STATE_DIR
    name: str = "kubesvc"
    api_address: str = "127.0.0.1"
    api_port: int = 6443
    service_cidr: str = "10.96.0.0/12"
    cluster_cidr: str = "10.244.0.0/16"
    node_port_range: str = "30000-32767"
    cluster_domain: str = "cluster.local"
    isolated: bool = False
    proxy_mode: str = "nftables"
    iptables_backend: str = DEFAULT_IPTABLES_BACKEND  # iptables mode's command family
    proxy_scheduler: str = "rr"  # ipvs and userspace modes; a Service's annotation wins
    lb_pool: str = "auto"
    # Where the cluster DNS sends names outside its zone: auto (the host's resolv.conf),
    # none, or a comma-separated list of addresses.
    dns_upstream: str = "auto"

    @property
    def pki(self) -> Pki:
        return Pki(self.state_dir / "pki")

    @property
    def database(self) -> Path:
        return self.state_dir / "state.db"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "kubesvc.pid"

    @property
    def settings_file(self) -> Path:
        return self.state_dir / "settings.json"

    @property
    def server_url(self) -> str:
        return f"https://{self.api_address}:{self.api_port}"

    def save(self) -> None:
        data = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}
        self.settings_file.write_text(json.dumps(data, indent=2) + "\n")

    @classmethod
    def load(cls, state_dir: Path) -> ClusterConfig:
        """The settings a running (or last) `kubesvc up` used for this state directory."""
        path = state_dir / "settings.json"
        data = json.loads(path.read_text())
        known = {f.name for f in fields(cls)}
        config = cls(**{k: v for k, v in data.items() if k in known})
        config.state_dir = Path(config.state_dir)
        return config
