"""The API server driven by the real kubectl: apply, get, watch, describe, edit, patch verbs,
scale, delete, explain, api-resources, and kubectl's error lines for bad input."""

import json
import os
import re
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from kubesvc.testing import Cluster, configmap


def test_apply_the_seed_then_reapply_and_edit(cluster: Cluster, seed: Path,
                                              tmp_path: Path) -> None:
    files = [str(seed / f) for f in ("server.yaml", "service.yaml", "client.yaml",
                                     "ingress.yaml")]
    args = [a for f in files for a in ("-f", f)]
    out = cluster.kubectl("apply", *args).stdout
    assert "deployment.apps/nginx created" in out
    assert "service/nginx created" in out
    assert "pod/client created" in out
    assert "ingress.extensions/ingress created" in out
    again = cluster.kubectl("apply", *args).stdout
    assert "deployment.apps/nginx unchanged" in again
    assert "service/nginx unchanged" in again
    manifest = yaml.safe_load((seed / "server.yaml").read_text())
    manifest["spec"]["replicas"] = 3
    changed = tmp_path / "server.yaml"
    changed.write_text(yaml.safe_dump(manifest))
    assert "deployment.apps/nginx configured" in cluster.kubectl("apply", "-f",
                                                                 str(changed)).stdout
    got = json.loads(cluster.kubectl("get", "deployment", "nginx", "-o", "json").stdout)
    assert got["spec"]["replicas"] == 3
    assert got["metadata"]["generation"] == 2
    assert got["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%",
                                                         "maxUnavailable": "25%"}
    cluster.kubectl("apply", "-f", str(seed / "server.yaml"))


def test_get_outputs(cluster: Cluster, seed: Path) -> None:
    cluster.kubectl("apply", "-f", str(seed / "service.yaml"))
    table = cluster.kubectl("get", "service").stdout.splitlines()
    assert table[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    row = next(line.split() for line in table if line.startswith("nginx "))
    assert row[1] == "ClusterIP" and row[4] == "80/TCP"
    wide = cluster.kubectl("get", "svc", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-1] == "SELECTOR" and "run=nginx" in wide[1] + wide[-1]
    as_yaml = yaml.safe_load(cluster.kubectl("get", "svc", "nginx", "-o", "yaml").stdout)
    assert as_yaml["spec"]["sessionAffinity"] == "None"
    assert as_yaml["spec"]["ports"][0]["targetPort"] == 80
    names = cluster.kubectl("get", "svc", "-o", "name").stdout.split()
    assert "service/nginx" in names
    ns = cluster.kubectl("get", "ns").stdout
    for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert name in ns
    everything = cluster.kubectl("get", "deploy,svc,ing,cm", "-A").stdout
    assert "NAMESPACE" in everything


def test_get_watch_prints_later_changes(cluster: Cluster) -> None:
    env = dict(os.environ, HOME=str(cluster.state_dir / "home"),
               KUBECONFIG=str(cluster.kubeconfig))
    kubectl = str(Path(sys.executable).parent / "kubectl")
    cluster.apply(configmap("watched-before"))
    proc = subprocess.Popen([kubectl, "get", "configmaps", "-w"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        header = proc.stdout.readline()
        assert header.split()[:2] == ["NAME", "DATA"]
        seen = [proc.stdout.readline()]
        cluster.apply(configmap("watched-after", a="b"))
        while "watched-after" not in seen[-1]:
            seen.append(proc.stdout.readline())
        assert sum("watched-before" in line for line in seen) == 1
    finally:
        proc.kill()
        proc.wait()


def test_describe_label_annotate_edit(cluster: Cluster, seed: Path, tmp_path: Path) -> None:
    cluster.kubectl("apply", "-f", str(seed / "service.yaml"))
    described = cluster.kubectl("describe", "service", "nginx").stdout
    assert re.search(r"^Selector:\s+run=nginx$", described, re.M)
    assert re.search(r"^Type:\s+ClusterIP$", described, re.M)
    cluster.kubectl("label", "service", "nginx", "tier=web")
    cluster.kubectl("annotate", "service", "nginx", "note=hello")
    svc = json.loads(cluster.kubectl("get", "svc", "nginx", "-o", "json").stdout)
    assert svc["metadata"]["labels"]["tier"] == "web"
    assert svc["metadata"]["annotations"]["note"] == "hello"
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/sessionAffinity: None/sessionAffinity: ClientIP/' "
                      "\"$1\"\n")
    editor.chmod(0o755)
    env = dict(os.environ, HOME=str(cluster.state_dir / "home"),
               KUBECONFIG=str(cluster.kubeconfig), EDITOR=str(editor))
    kubectl = str(Path(sys.executable).parent / "kubectl")
    result = subprocess.run([kubectl, "edit", "service", "nginx"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "service/nginx edited" in result.stdout
    svc = json.loads(cluster.kubectl("get", "svc", "nginx", "-o", "json").stdout)
    assert svc["spec"]["sessionAffinity"] == "ClientIP"
    assert svc["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"] == 10800


def test_scale_and_delete(cluster: Cluster, seed: Path) -> None:
    cluster.kubectl("apply", "-f", str(seed / "server.yaml"))
    out = cluster.kubectl("scale", "deployment", "nginx", "--replicas=3").stdout
    assert "deployment.apps/nginx scaled" in out
    got = json.loads(cluster.kubectl("get", "deploy", "nginx", "-o", "json").stdout)
    assert got["spec"]["replicas"] == 3
    cluster.apply(configmap("short-lived"))
    assert "deleted" in cluster.kubectl("delete", "configmap", "short-lived").stdout
    missing = cluster.kubectl("get", "configmap", "short-lived", check=False)
    assert missing.returncode == 1
    assert 'configmaps "short-lived" not found' in missing.stderr
    cluster.kubectl("apply", "-f", str(seed / "server.yaml"))


def test_explain_and_api_resources(cluster: Cluster) -> None:
    explained = cluster.kubectl("explain", "service.spec").stdout
    assert "KIND:" in explained and "Service" in explained
    assert "clusterIP" in explained and "selector" in explained
    resources = cluster.kubectl("api-resources").stdout
    rows = {line.split()[0]: line.split() for line in resources.splitlines()[1:]}
    for name, short in (("services", "svc"), ("pods", "po"), ("deployments", "deploy"),
                        ("replicasets", "rs"), ("endpoints", "ep"), ("namespaces", "ns"),
                        ("nodes", "no"), ("ingresses", "ing"), ("configmaps", "cm")):
        assert short in rows[name], rows.get(name)
    assert cluster.kubectl("get", "po").returncode == 0


@pytest.mark.parametrize(("manifest", "expected"), [
    ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}},
     'The ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"'),
    ({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "big-port"},
      "spec": {"ports": [{"port": 70000}]}},
     "* spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive"),
    ({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "mismatch"},
      "spec": {"selector": {"matchLabels": {"a": "b"}},
               "template": {"metadata": {"labels": {"a": "c"}},
                            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}},
     "`selector` does not match template `labels`"),
    ({"apiVersion": "v1", "kind": "Gizmo", "metadata": {"name": "x"}},
     'no matches for kind "Gizmo" in version "v1"'),
    ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "typo"},
      "dataa": {"a": "b"}},
     'unknown field "dataa"'),
])
def test_bad_input_gives_kubectls_error_lines(cluster: Cluster, tmp_path: Path,
                                              manifest: dict[str, object],
                                              expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(manifest))
    result = cluster.kubectl("apply", "-f", str(path), check=False)
    assert result.returncode == 1
    assert expected in result.stderr, result.stderr
    assert "Internal error" not in result.stderr


def test_malformed_yaml(cluster: Cluster, tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [oops\n")
    result = cluster.kubectl("apply", "-f", str(path), check=False)
    assert result.returncode == 1
    assert "error" in result.stderr.lower()


def test_immutable_field_and_stale_update(cluster: Cluster, seed: Path, tmp_path: Path) -> None:
    cluster.kubectl("apply", "-f", str(seed / "service.yaml"), "-f", str(seed / "server.yaml"))
    result = cluster.kubectl("patch", "deployment", "nginx", "-p",
                             '{"spec":{"selector":{"matchLabels":{"app":"x"}},"template":'
                             '{"metadata":{"labels":{"app":"x"}}}}}', check=False)
    assert result.returncode == 1
    assert "spec.selector: Invalid value" in result.stderr, result.stderr
    assert "field is immutable" in result.stderr, result.stderr
    svc = json.loads(cluster.kubectl("get", "svc", "nginx", "-o", "json").stdout)
    cluster.kubectl("label", "svc", "nginx", "bump=1", "--overwrite")
    stale = tmp_path / "stale.json"
    svc["metadata"].setdefault("labels", {})["stale"] = "yes"
    stale.write_text(json.dumps(svc))
    result = cluster.kubectl("replace", "-f", str(stale), check=False)
    assert result.returncode == 1
    assert "the object has been modified; please apply your changes to the latest version" \
        in result.stderr


def test_unauthenticated_requests_get_401(cluster: Cluster) -> None:
    config = cluster.config
    context = ssl.create_default_context(cafile=str(config.pki.ca_cert))
    url = f"https://127.0.0.1:{cluster.port}/api/v1/namespaces"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, context=context, timeout=10)
    assert err.value.code == 401
    body = json.loads(err.value.read())
    assert body["kind"] == "Status" and body["reason"] == "Unauthorized"
    with urllib.request.urlopen(f"https://127.0.0.1:{cluster.port}/healthz", context=context,
                                timeout=10) as resp:
        assert resp.read() == b"ok"
