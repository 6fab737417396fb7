from typing import Any

import pytest

from kubesvc.api.servicelinks import service_env
from kubesvc.node.expansion import expand

Obj = dict[str, Any]

# The service variables of the seed's `env` output in the client pod (other lines dropped).
SEED_ENV = """\
KUBERNETES_PORT=tcp://10.96.0.1:443
KUBERNETES_SERVICE_PORT=443
NGINX_PORT_80_TCP=tcp://10.97.244.221:80
KUBERNETES_PORT_443_TCP_ADDR=10.96.0.1
NGINX_SERVICE_HOST=10.97.244.221
KUBERNETES_PORT_443_TCP_PORT=443
KUBERNETES_PORT_443_TCP_PROTO=tcp
NGINX_SERVICE_PORT=80
NGINX_PORT=tcp://10.97.244.221:80
KUBERNETES_SERVICE_PORT_HTTPS=443
KUBERNETES_PORT_443_TCP=tcp://10.96.0.1:443
KUBERNETES_SERVICE_HOST=10.96.0.1
NGINX_PORT_80_TCP_ADDR=10.97.244.221
NGINX_PORT_80_TCP_PORT=80
NGINX_PORT_80_TCP_PROTO=tcp
"""


def service(name: str, namespace: str, cluster_ip: str, ports: list[Obj]) -> Obj:
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"clusterIP": cluster_ip, "ports": ports}}


KUBERNETES = service("kubernetes", "default", "10.96.0.1",
                     [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}])
NGINX = service("nginx", "default", "10.97.244.221",
                [{"port": 80, "protocol": "TCP", "targetPort": 80}])


def test_seed_env_is_reproduced_exactly() -> None:
    env = service_env("default", True, [NGINX, KUBERNETES])
    assert len(env) == len({name for name, _ in env})
    assert sorted(f"{k}={v}" for k, v in env) == sorted(SEED_ENV.splitlines())


def test_order_is_by_service_then_as_kubernetes_builds_each_service() -> None:
    env = service_env("default", True, [NGINX, KUBERNETES])
    assert [name for name, _ in env] == [
        "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "KUBERNETES_SERVICE_PORT_HTTPS",
        "KUBERNETES_PORT", "KUBERNETES_PORT_443_TCP", "KUBERNETES_PORT_443_TCP_PROTO",
        "KUBERNETES_PORT_443_TCP_PORT", "KUBERNETES_PORT_443_TCP_ADDR",
        "NGINX_SERVICE_HOST", "NGINX_SERVICE_PORT", "NGINX_PORT", "NGINX_PORT_80_TCP",
        "NGINX_PORT_80_TCP_PROTO", "NGINX_PORT_80_TCP_PORT", "NGINX_PORT_80_TCP_ADDR"]


def test_kubernetes_service_is_always_there_other_namespaces_never() -> None:
    other = service("web", "shop", "10.96.5.5", [{"port": 8080}])
    without_links = dict(service_env("default", False, [NGINX, KUBERNETES, other]))
    assert "KUBERNETES_SERVICE_HOST" in without_links
    assert not any(k.startswith(("NGINX_", "WEB_")) for k in without_links)
    in_shop = dict(service_env("shop", True, [NGINX, KUBERNETES, other]))
    assert in_shop["WEB_SERVICE_HOST"] == "10.96.5.5"
    assert in_shop["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert "NGINX_SERVICE_HOST" not in in_shop


def test_services_without_a_cluster_ip_are_skipped() -> None:
    headless = service("db", "default", "None", [{"port": 5432}])
    external = {"metadata": {"name": "ext", "namespace": "default"},
                "spec": {"type": "ExternalName", "externalName": "example.com"}}
    env = dict(service_env("default", True, [headless, external]))
    assert env == {}


def test_a_same_namespace_service_wins_over_the_master_service_of_that_name() -> None:
    mine = service("kubernetes", "shop", "10.96.9.9", [{"port": 80}])
    for order in ([KUBERNETES, mine], [mine, KUBERNETES]):
        assert dict(service_env("shop", True, order))["KUBERNETES_SERVICE_HOST"] == "10.96.9.9"


def test_names_protocols_and_named_ports() -> None:
    svc = service("my-dns", "default", "10.96.0.10", [
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
        {"name": "metrics", "port": 9153}])
    env = dict(service_env("default", True, [svc]))
    assert env["MY_DNS_SERVICE_PORT"] == "53"
    assert env["MY_DNS_SERVICE_PORT_DNS_TCP"] == "53"
    assert env["MY_DNS_SERVICE_PORT_METRICS"] == "9153"
    assert env["MY_DNS_PORT"] == "udp://10.96.0.10:53"
    assert env["MY_DNS_PORT_53_UDP_PROTO"] == "udp"
    assert env["MY_DNS_PORT_53_TCP"] == "tcp://10.96.0.10:53"
    assert env["MY_DNS_PORT_9153_TCP_ADDR"] == "10.96.0.10"


@pytest.mark.parametrize(("text", "expected"), [
    ("$(A)", "a"),
    ("x$(A)y$(B)z", "xaybz"),
    ("$$(A)", "$(A)"),
    ("$$$(A)", "$a"),
    ("$(UNKNOWN)", "$(UNKNOWN)"),
    ("$(A", "$(A"),
    ("$A", "$A"),
    ("cost: 5$", "cost: 5$"),
    ("$()", "$()"),
    ("$(A)$(EMPTY)!", "a!"),
    ("", ""),
])
def test_expand_follows_kubernetes_rules(text: str, expected: str) -> None:
    known = {"A": "a", "B": "b", "EMPTY": ""}
    assert expand(text, known) == expected
