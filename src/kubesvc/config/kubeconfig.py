"""Writing the cluster's entry into a kubeconfig without disturbing the others in it."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml

from kubesvc.config.pki import Pki


def default_path() -> Path:
    env = os.environ.get("KUBECONFIG", "")
    first = env.split(os.pathsep)[0] if env else ""
    return Path(first) if first else Path.home() / ".kube" / "config"


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _upsert(entries: list[dict[str, Any]], name: str, key: str, value: dict[str, Any]) -> None:
    for entry in entries:
        if entry.get("name") == name:
            entry[key] = value
            return
    entries.append({"name": name, key: value})


def merge(path: Path, name: str, server: str, pki: Pki) -> None:
    """Add or replace cluster, user and context `name`, and make it the current context."""
    config: dict[str, Any] = {}
    if path.exists():
        loaded = yaml.safe_load(path.read_text())
        if isinstance(loaded, dict):
            config = loaded
    config.setdefault("apiVersion", "v1")
    config.setdefault("kind", "Config")
    config.setdefault("preferences", {})
    for section in ("clusters", "users", "contexts"):
        if not isinstance(config.get(section), list):
            config[section] = []
    _upsert(config["clusters"], name, "cluster",
            {"server": server, "certificate-authority-data": _b64(pki.ca_cert)})
    _upsert(config["users"], name, "user",
            {"client-certificate-data": _b64(pki.admin_cert),
             "client-key-data": _b64(pki.admin_key)})
    _upsert(config["contexts"], name, "context",
            {"cluster": name, "user": name, "namespace": "default"})
    config["current-context"] = name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".kubesvc-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(config, f, default_flow_style=False)
    tmp.replace(path)


def remove(path: Path, name: str) -> None:
    """Drop the entries `kubesvc down` no longer needs; other contexts stay."""
    if not path.exists():
        return
    config = yaml.safe_load(path.read_text())
    if not isinstance(config, dict):
        return
    for section in ("clusters", "users", "contexts"):
        config[section] = [e for e in config.get(section) or [] if e.get("name") != name]
    if config.get("current-context") == name:
        config["current-context"] = ""
    path.write_text(yaml.safe_dump(config, default_flow_style=False))
