"""The ingress addon's objects, and the URLs `kubesvc service` prints."""

import base64

import pytest

from kubesvc.cli.addons import AddonError, ServiceURL, ingress_objects, service_urls


def test_the_addon_is_ingress_nginx_as_minikube_deploys_it() -> None:
    objects = ingress_objects(api_address="172.30.1.1", api_port=6443, token="secret-token",
                              ca_pem="CA", http_port=8080, https_port=8443,
                              python="/opt/venv/bin/python")
    by_kind = {o["kind"]: o for o in objects}
    assert [o["kind"] for o in objects] == ["Namespace", "IngressClass", "Secret", "Service",
                                            "Deployment"]
    assert {o["metadata"].get("namespace") for o in objects} == {None, "ingress-nginx"}
    klass = by_kind["IngressClass"]
    assert klass["metadata"]["name"] == "nginx"
    assert klass["metadata"]["annotations"] == {
        "ingressclass.kubernetes.io/is-default-class": "true"}
    assert klass["spec"] == {"controller": "k8s.io/ingress-nginx"}
    data = by_kind["Secret"]["data"]
    assert base64.b64decode(data["token"]) == b"secret-token"
    deployment = by_kind["Deployment"]
    assert deployment["metadata"]["name"] == "ingress-nginx-controller"
    pod = deployment["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    assert pod["hostAliases"] == [{"ip": "172.30.1.1", "hostnames": ["kubernetes.default.svc"]}]
    (container,) = pod["containers"]
    assert container["image"] == "registry.k8s.io/ingress-nginx/controller:v1.12.0"
    assert container["command"] == ["/opt/venv/bin/python", "-m", "kubesvc.ingress"]
    assert "--apiserver-host=https://kubernetes.default.svc:6443" in container["args"]
    assert {"--http-port=8080", "--https-port=8443"} <= set(container["args"])
    assert [(p["containerPort"], p["hostPort"]) for p in container["ports"]] == [
        (8080, 8080), (8443, 8443)]
    from_secret = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]
                   if "secretKeyRef" in e["valueFrom"]}
    assert from_secret == {
        "KUBESVC_API_TOKEN": {"name": "ingress-nginx-api-credentials", "key": "token"},
        "KUBESVC_API_CA": {"name": "ingress-nginx-api-credentials", "key": "ca.crt"}}
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert deployment["spec"]["template"]["metadata"]["labels"] == selector
    assert by_kind["Service"]["spec"]["selector"] == selector


def svc(type_: str, ports: list[dict[str, object]], lb: list[str] | None = None
        ) -> dict[str, object]:
    status = {"loadBalancer": {"ingress": [{"ip": ip} for ip in lb or []]}}
    return {"metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": type_, "ports": ports}, "status": status}


def test_node_port_and_load_balancer_urls() -> None:
    ports: list[dict[str, object]] = [{"name": "http", "port": 80, "nodePort": 31000},
                                      {"port": 8443, "nodePort": 31001}]
    assert service_urls(svc("NodePort", ports), "172.30.1.2") == [
        ServiceURL("http/80", "http://172.30.1.2:31000"),
        ServiceURL("8443", "http://172.30.1.2:31001")]
    assert service_urls(svc("LoadBalancer", ports[:1], ["172.30.1.200"]), "172.30.1.2") == [
        ServiceURL("http/80", "http://172.30.1.2:31000"),
        ServiceURL("http/80", "http://172.30.1.200:80")]


def test_a_cluster_ip_service_has_no_url() -> None:
    with pytest.raises(AddonError, match="service default/web has no node port"):
        service_urls(svc("ClusterIP", [{"port": 80}]), "172.30.1.2")
