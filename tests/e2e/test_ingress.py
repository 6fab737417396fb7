"""The ingress addon end to end, against a real cluster: `kubesvc addons enable ingress`, the
seed's extensions/v1beta1 Ingress answered at `kubesvc ip`, hosts and paths routed straight
to the pods of the right Service, 404 for unknown hosts, TLS with SNI, bad Ingresses reported
as Events, scaling under load without a failed request, a restart, and `disable`.

The tests run in order on one cluster: the addon is enabled first and disabled last.
"""

import datetime
import http.client
import json
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubesvc.testing import Cluster

T = TypeVar("T")
TITLE = b"<title>Welcome to nginx!</title>"
# A backend that says which app and pod answered, and the path it was asked for.
ECHO = """
import http.server, os, signal
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
class Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = f"{os.environ['APP']} {os.environ['HOSTNAME']} {self.path}\\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("", 8080), Echo).serve_forever()
"""


def wait_until(check: Callable[[], T], attempts: int = 600) -> T:
    """Poll `check` (about 0.1 s apart) until it returns something truthy; fail after."""
    for _ in range(attempts):
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"condition never held: {check}")


def kubesvc(cluster: Cluster, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "kubesvc", *args, "--state-dir",
                             str(cluster.state_dir)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, f"kubesvc {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


def get(ip: str, host: str, path: str = "/") -> tuple[int, bytes, dict[str, str]]:
    """One request on a connection of its own: (status, body, headers)."""
    conn = http.client.HTTPConnection(ip, 80, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host, "Connection": "close"})
        resp = conn.getresponse()
        return resp.status, resp.read(), dict(resp.getheaders())
    finally:
        conn.close()


def answers(ip: str, host: str, path: str, start: bytes) -> bool:
    try:
        status, body, _ = get(ip, host, path)
    except OSError:
        return False
    return status == 200 and body.startswith(start)


def echo_app(name: str, replicas: int) -> list[dict[str, Any]]:
    labels = {"app": name}
    container = {"name": "echo", "image": "python:3", "command": ["python3", "-c", ECHO],
                 "env": [{"name": "APP", "value": name}],
                 "ports": [{"name": "http", "containerPort": 8080}],
                 "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
         "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"containers": [container]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
         "spec": {"selector": labels, "ports": [{"name": "http", "port": 80,
                                                 "targetPort": "http"}]}},
    ]


def ingress(name: str, rules: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    annotations = spec.pop("annotations", {})
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"rules": rules, **spec}}


def rule(host: str, *paths: tuple[str, str, str, int | str]) -> dict[str, Any]:
    def port(p: int | str) -> dict[str, int | str]:
        return {"number": p} if isinstance(p, int) else {"name": p}

    return {"host": host, "http": {"paths": [
        {"path": path, "pathType": kind,
         "backend": {"service": {"name": svc, "port": port(p)}}}
        for path, kind, svc, p in paths]}}


@pytest.fixture(scope="module")
def node_ip(cluster: Cluster) -> Iterator[str]:
    out = kubesvc(cluster, "addons", "enable", "ingress")
    assert "The 'ingress' addon is enabled" in out
    yield cluster.kubectl("get", "node", "-o",
                          "jsonpath={.items[0].status.addresses[0].address}").stdout


@pytest.fixture(scope="module")
def echo(cluster: Cluster, node_ip: str) -> None:
    """Two apps, blue (two pods) and green (one), behind Services."""
    cluster.apply(*echo_app("blue", 2), *echo_app("green", 1))
    cluster.kubectl("rollout", "status", "deployment/blue", "deployment/green", "--timeout=120s")


def test_the_addon_shows_as_on_minikube(cluster: Cluster, node_ip: str) -> None:
    pods = cluster.kubectl("get", "pods", "-n", "ingress-nginx").stdout
    assert re.search(r"^ingress-nginx-controller-\S+\s+1/1\s+Running", pods, re.M), pods
    deploy = cluster.kubectl("get", "deployment", "-n", "ingress-nginx").stdout
    assert re.search(r"^ingress-nginx-controller\s+1/1\s+1\s+1\s", deploy, re.M), deploy
    klass = json.loads(cluster.kubectl("get", "ingressclass", "nginx", "-o", "json").stdout)
    assert klass["spec"]["controller"] == "k8s.io/ingress-nginx"
    assert klass["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"] \
        == "true"
    assert re.search(r"\| ingress\s+\| \S+\s+\| enabled\s+\|", kubesvc(cluster, "addons",
                                                                        "list"))
    assert kubesvc(cluster, "ip").strip() == node_ip
    # minikube's `service --url`: the node's address with each node port of the Service.
    svc = json.loads(cluster.kubectl("get", "service", "-n", "ingress-nginx",
                                     "ingress-nginx-controller", "-o", "json").stdout)
    urls = kubesvc(cluster, "service", "ingress-nginx-controller", "-n", "ingress-nginx",
                   "--url").split()
    assert urls == [f"http://{node_ip}:{p['nodePort']}" for p in svc["spec"]["ports"]]


def test_the_seed_ingress_as_the_seed_wrote_it(cluster: Cluster, seed: Path,
                                               node_ip: str) -> None:
    cluster.kubectl("apply", "-f", str(seed / "server.yaml"), "-f", str(seed / "service.yaml"),
                    "-f", str(seed / "ingress.yaml"))
    cluster.kubectl("rollout", "status", "deployment/nginx", "--timeout=120s")
    ip = kubesvc(cluster, "ip").strip()

    def curl() -> bool:
        page = subprocess.run(["curl", "-s", "-H", "Host: yczhang.k8s", f"http://{ip}/"],
                              capture_output=True, timeout=30).stdout
        return TITLE in page

    wait_until(curl)

    def with_address() -> str:
        table = cluster.kubectl("get", "ingress").stdout
        return table if node_ip in table else ""

    table = wait_until(with_address)
    assert re.search(rf"^ingress\s+(\S+\s+)?yczhang\.k8s\s+{re.escape(node_ip)}\s+80\s", table,
                     re.M), table


def test_two_hosts_and_two_paths_reach_the_right_pods(cluster: Cluster, node_ip: str,
                                                      echo: None) -> None:
    cluster.apply(ingress("hosts", [rule("blue.test", ("/", "Prefix", "blue", "http")),
                                    rule("green.test", ("/", "Prefix", "green", 80)),
                                    rule("*.wild.test", ("/", "Prefix", "green", 80))]),
                  ingress("paths", [rule("shop.test", ("/blue", "Prefix", "blue", 80),
                                         ("/green", "Exact", "green", "http"))]))
    wait_until(lambda: answers(node_ip, "shop.test", "/green", b"green"))
    wait_until(lambda: answers(node_ip, "blue.test", "/", b"blue"))
    assert get(node_ip, "green.test", "/a/b")[1].split()[::2] == [b"green", b"/a/b"]
    assert get(node_ip, "shop.test", "/blue/x")[1].split()[::2] == [b"blue", b"/blue/x"]
    # A wildcard host matches one more label, as Kubernetes defines it.
    assert get(node_ip, "a.wild.test")[1].startswith(b"green")
    assert get(node_ip, "a.b.wild.test")[0] == 404
    # Prefix matches whole path elements; Exact only the path; the rest is the default 404.
    assert get(node_ip, "shop.test", "/bluex")[0] == 404
    assert get(node_ip, "shop.test", "/green/x")[0] == 404
    assert get(node_ip, "shop.test", "/")[0] == 404
    # Round-robin over blue's two pods, straight to them.
    pods = {get(node_ip, "blue.test")[1].split()[1] for _ in range(10)}
    assert len(pods) == 2, pods


def test_an_unknown_host_gets_404(node_ip: str) -> None:
    status, body, _ = get(node_ip, "nobody.test")
    assert status == 404
    assert b"404 Not Found" in body


def test_rewrite_target(cluster: Cluster, node_ip: str, echo: None) -> None:
    cluster.apply(ingress("rewrite", [rule("rw.test", ("/api(/|$)(.*)", "ImplementationSpecific",
                                                      "green", 80))],
                          annotations={"nginx.ingress.kubernetes.io/rewrite-target": "/$2"}))
    wait_until(lambda: answers(node_ip, "rw.test", "/api/v1/items", b"green"))
    assert get(node_ip, "rw.test", "/api/v1/items")[1].split()[2] == b"/v1/items"


def certificate(ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
                name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A CA (ca None) or a certificate for `name` that it issues."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1)))
    if ca is None:
        builder = builder.issuer_name(subject).add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True)
        return builder.sign(key, hashes.SHA256()), key
    builder = builder.issuer_name(ca[0].subject).add_extension(
        x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
    return builder.sign(ca[1], hashes.SHA256()), key


def tls_secret(name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
               ) -> dict[str, Any]:
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name},
            "stringData": {"tls.crt": cert.public_bytes(serialization.Encoding.PEM).decode(),
                           "tls.key": key_pem.decode()}}


def https_get(ip: str, sni: str, context: ssl.SSLContext) -> tuple[x509.Certificate, bytes]:
    """The certificate served for `sni`, and the response to GET / for that host."""
    with socket.create_connection((ip, 443), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=sni) as tls:
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n".encode())
        response = b""
        while chunk := tls.recv(65536):
            response += chunk
    return x509.load_der_x509_certificate(der), response


def test_tls_with_two_certificates_chosen_by_sni(cluster: Cluster, node_ip: str,
                                                 echo: None) -> None:
    ca = certificate(None, "kubesvc test CA")
    cluster.apply(tls_secret("a-tls", *certificate(ca, "a.tls.test")),
                  tls_secret("b-tls", *certificate(ca, "b.tls.test")),
                  ingress("tls", [rule("a.tls.test", ("/", "Prefix", "blue", 80)),
                                  rule("b.tls.test", ("/", "Prefix", "green", 80))],
                          tls=[{"hosts": ["a.tls.test"], "secretName": "a-tls"},
                               {"hosts": ["b.tls.test"], "secretName": "b-tls"}]))
    trusted = ssl.create_default_context(
        cadata=ca[0].public_bytes(serialization.Encoding.PEM).decode())

    def served(sni: str, start: bytes) -> bool:
        try:
            _, response = https_get(node_ip, sni, trusted)
        except (OSError, ssl.SSLError):
            return False
        return response.startswith(b"HTTP/1.1 200") and response.split(b"\r\n\r\n")[1] \
            .startswith(start)

    wait_until(lambda: served("a.tls.test", b"blue") and served("b.tls.test", b"green"))
    # Plain HTTP to a TLS host is redirected; an unknown name gets the default certificate.
    status, _, headers = get(node_ip, "a.tls.test", "/x?y=1")
    assert (status, headers["Location"]) == (308, "https://a.tls.test/x?y=1")
    untrusted = ssl.create_default_context()
    untrusted.check_hostname = False
    untrusted.verify_mode = ssl.CERT_NONE
    fake, _ = https_get(node_ip, "unknown.tls.test", untrusted)
    assert fake.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value \
        == "Kubernetes Ingress Controller Fake Certificate"


def warnings_about(cluster: Cluster, name: str) -> set[str]:
    events = json.loads(cluster.kubectl("get", "events", "-o", "json", "--field-selector",
                                        f"involvedObject.name={name}").stdout)["items"]
    return {e["reason"] for e in events if e["type"] == "Warning"}


def test_bad_ingresses_are_events_and_the_others_keep_serving(cluster: Cluster, node_ip: str,
                                                               echo: None) -> None:
    cluster.apply(ingress("broken", [rule("broken.test", ("/", "Prefix", "nope", 80))],
                          tls=[{"hosts": ["broken.test"], "secretName": "nope-tls"}]),
                  ingress("conflict", [rule("blue.test", ("/", "Prefix", "green", 80))]),
                  ingress("bad-regex", [rule("regex.test", ("/(", "ImplementationSpecific",
                                                            "green", 80))],
                          annotations={"nginx.ingress.kubernetes.io/use-regex": "true"}))
    wait_until(lambda: warnings_about(cluster, "broken") >= {"ServiceNotFound",
                                                             "SecretNotFound"})
    wait_until(lambda: "Conflict" in warnings_about(cluster, "conflict"))
    wait_until(lambda: "InvalidPath" in warnings_about(cluster, "bad-regex"))
    described = cluster.kubectl("describe", "ingress", "conflict").stdout
    assert 'host "blue.test" and path "/" is already defined in ingress "default/hosts"' \
        in described
    # A Service that does not exist answers 503 (on HTTPS: the host is listed for TLS, with
    # the default certificate as its Secret is missing).
    assert get(node_ip, "broken.test")[0] == 308
    untrusted = ssl.create_default_context()
    untrusted.check_hostname = False
    untrusted.verify_mode = ssl.CERT_NONE
    assert https_get(node_ip, "broken.test", untrusted)[1].startswith(b"HTTP/1.1 503")
    assert get(node_ip, "blue.test")[1].startswith(b"blue")
    assert get(node_ip, "shop.test", "/green")[1].startswith(b"green")
    cluster.kubectl("delete", "ingress", "broken", "conflict", "bad-regex")


class Load:
    """Requests in a loop from a few threads, each on a new connection, counting failures."""

    def __init__(self, ip: str, host: str, threads: int = 4) -> None:
        self.ip, self.host = ip, host
        self.done = threading.Event()
        self.ok = 0
        self.failures: list[str] = []
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]
        self._lock = threading.Lock()

    def __enter__(self) -> "Load":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        for t in self._threads:
            t.join()

    def _run(self) -> None:
        while not self.done.is_set():
            try:
                status, body, _ = get(self.ip, self.host)
                failure = "" if status == 200 and TITLE in body else f"status {status}"
            except OSError as exc:
                failure = repr(exc)
            with self._lock:
                if failure:
                    self.failures.append(failure)
                else:
                    self.ok += 1


def upstreams_used(cluster: Cluster) -> set[str]:
    """The pod addresses the ingress sent the seed's requests to, from its access log."""
    logs = cluster.kubectl("logs", "-n", "ingress-nginx", "deployment/ingress-nginx-controller",
                           "--since=10m").stdout
    marker = "[default-nginx-80] "
    return {ip for line in logs.splitlines() if marker in line
            for ip in re.findall(r"(\d+\.\d+\.\d+\.\d+):\d+", line.split(marker, 1)[1])}


def ready_pod_ips(cluster: Cluster) -> set[str]:
    pods = json.loads(cluster.kubectl("get", "pods", "-l", "run=nginx", "-o",
                                      "json").stdout)["items"]
    return {p["status"]["podIP"] for p in pods if not p["metadata"].get("deletionTimestamp")
            and any(c["type"] == "Ready" and c["status"] == "True"
                    for c in p["status"].get("conditions", []))}


def test_scaling_under_load_loses_no_request(cluster: Cluster, node_ip: str) -> None:
    with Load(node_ip, "yczhang.k8s") as load:
        cluster.kubectl("scale", "deployment/nginx", "--replicas=4")
        cluster.kubectl("rollout", "status", "deployment/nginx", "--timeout=120s")
        four = wait_until(lambda: ips if len(ips := ready_pod_ips(cluster)) == 4 else None)
        # The new pods get traffic: the upstreams changed while requests kept flowing.
        wait_until(lambda: four <= upstreams_used(cluster))
        cluster.kubectl("scale", "deployment/nginx", "--replicas=2")
        wait_until(lambda: len(ready_pod_ips(cluster)) == 2 and not json.loads(cluster.kubectl(
            "get", "pods", "-l", "run=nginx", "-o", "json").stdout)["items"][2:])
        time.sleep(2)  # keep the load on past the last reload
    assert load.failures == [], f"{len(load.failures)} of {load.ok + len(load.failures)} " \
                                f"requests failed: {load.failures[:5]}"
    assert load.ok > 100


def test_the_addon_stays_enabled_across_a_restart(cluster: Cluster, node_ip: str) -> None:
    cluster.stop()
    cluster.start()
    # The node's address derives from the cluster's name, so it is the same after a restart.
    assert kubesvc(cluster, "ip").strip() == node_ip
    wait_until(lambda: answers(node_ip, "yczhang.k8s", "/", b"<!DOCTYPE html>"), attempts=1200)
    assert re.search(r"\| ingress\s+\| \S+\s+\| enabled\s+\|", kubesvc(cluster, "addons",
                                                                        "list"))


def test_disable_removes_the_addon(cluster: Cluster, node_ip: str) -> None:
    assert "The 'ingress' addon is disabled" in kubesvc(cluster, "addons", "disable", "ingress")
    assert "ingress-nginx" not in cluster.kubectl("get", "namespaces").stdout
    assert "nginx" not in cluster.kubectl("get", "ingressclass").stdout
    assert re.search(r"\| ingress\s+\| \S+\s+\| disabled\s+\|", kubesvc(cluster, "addons",
                                                                         "list"))
    # The controller took its address off the Ingresses it served, and nothing listens.
    status = json.loads(cluster.kubectl("get", "ingress", "ingress", "-o", "json").stdout)
    assert not (status.get("status") or {}).get("loadBalancer", {}).get("ingress")
    with pytest.raises(ConnectionRefusedError):
        get(node_ip, "yczhang.k8s")
