"""The ingress routing model: which Ingresses are served, hosts, paths, backends straight to
the pods, TLS, conflicts and the problems reported per Ingress."""

import base64
from typing import Any

import pytest

from kubesvc.ingress.model import (
    CATCH_ALL,
    ClusterState,
    Configuration,
    Location,
    Server,
    build,
    served,
)
from kubesvc.ingress.tls import default_key_pair

Obj = dict[str, Any]
CONTROLLER = "k8s.io/ingress-nginx"
NGINX_CLASS: Obj = {"metadata": {"name": "nginx", "annotations": {
    "ingressclass.kubernetes.io/is-default-class": "true"}}, "spec": {"controller": CONTROLLER}}
OTHER_CLASS: Obj = {"metadata": {"name": "other"}, "spec": {"controller": "example.com/other"}}


def ingress(name: str, rules: list[Obj] | None = None, *, created: str = "2026-01-01T00:00:00Z",
            annotations: dict[str, str] | None = None, **spec: Any) -> Obj:
    if rules is not None:
        spec["rules"] = rules
    return {"metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}",
                         "creationTimestamp": created, "annotations": annotations or {}},
            "spec": spec}


def rule(host: str, *paths: tuple[str, str, Obj]) -> Obj:
    return {"host": host, "http": {"paths": [
        {"path": p, "pathType": t, "backend": b} for p, t, b in paths]}}


def backend(service: str, port: int | str = 80) -> Obj:
    key = "number" if isinstance(port, int) else "name"
    return {"service": {"name": service, "port": {key: port}}}


def service(name: str, *ports: tuple[str, int], type_: str = "ClusterIP") -> Obj:
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"type": type_, "ports": [{"name": n, "port": p} for n, p in ports]}}


def endpoint_slice(service_name: str, port_name: str, port: int,
                   endpoints: list[tuple[str, bool | None]]) -> Obj:
    return {"metadata": {"name": f"{service_name}-abc", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": "IPv4",
            "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {} if ready is None else
                           {"ready": ready}} for ip, ready in endpoints]}


def tls_secret(name: str, pem: bytes) -> Obj:
    cert, _, key = pem.partition(b"-----BEGIN PRIVATE KEY-----")
    data = {"tls.crt": cert, "tls.key": b"-----BEGIN PRIVATE KEY-----" + key}
    return {"metadata": {"name": name, "namespace": "default"}, "type": "kubernetes.io/tls",
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()}}


WEB = service("web", ("http", 80))
API = service("api", ("", 8080))
SLICES = [endpoint_slice("web", "http", 8080, [("10.244.0.3", True), ("10.244.0.2", None),
                                               ("10.244.0.9", False)]),
          endpoint_slice("api", "", 9000, [("10.244.0.5", True)])]


def configure(*ingresses: Obj, services: list[Obj] | None = None,
              secrets: list[Obj] | None = None, classes: list[Obj] | None = None
              ) -> Configuration:
    state = ClusterState(
        ingresses=list(ingresses), classes=[NGINX_CLASS] if classes is None else classes,
        services={f"default/{s['metadata']['name']}": s for s in (services or [WEB, API])},
        slices=SLICES,
        secrets={f"default/{s['metadata']['name']}": s for s in secrets or []})
    return build(state, "nginx", CONTROLLER)


def server(config: Configuration, hostname: str) -> Server:
    return next(s for s in config.servers if s.hostname == hostname)


def locations(srv: Server) -> dict[str, Location]:
    return {f"{loc.modifier} {loc.path}".strip(): loc for loc in srv.locations}


def problems(config: Configuration) -> list[tuple[str, str]]:
    return [(p.reason, p.message) for p in config.problems]


def test_classes_decide_which_ingresses_are_served() -> None:
    classes = [NGINX_CLASS, OTHER_CLASS]
    assert served(ingress("a", ingressClassName="nginx"), classes, "nginx", CONTROLLER)
    assert not served(ingress("a", ingressClassName="other"), classes, "nginx", CONTROLLER)
    assert not served(ingress("a", ingressClassName="gone"), classes, "nginx", CONTROLLER)
    # No class: served because our IngressClass is the default, as admission would set it.
    assert served(ingress("a"), classes, "nginx", CONTROLLER)
    assert not served(ingress("a"), [OTHER_CLASS], "nginx", CONTROLLER)
    legacy = ingress("a", annotations={"kubernetes.io/ingress.class": "nginx"})
    assert served(legacy, [], "nginx", CONTROLLER)
    other = ingress("a", annotations={"kubernetes.io/ingress.class": "traefik"})
    assert not served(other, classes, "nginx", CONTROLLER)


def test_hosts_paths_and_upstreams_of_ready_pods() -> None:
    config = configure(ingress("site", [
        rule("a.example", ("/", "Prefix", backend("web")),
             ("/api", "Prefix", backend("api", 8080)),
             ("/exact", "Exact", backend("web", "http"))),
        rule("*.b.example", ("/docs", "ImplementationSpecific", backend("web")))]))
    assert [s.hostname for s in config.servers] == [CATCH_ALL, "*.b.example", "a.example"]
    assert {u.name: u.endpoints for u in config.upstreams} == {
        # Ready and unknown-readiness endpoints, with the slice's (target) port.
        "default-web-80": ("10.244.0.2:8080", "10.244.0.3:8080"),
        "default-api-8080": ("10.244.0.5:9000",),
        "default-web-http": ("10.244.0.2:8080", "10.244.0.3:8080"),
    }
    a = locations(server(config, "a.example"))
    assert {k: v.route.upstream for k, v in a.items()} == {
        "/": "default-web-80", "/api/": "default-api-8080", "= /api": "default-api-8080",
        "= /exact": "default-web-http"}
    b = locations(server(config, "*.b.example"))
    assert {k: v.route.upstream for k, v in b.items()} == {"/docs": "default-web-80", "/": ""}
    assert locations(server(config, CATCH_ALL))["/"].route.upstream == ""
    assert config.problems == []


def test_longest_path_first_and_exact_beats_a_prefix() -> None:
    config = configure(
        ingress("old", [rule("h", ("/a", "Prefix", backend("web")))]),
        ingress("new", [rule("h", ("/a", "Exact", backend("api", 8080)),
                             ("/a/b/c", "Prefix", backend("api", 8080)))],
                created="2026-01-02T00:00:00Z"))
    srv = server(config, "h")
    assert [loc.path for loc in srv.locations] == ["/a/b/c/", "/a/b/c", "/a/", "/a", "/"]
    assert locations(srv)["= /a"].route.upstream == "default-api-8080"
    assert locations(srv)["/a/"].route.upstream == "default-web-80"
    assert config.problems == []


def test_a_conflicting_rule_is_reported_and_the_rest_serves() -> None:
    first = ingress("first", [rule("h", ("/", "Prefix", backend("web")))])
    second = ingress("second", [rule("h", ("/", "Prefix", backend("api", 8080)),
                                      ("/other", "Prefix", backend("api", 8080)))],
                     created="2026-01-02T00:00:00Z")
    config = configure(second, first)
    srv = locations(server(config, "h"))
    assert srv["/"].route.upstream == "default-web-80"
    assert srv["/other/"].route.upstream == "default-api-8080"
    assert problems(config) == [("Conflict", 'host "h" and path "/" is already defined in '
                                             'ingress "default/first"')]
    assert config.problems[0].ingress is second


def test_missing_service_and_port_answer_503_and_are_reported() -> None:
    config = configure(ingress("bad", [rule("h", ("/gone", "Prefix", backend("nope")),
                                            ("/port", "Prefix", backend("web", 81)))]))
    assert {u.name: u.endpoints for u in config.upstreams} == {
        "default-nope-80": (), "default-web-81": ()}
    assert problems(config) == [
        ("ServiceNotFound", 'service "default/nope" not found'),
        ("ServicePortNotFound", 'service "default/web" does not have port 81')]


def test_default_backends() -> None:
    catch_all = ingress("fallback", defaultBackend=backend("web"))
    hosts = ingress("hosts", [rule("h", ("/x", "Prefix", backend("web")))],
                    defaultBackend=backend("api", 8080))
    config = configure(catch_all, hosts)
    assert locations(server(config, CATCH_ALL))["/"].route.upstream == "default-web-80"
    assert locations(server(config, "h"))["/"].route.upstream == "default-api-8080"
    second = ingress("again", defaultBackend=backend("api", 8080),
                     created="2026-01-03T00:00:00Z")
    config = configure(catch_all, second)
    assert locations(server(config, CATCH_ALL))["/"].route.upstream == "default-web-80"
    assert problems(config) == [("Conflict", 'the default backend is already defined by '
                                             'ingress "default/fallback"')]


def test_regex_paths_and_rewrite_target() -> None:
    config = configure(
        ingress("rw", [rule("h", ("/app(/|$)(.*)", "ImplementationSpecific", backend("web")),
                            ("/static", "Prefix", backend("api", 8080)))],
                annotations={"nginx.ingress.kubernetes.io/rewrite-target": "/$2"}),
        ingress("bad-regex", [rule("h", ("/(unclosed", "ImplementationSpecific",
                                         backend("web")))],
                annotations={"nginx.ingress.kubernetes.io/use-regex": "true"}))
    srv = locations(server(config, "h"))
    assert set(srv) == {"~* ^/app(/|$)(.*)", "~* ^/static(/|$)", "~* ^/"}
    app = srv["~* ^/app(/|$)(.*)"].route
    assert (app.rewrite_target, app.rewrite_path) == ("/$2", "/app(/|$)(.*)")
    assert problems(config) == [("InvalidPath",
                                 'path "/(unclosed" is not a valid regular expression')]


def test_annotations() -> None:
    config = configure(ingress("a", [rule("h", ("/", "Prefix", backend("web")))], annotations={
        "nginx.ingress.kubernetes.io/backend-protocol": "https",
        "nginx.ingress.kubernetes.io/proxy-body-size": "8m",
        "nginx.ingress.kubernetes.io/ssl-redirect": "false"}))
    route = locations(server(config, "h"))["/"].route
    assert (route.protocol, route.proxy_body_size, route.ssl_redirect) == ("HTTPS", "8m", False)
    config = configure(ingress("a", [rule("h", ("/", "Prefix", backend("web")))], annotations={
        "nginx.ingress.kubernetes.io/backend-protocol": "FCGI",
        "nginx.ingress.kubernetes.io/proxy-body-size": "lots",
        "nginx.ingress.kubernetes.io/ssl-redirect": "maybe"}))
    route = locations(server(config, "h"))["/"].route
    assert (route.protocol, route.proxy_body_size, route.ssl_redirect) == ("HTTP", "", True)
    assert [reason for reason, _ in problems(config)] == ["InvalidAnnotation"] * 3


@pytest.fixture(scope="module")
def pem() -> bytes:
    return default_key_pair().pem


def test_tls_hosts_get_their_certificate_or_the_default(pem: bytes) -> None:
    tls = ingress("tls", [rule("a.example", ("/", "Prefix", backend("web"))),
                          rule("b.example", ("/", "Prefix", backend("web"))),
                          rule("c.example", ("/", "Prefix", backend("web"))),
                          rule("plain.example", ("/", "Prefix", backend("web")))],
                  tls=[{"hosts": ["a.example"], "secretName": "a-cert"},
                       {"hosts": ["b.example"], "secretName": "missing"},
                       {"hosts": ["c.example"], "secretName": "broken"}])
    broken = tls_secret("broken", pem)
    broken["data"]["tls.key"] = base64.b64encode(default_key_pair().pem.partition(
        b"-----END CERTIFICATE-----\n")[2]).decode()
    config = configure(tls, secrets=[tls_secret("a-cert", pem), broken])
    a, b, c = (server(config, h) for h in ("a.example", "b.example", "c.example"))
    assert (a.tls, a.key_pair) == (True, "default_a-cert")
    assert (b.tls, b.key_pair) == (True, None)
    assert (c.tls, c.key_pair) == (True, None)
    assert not server(config, "plain.example").tls
    assert list(config.key_pairs) == ["default_a-cert"]
    assert config.key_pairs["default_a-cert"].pem.startswith(b"-----BEGIN CERTIFICATE-----")
    assert problems(config) == [
        ("SecretNotFound", 'secret "default/missing" not found; using the default certificate'),
        ("InvalidSecret", 'secret "default/broken": tls: private key does not match public '
                          "key; using the default certificate")]


def test_tls_entry_without_hosts_covers_the_names_in_its_certificate(pem: bytes) -> None:
    # The default key pair names ingress.local.
    config = configure(ingress("t", [rule("ingress.local", ("/", "Prefix", backend("web"))),
                                     rule("other", ("/", "Prefix", backend("web")))],
                               tls=[{"secretName": "cert"}]),
                       secrets=[tls_secret("cert", pem)])
    assert server(config, "ingress.local").key_pair == "default_cert"
    assert not server(config, "other").tls


def test_only_served_ingresses_contribute() -> None:
    config = configure(ingress("theirs", [rule("h", ("/", "Prefix", backend("web")))],
                               ingressClassName="other"), classes=[NGINX_CLASS, OTHER_CLASS])
    assert [s.hostname for s in config.servers] == [CATCH_ALL]
    assert config.ingresses == []
    assert config.upstreams == []
