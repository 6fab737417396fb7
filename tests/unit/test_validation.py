import copy
from collections.abc import Callable
from typing import Any

import pytest

from kubesvc.api import conversion, errors
from kubesvc.api.defaults import apply_defaults, carry_over
from kubesvc.api.errors import Cause
from kubesvc.api.validation import validate
from kubesvc.api.validation._field import go_json, go_quote

Obj = dict[str, Any]

DNS1123_LABEL = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
                 "or '-', and must start and end with an alphanumeric character (e.g. 'my-name', "
                 " or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
DNS1123_SUBDOMAIN = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                     "characters, '-' or '.', and must start and end with an alphanumeric "
                     "character (e.g. 'example.com', regex used for validation is "
                     "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
DNS1035_LABEL = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                 "start with an alphabetic character, and end with an alphanumeric character "
                 "(e.g. 'my-name',  or 'abc-123', regex used for validation is "
                 "'[a-z]([-a-z0-9]*[a-z0-9])?')")
PORT_RANGE = "must be between 1 and 65535, inclusive"


# --- Objects: the seed's manifests, defaulted as the API server stores them -------------------

def deployment(kind: str = "Deployment") -> Obj:
    return {"apiVersion": "apps/v1", "kind": kind,
            "metadata": {"name": "nginx", "namespace": "default", "labels": {"run": "nginx"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"run": "nginx"}},
                     "template": {"metadata": {"labels": {"run": "nginx"}},
                                  "spec": {"containers": [
                                      {"image": "nginx:alpine", "name": "nginx",
                                       "imagePullPolicy": "IfNotPresent"}]}}}}


def service(**spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "nginx", "namespace": "default", "labels": {"run": "nginx"}},
            "spec": {"selector": {"run": "nginx"},
                     "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}], **spec}}


def pod(**container: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "client", "namespace": "default"},
            "spec": {"containers": [{"name": "client", "image": "nginx:alpine", **container}]}}


def ingress(**path: Any) -> Obj:
    item = {"path": "/", "pathType": "ImplementationSpecific",
            "backend": {"service": {"name": "nginx", "port": {"number": 80}}}, **path}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "ingress", "namespace": "default"},
            "spec": {"rules": [{"host": "yczhang.k8s", "http": {"paths": [item]}}]}}


def obj(api_version: str, kind: str, name: str = "x", namespace: str | None = "default",
        **fields: Any) -> Obj:
    meta: Obj = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **fields}


def defaulted(o: Obj) -> Obj:
    apply_defaults(o)
    return o


def check(o: Obj, old: Obj | None = None) -> list[str]:
    """The causes as `field: message`, after defaulting (and carrying over on update)."""
    o = copy.deepcopy(o)
    if old is not None:
        carry_over(o, old)
    apply_defaults(o)
    return [f"{c.field}: {c.message}" if c.field else c.message for c in validate(o, old)]


def mutated(make: Callable[[], Obj], change: Callable[[Obj], Any]) -> Obj:
    o = make()
    change(o)
    return o


def spec_of(o: Obj) -> Obj:
    spec: Obj = o["spec"]
    return spec


def ctr(o: Obj) -> Obj:
    c: Obj = o["spec"]["containers"][0]
    return c


# --- The seed ---------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [deployment, lambda: deployment("ReplicaSet"), service, pod,
                                  ingress], ids=["deployment", "replicaset", "service", "pod",
                                                 "ingress"])
def test_seed_manifests_are_valid(make: Callable[[], Obj]) -> None:
    assert check(make()) == []


@pytest.mark.parametrize("make", [deployment, service, pod, ingress],
                         ids=["deployment", "service", "pod", "ingress"])
def test_reapplying_the_seed_manifests_is_a_valid_update(make: Callable[[], Obj]) -> None:
    old = defaulted(make())
    if old["kind"] == "Service":
        old["spec"].update(clusterIP="10.96.0.20", clusterIPs=["10.96.0.20"])
    old["metadata"].update(uid="u1", creationTimestamp="2024-01-01T00:00:00Z")
    assert check(make(), old) == []


def test_seed_service_changed_to_load_balancer_is_valid() -> None:
    old = defaulted(service())
    old["spec"].update(clusterIP="10.96.0.20", clusterIPs=["10.96.0.20"])
    assert check(service(type="LoadBalancer"), old) == []
    lb = defaulted(service(type="LoadBalancer"))
    lb["spec"].update(clusterIP="10.96.0.20", clusterIPs=["10.96.0.20"])
    lb["spec"]["ports"][0]["nodePort"] = 31234
    back = copy.deepcopy(lb)
    back["spec"]["type"] = "ClusterIP"
    assert check(back, lb) == []


def test_invalid_message_as_the_api_server_words_it() -> None:
    bad = defaulted(service())
    bad["spec"]["ports"][0]["port"] = 70000
    causes = validate(bad, None)
    assert causes == [Cause("spec.ports[0].port",
                            "Invalid value: 70000: must be between 1 and 65535, inclusive",
                            "FieldValueInvalid")]
    err = errors.invalid("Service", "", "nginx", causes)
    assert err.message == ('Service "nginx" is invalid: spec.ports[0].port: Invalid value: '
                           '70000: must be between 1 and 65535, inclusive')


def test_selector_mismatch_message() -> None:
    d = deployment()
    d["spec"]["template"]["metadata"]["labels"] = {"run": "web", "app": "a"}
    assert check(d) == ['spec.template.metadata.labels: Invalid value: {"app":"a","run":"web"}: '
                        '`selector` does not match template `labels`']


def test_reasons() -> None:
    p = pod(imagePullPolicy="Sometimes", ports=[{"containerPort": 80, "name": "http"},
                                                {"containerPort": 81, "name": "http"}])
    p["spec"]["containers"].append({"name": "client", "image": ""})
    reasons = {c.field: c.reason for c in validate(defaulted(p), None)}
    assert reasons == {
        "spec.containers[0].ports[1].name": "FieldValueDuplicate",
        "spec.containers[0].imagePullPolicy": "FieldValueNotSupported",
        "spec.containers[1].image": "FieldValueRequired",
        "spec.containers[1].name": "FieldValueDuplicate",
    }


# --- Rendering values as Go does --------------------------------------------------------------

def test_go_rendering() -> None:
    assert go_quote('a"b\n\x01é') == '"a\\"b\\n\\x01é"'
    assert go_json({"b": 1, "a": [True, None, "x<y"]}) == '{"a":[true,null,"x\\u003cy"],"b":1}'


# --- Metadata ---------------------------------------------------------------------------------

def test_name_required_unless_generate_name() -> None:
    p = pod()
    del p["metadata"]["name"]
    assert check(p) == ["metadata.name: Required value: name or generateName is required"]
    p["metadata"]["generateName"] = "client-"
    assert check(p) == []
    p["metadata"]["generateName"] = "Client-"
    assert check(p) == [f'metadata.generateName: Invalid value: "Client-": {DNS1123_SUBDOMAIN}']


def test_namespace_names_are_dns1123_labels() -> None:
    ns = obj("v1", "Namespace", "my.ns", namespace=None)
    assert check(ns) == ['metadata.name: Invalid value: "my.ns": must not contain dots']
    ns["metadata"]["name"] = "My_NS"
    assert check(ns) == [f'metadata.name: Invalid value: "My_NS": {DNS1123_LABEL}']
    ns["metadata"]["name"] = "a" * 64
    assert check(ns)[0] == (f'metadata.name: Invalid value: "{"a" * 64}": '
                            "must be no more than 63 characters")


def test_service_names_are_dns1035_labels() -> None:
    s = service()
    s["metadata"]["name"] = "1nginx"
    assert check(s) == [f'metadata.name: Invalid value: "1nginx": {DNS1035_LABEL}']


def test_most_names_are_dns_subdomains() -> None:
    d = deployment()
    d["metadata"]["name"] = "nginx.v2"
    assert check(d) == []
    d["metadata"]["name"] = "Nginx"
    assert check(d) == [f'metadata.name: Invalid value: "Nginx": {DNS1123_SUBDOMAIN}']


def test_labels_and_annotations() -> None:
    p = pod()
    p["metadata"]["labels"] = {"app": "bad value", "bad key!": "x", "example.com/ok": "y"}
    p["metadata"]["annotations"] = {"Example.com/Fine": "x", "no//way": "y"}
    assert check(p) == [
        'metadata.labels: Invalid value: "bad value": a valid label must be an empty string or '
        "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
        "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
        "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        'metadata.labels: Invalid value: "bad key!": name part must consist of alphanumeric '
        "characters, '-', '_' or '.', and must start and end with an alphanumeric character "
        "(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
        "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        'metadata.annotations: Invalid value: "no//way": a valid label key must consist of '
        "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
        "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
        "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and "
        "'/' (e.g. 'example.com/MyName')",
    ]


def test_label_value_too_long() -> None:
    p = pod()
    p["metadata"]["labels"] = {"a": "x" * 64}
    assert check(p) == [f'metadata.labels: Invalid value: "{"x" * 64}": '
                        "must be no more than 63 bytes"]


def test_annotations_total_size() -> None:
    p = pod()
    p["metadata"]["annotations"] = {"big": "x" * (256 * 1024)}
    assert check(p) == ["metadata.annotations: Too long: may not be more than 262144 bytes"]


def test_namespace_forbidden_on_cluster_scoped_kinds() -> None:
    node = obj("v1", "Node", "n1")
    assert check(node) == ["metadata.namespace: Forbidden: not allowed on this type"]


def test_owner_references_and_finalizers() -> None:
    p = pod()
    p["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet"}]
    p["metadata"]["finalizers"] = ["cleanup", "example.com/cleanup"]
    assert check(p) == [
        "metadata.ownerReferences[0].name: Required value: must not be empty",
        "metadata.ownerReferences[0].uid: Required value: must not be empty",
        'metadata.finalizers[0]: Invalid value: "cleanup": name is neither a standard finalizer '
        "name nor is it fully qualified",
    ]


def test_metadata_immutable_on_update() -> None:
    old = defaulted(pod())
    old["metadata"]["uid"] = "u1"
    new = copy.deepcopy(old)
    new["metadata"].update(name="other", namespace="kube-system", uid="u2")
    assert check(new, old) == [
        'metadata.name: Invalid value: "other": field is immutable',
        'metadata.namespace: Invalid value: "kube-system": field is immutable',
        'metadata.uid: Invalid value: "u2": field is immutable',
    ]


def test_update_without_uid_keeps_it() -> None:
    old = defaulted(pod())
    old["metadata"]["uid"] = "u1"
    assert check(pod(), old) == []


def test_wrong_json_types_are_reported_not_raised() -> None:
    s = service()
    s["spec"]["ports"][0]["port"] = "80"
    s["metadata"]["labels"] = ["run"]
    assert check(s) == [
        'metadata.labels: Invalid value: ["run"]: must be of type object',
        'spec.ports[0].port: Invalid value: "80": must be of type integer',
        f"spec.ports[0].port: Invalid value: 0: {PORT_RANGE}",
    ]
    assert validate({"apiVersion": "v1", "kind": "Pod", "metadata": "x", "spec": 3}, None)
    assert validate("nope", None)  # type: ignore[arg-type]


def test_unknown_kinds_get_the_generic_name_check() -> None:
    o = obj("example.com/v1", "Widget", "a/b")
    assert check(o) == ["metadata.name: Invalid value: \"a/b\": may not contain '/'"]


# --- Pods -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "expected"), [
    (lambda p: spec_of(p).update(containers=[]), ["spec.containers: Required value"]),
    (lambda p: ctr(p).update(name="Client"),
     [f'spec.containers[0].name: Invalid value: "Client": {DNS1123_LABEL}']),
    (lambda p: ctr(p).pop("name"), ["spec.containers[0].name: Required value"]),
    (lambda p: ctr(p).update(image=""), ["spec.containers[0].image: Required value"]),
    (lambda p: ctr(p).update(image=" nginx"),
     ['spec.containers[0].image: Invalid value: " nginx": must not have leading or trailing '
      "whitespace"]),
    (lambda p: spec_of(p)["containers"].append({"name": "client", "image": "busybox"}),
     ['spec.containers[1].name: Duplicate value: "client"']),
    (lambda p: ctr(p).update(ports=[{"containerPort": 0}]),
     ["spec.containers[0].ports[0].containerPort: Required value"]),
    (lambda p: ctr(p).update(ports=[{"containerPort": 70000}]),
     [f"spec.containers[0].ports[0].containerPort: Invalid value: 70000: {PORT_RANGE}"]),
    (lambda p: ctr(p).update(ports=[{"containerPort": 80, "hostPort": -1}]),
     [f"spec.containers[0].ports[0].hostPort: Invalid value: -1: {PORT_RANGE}"]),
    (lambda p: ctr(p).update(ports=[{"containerPort": 80, "protocol": "ICMP"}]),
     ['spec.containers[0].ports[0].protocol: Unsupported value: "ICMP": supported values: '
      '"SCTP", "TCP", "UDP"']),
    (lambda p: ctr(p).update(ports=[{"containerPort": 80, "name": "http"},
                                    {"containerPort": 81, "name": "http"}]),
     ['spec.containers[0].ports[1].name: Duplicate value: "http"']),
    (lambda p: ctr(p).update(ports=[{"containerPort": 80, "name": "80"}]),
     ['spec.containers[0].ports[0].name: Invalid value: "80": must contain at least one letter '
      "(a-z)"]),
    (lambda p: ctr(p).update(ports=[{"containerPort": 80, "name": "a-very-long-port-name"}]),
     ['spec.containers[0].ports[0].name: Invalid value: "a-very-long-port-name": must be no '
      "more than 15 characters"]),
    (lambda p: ctr(p).update(imagePullPolicy="Sometimes"),
     ['spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported values: '
      '"Always", "IfNotPresent", "Never"']),
    (lambda p: ctr(p).update(terminationMessagePolicy="Never"),
     ['spec.containers[0].terminationMessagePolicy: Unsupported value: "Never": supported '
      'values: "File", "FallbackToLogsOnError"']),
    (lambda p: spec_of(p).update(restartPolicy="Sometimes"),
     ['spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", '
      '"OnFailure", "Never"']),
    (lambda p: spec_of(p).update(dnsPolicy="Cluster"),
     ['spec.dnsPolicy: Unsupported value: "Cluster": supported values: '
      '"ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"']),
    (lambda p: spec_of(p).update(dnsPolicy="None"),
     ["spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"]),
    (lambda p: spec_of(p).update(dnsPolicy="None", dnsConfig={"nameservers": ["10.96.0.10"]}),
     []),
    (lambda p: spec_of(p).update(terminationGracePeriodSeconds=None), []),  # defaulted
    (lambda p: ctr(p).update(env=[{"name": "A=B"}, {"name": ""}, {"name": "my.env-Name_1"}]),
     ['spec.containers[0].env[0].name: Invalid value: "A=B": a valid environment variable '
      "name must consist only of printable ASCII characters other than '='",
      "spec.containers[0].env[1].name: Required value"]),
    (lambda p: ctr(p).update(env=[{"name": "A", "valueFrom": {}}]),
     ['spec.containers[0].env[0].valueFrom: Invalid value: "": must specify one of: `fieldRef`, '
      "`resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"]),
    (lambda p: ctr(p).update(env=[{"name": "A", "value": "x", "valueFrom": {
        "fieldRef": {"fieldPath": "metadata.name"}}}]),
     ['spec.containers[0].env[0].valueFrom: Invalid value: "": may not be specified when '
      "`value` is not empty"]),
    (lambda p: ctr(p).update(env=[{"name": "A", "valueFrom": {
        "fieldRef": {"fieldPath": "status.phase"}}}]),
     ['spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: '
      '"status.phase": supported values: "metadata.name", "metadata.namespace", "metadata.uid", '
      '"spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.hostIPs", '
      '"status.podIP", "status.podIPs"']),
    (lambda p: ctr(p).update(env=[{"name": "A", "valueFrom": {
        "fieldRef": {"fieldPath": "spec.nodename"}}}]),
     ['spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Invalid value: "spec.nodename": '
      "error converting fieldPath: field label not supported: spec.nodename"]),
    (lambda p: ctr(p).update(env=[{"name": "A", "valueFrom": {
        "fieldRef": {"fieldPath": "metadata.labels['app']"}}}]), []),
    (lambda p: ctr(p).update(env=[{"name": "A", "valueFrom": {
        "secretKeyRef": {"name": "s", "key": "a/b"}}}]),
     ['spec.containers[0].env[0].valueFrom.secretKeyRef.key: Invalid value: "a/b": a valid '
      "config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
      "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"]),
    (lambda p: ctr(p).update(volumeMounts=[{"name": "data", "mountPath": "/data"}]),
     ['spec.containers[0].volumeMounts[0].name: Not found: "data"']),
    (lambda p: (spec_of(p).update(volumes=[{"name": "data", "emptyDir": {}}]),
                ctr(p).update(volumeMounts=[{"name": "data", "mountPath": "/d"},
                                            {"name": "data", "mountPath": "/d"}])),
     ['spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/d": must be unique']),
    (lambda p: spec_of(p).update(volumes=[{"name": "d", "emptyDir": {},
                                           "hostPath": {"path": "/tmp"}}]),
     ["spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type"]),
    (lambda p: spec_of(p).update(volumes=[{"name": "D_1", "emptyDir": {}},
                                          {"name": "d", "configMap": {}}]),
     [f'spec.volumes[0].name: Invalid value: "D_1": {DNS1123_LABEL}',
      "spec.volumes[1].configMap.name: Required value"]),
    (lambda p: spec_of(p).update(volumes=[{"name": "d", "emptyDir": {}},
                                          {"name": "d", "emptyDir": {}}]),
     ['spec.volumes[1].name: Duplicate value: "d"']),
    (lambda p: ctr(p).update(resources={"limits": {"cpu": "100m"}, "requests": {"cpu": "1"}}),
     ['spec.containers[0].resources.requests: Invalid value: "1": must be less than or equal '
      "to cpu limit of 100m"]),
    (lambda p: ctr(p).update(resources={"requests": {"cpu": "lots"}}),
     ['spec.containers[0].resources.requests[cpu]: Invalid value: "lots": quantities must '
      "match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"]),
    (lambda p: ctr(p).update(resources={"requests": {"gpu": "1"}}),
     ['spec.containers[0].resources.requests[gpu]: Invalid value: "gpu": must be a standard '
      "resource for containers"]),
    (lambda p: ctr(p).update(securityContext={"runAsUser": -1}),
     ["spec.containers[0].securityContext.runAsUser: Invalid value: -1: must be between 0 and "
      "2147483647, inclusive"]),
    (lambda p: (spec_of(p).update(hostNetwork=True),
                ctr(p).update(ports=[{"containerPort": 80, "hostPort": 8080}])),
     ["spec.containers[0].ports[0].hostPort: Invalid value: 8080: must match `containerPort` "
      "when `hostNetwork` is true"]),
    (lambda p: spec_of(p)["containers"].append(
        {"name": "b", "image": "busybox", "ports": [{"containerPort": 1, "hostPort": 80}]})
     or ctr(p).update(ports=[{"containerPort": 2, "hostPort": 80}]),
     ['spec.containers[1].ports[0].hostPort: Duplicate value: "TCP//80"']),
    (lambda p: spec_of(p).update(tolerations=[{"operator": "Equal", "value": "x"}]),
     ['spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when `key` '
      'is empty, which means "match all values and all keys"']),
    (lambda p: spec_of(p).update(tolerations=[{"key": "k", "operator": "Exists",
                                               "effect": "Sometimes"}]),
     ['spec.tolerations[0].effect: Unsupported value: "Sometimes": supported values: '
      '"NoSchedule", "PreferNoSchedule", "NoExecute"']),
    (lambda p: spec_of(p).update(activeDeadlineSeconds=0),
     ["spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, "
      "inclusive"]),
    (lambda p: spec_of(p).update(nodeName="Node_1", hostname="a.b"),
     [f'spec.nodeName: Invalid value: "Node_1": {DNS1123_SUBDOMAIN}',
      'spec.hostname: Invalid value: "a.b": must not contain dots']),
    (lambda p: spec_of(p).update(ephemeralContainers=[{"name": "debug", "image": "busybox"}]),
     ["spec.ephemeralContainers: Forbidden: cannot be set on create"]),
    (lambda p: spec_of(p).update(initContainers=[
        {"name": "init", "image": "busybox", "readinessProbe": {"exec": {"command": ["true"]}}},
        {"name": "client", "image": "busybox", "restartPolicy": "OnFailure"}]),
     ["spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers "
      "without restartPolicy=Always",
      'spec.initContainers[1].restartPolicy: Unsupported value: "OnFailure": supported values: '
      '"Always"',
      'spec.initContainers[1].name: Duplicate value: "client"']),
    (lambda p: ctr(p).update(restartPolicy="Always"),
     ["spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers"]),
])
def test_pod_rules(change: Callable[[Obj], Any], expected: list[str]) -> None:
    assert check(mutated(pod, change)) == expected


@pytest.mark.parametrize(("probe", "expected"), [
    ({"httpGet": {"port": 80}}, []),
    ({"httpGet": {"port": "http"}}, []),
    ({}, ["spec.containers[0].livenessProbe: Required value: must specify a handler type"]),
    ({"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}},
     ["spec.containers[0].livenessProbe.tcpSocket: Forbidden: may not specify more than 1 "
      "handler type"]),
    ({"exec": {}}, ["spec.containers[0].livenessProbe.exec.command: Required value"]),
    ({"tcpSocket": {"port": 0}},
     [f"spec.containers[0].livenessProbe.tcpSocket.port: Invalid value: 0: {PORT_RANGE}"]),
    ({"httpGet": {"port": 80, "scheme": "FTP"}},
     ['spec.containers[0].livenessProbe.httpGet.scheme: Unsupported value: "FTP": supported '
      'values: "HTTP", "HTTPS"']),
    ({"tcpSocket": {"port": 80}, "successThreshold": 2},
     ["spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"]),
    ({"tcpSocket": {"port": 80}, "initialDelaySeconds": -1},
     ["spec.containers[0].livenessProbe.initialDelaySeconds: Invalid value: -1: must be "
      "greater than or equal to 0"]),
])
def test_probes(probe: Obj, expected: list[str]) -> None:
    assert check(pod(livenessProbe=probe)) == expected


def test_readiness_probe_may_have_a_success_threshold() -> None:
    assert check(pod(readinessProbe={"tcpSocket": {"port": 80}, "successThreshold": 3})) == []


def stored_pod() -> Obj:
    old = defaulted(pod(ports=[{"containerPort": 80}]))
    old["metadata"]["uid"] = "u1"
    old["spec"]["nodeName"] = "node1"
    return old


def test_pod_update_may_change_the_image() -> None:
    old = stored_pod()
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "nginx:1.25"
    new["spec"]["activeDeadlineSeconds"] = 60
    new["spec"]["tolerations"] = [{"key": "k", "operator": "Exists"}]
    assert check(new, old) == []


def test_pod_update_may_not_change_other_fields() -> None:
    old = stored_pod()
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["ports"][0]["containerPort"] = 81
    causes = check(new, old)
    assert len(causes) == 1
    assert causes[0].startswith(
        "spec: Forbidden: pod updates may not change fields other than "
        "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
        "`spec.tolerations` (only additions to existing tolerations),"
        "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously "
        "negative)\n")
    assert "spec.containers[0].ports[0].containerPort" in causes[0]


def test_pod_update_may_not_add_containers_or_remove_tolerations() -> None:
    old = stored_pod()
    new = copy.deepcopy(old)
    new["spec"]["containers"].append({"name": "b", "image": "busybox"})
    assert check(new, old) == ["spec.containers: Forbidden: pod updates may not add or remove "
                               "containers"]
    old["spec"]["tolerations"] = [{"key": "k", "operator": "Exists"}]
    new = copy.deepcopy(old)
    new["spec"]["tolerations"] = []
    assert check(new, old) == ["spec.tolerations: Forbidden: existing toleration can not be "
                               "modified except its tolerationSeconds"]


def test_pod_update_active_deadline_may_only_shrink() -> None:
    old = stored_pod()
    old["spec"]["activeDeadlineSeconds"] = 60
    new = copy.deepcopy(old)
    new["spec"]["activeDeadlineSeconds"] = 120
    assert check(new, old) == ["spec.activeDeadlineSeconds: Invalid value: 120: must be less "
                               "than or equal to previous value"]


# --- Deployments and ReplicaSets --------------------------------------------------------------

def tspec(d: Obj) -> Obj:
    s: Obj = d["spec"]["template"]["spec"]
    return s


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d["spec"].pop("selector"),
     ["spec.selector: Required value",
      "spec.template.metadata.labels: Invalid value: {\"run\":\"nginx\"}: `selector` does not "
      "match template `labels`"]),
    (lambda d: d["spec"].update(selector={}),
     ["spec.selector: Invalid value: {}: empty selector is invalid for deployment"]),
    (lambda d: d["spec"].update(replicas=-1),
     ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"]),
    (lambda d: d["spec"]["template"]["metadata"].update(labels={}),
     ["spec.template.metadata.labels: Invalid value: {}: `selector` does not match template "
      "`labels`"]),
    (lambda d: d["spec"]["template"].pop("metadata"),
     ["spec.template.metadata.labels: Invalid value: null: `selector` does not match template "
      "`labels`"]),
    (lambda d: d["spec"].update(selector={"matchExpressions": [
        {"key": "run", "operator": "In", "values": ["nginx", "web"]}]}), []),
    (lambda d: d["spec"].update(selector={"matchExpressions": [
        {"key": "run", "operator": "Is", "values": ["nginx"]}]}),
     ['spec.selector.matchExpressions[0].operator: Invalid value: "Is": not a valid selector '
      "operator",
      'spec.selector: Invalid value: {"matchExpressions":[{"key":"run","operator":"Is",'
      '"values":["nginx"]}]}: invalid label selector']),
    (lambda d: d["spec"].update(selector={"matchExpressions": [
        {"key": "run", "operator": "Exists", "values": ["nginx"]}]}),
     ["spec.selector.matchExpressions[0].values: Forbidden: may not be specified when "
      "`operator` is 'Exists' or 'DoesNotExist'",
      'spec.selector: Invalid value: {"matchExpressions":[{"key":"run","operator":"Exists",'
      '"values":["nginx"]}]}: invalid label selector']),
    (lambda d: d["spec"].update(strategy={"rollingUpdate": {"maxSurge": 0,
                                                            "maxUnavailable": 0}}),
     ["spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when "
      "`maxSurge` is 0"]),
    (lambda d: d["spec"].update(strategy={"rollingUpdate": {"maxSurge": "0%",
                                                            "maxUnavailable": "0%"}}),
     ['spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "0%": may not be 0 when '
      "`maxSurge` is 0"]),
    (lambda d: d["spec"].update(strategy={"rollingUpdate": {"maxUnavailable": "110%"}}),
     ['spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "110%": must not be greater '
      "than 100%"]),
    (lambda d: d["spec"].update(strategy={"rollingUpdate": {"maxSurge": "half"}}),
     ['spec.strategy.rollingUpdate.maxSurge: Invalid value: "half": a valid percent string '
      "must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used "
      "for validation is '[0-9]+%')"]),
    (lambda d: d["spec"].update(strategy={"rollingUpdate": {"maxSurge": -1}}),
     ["spec.strategy.rollingUpdate.maxSurge: Invalid value: -1: must be greater than or equal "
      "to 0"]),
    (lambda d: d["spec"].update(strategy={"type": "Recreate", "rollingUpdate": {}}),
     ["spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is "
      "'Recreate'"]),
    (lambda d: d["spec"].update(strategy={"type": "BlueGreen"}),
     ['spec.strategy: Unsupported value: {"Type":"BlueGreen","RollingUpdate":null}: supported '
      'values: "Recreate", "RollingUpdate"']),
    (lambda d: d["spec"].update(minReadySeconds=600),
     ["spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"]),
    (lambda d: d["spec"].update(revisionHistoryLimit=-1),
     ["spec.revisionHistoryLimit: Invalid value: -1: must be greater than or equal to 0"]),
    (lambda d: tspec(d).update(restartPolicy="Never"),
     ['spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: '
      '"Always"']),
    (lambda d: tspec(d).update(activeDeadlineSeconds=10),
     ["spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in "
      "ReplicaSet is not Supported"]),
    (lambda d: tspec(d)["containers"][0].update(image=""),
     ["spec.template.spec.containers[0].image: Required value"]),
    (lambda d: d["spec"]["template"]["metadata"].update(labels={"run": "nginx", "x": "a b"}),
     ["spec.template.labels: Invalid value: \"a b\": a valid label must be an empty string or "
      "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
      "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
      "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]),
])
def test_deployment_rules(change: Callable[[Obj], Any], expected: list[str]) -> None:
    assert check(mutated(deployment, change)) == expected


def test_replica_set_rules() -> None:
    rs = deployment("ReplicaSet")
    rs["spec"].update(replicas=-2, minReadySeconds=-1)
    assert check(rs) == [
        "spec.replicas: Invalid value: -2: must be greater than or equal to 0",
        "spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0",
    ]


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet"])
def test_selector_is_immutable(kind: str) -> None:
    old = defaulted(deployment(kind))
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"matchLabels": {"run": "nginx", "tier": "web"}}
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "web"
    assert check(new, old) == ['spec.selector: Invalid value: {"matchLabels":{"run":"nginx",'
                               '"tier":"web"}}: field is immutable']
    scaled = copy.deepcopy(old)
    scaled["spec"]["replicas"] = 5
    assert check(scaled, old) == []


# --- Services ---------------------------------------------------------------------------------

def port0(s: Obj) -> Obj:
    p: Obj = s["spec"]["ports"][0]
    return p


@pytest.mark.parametrize(("change", "expected"), [
    (lambda s: s["spec"].update(ports=[]), ["spec.ports: Required value"]),
    (lambda s: s["spec"].update(ports=[], clusterIP="None"), []),
    (lambda s: s["spec"].update(ports=[], type="ExternalName", externalName="example.com"), []),
    (lambda s: port0(s).update(port=0), [f"spec.ports[0].port: Invalid value: 0: {PORT_RANGE}"]),
    (lambda s: port0(s).update(targetPort=65536),
     [f"spec.ports[0].targetPort: Invalid value: 65536: {PORT_RANGE}"]),
    (lambda s: port0(s).update(targetPort="http"), []),
    (lambda s: port0(s).update(targetPort="HTTP"),
     ['spec.ports[0].targetPort: Invalid value: "HTTP": must contain only alpha-numeric '
      "characters (a-z, 0-9), and hyphens (-)",
      'spec.ports[0].targetPort: Invalid value: "HTTP": must contain at least one letter '
      "(a-z)"]),
    (lambda s: port0(s).update(protocol="HTTP"),
     ['spec.ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", '
      '"UDP"']),
    (lambda s: s["spec"]["ports"].append({"port": 443}),
     ["spec.ports[0].name: Required value", "spec.ports[1].name: Required value"]),
    (lambda s: s["spec"].update(ports=[{"name": "web", "port": 80}, {"name": "web", "port": 81}]),
     ['spec.ports[1].name: Duplicate value: "web"']),
    (lambda s: s["spec"].update(ports=[{"name": "Web", "port": 80}]),
     [f'spec.ports[0].name: Invalid value: "Web": {DNS1123_LABEL}']),
    (lambda s: s["spec"].update(ports=[{"name": "a", "port": 80}, {"name": "b", "port": 80}]),
     ['spec.ports[1]: Duplicate value: {"Name":"","Protocol":"TCP","AppProtocol":null,'
      '"Port":80,"TargetPort":0,"NodePort":0}']),
    (lambda s: s["spec"].update(ports=[{"name": "a", "port": 53, "protocol": "UDP"},
                                       {"name": "b", "port": 53, "protocol": "TCP"}]), []),
    (lambda s: port0(s).update(nodePort=30080),
     ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]),
    (lambda s: s["spec"].update(type="Magic"),
     ['spec.type: Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", '
      '"LoadBalancer", "NodePort"']),
    (lambda s: s["spec"].update(clusterIP="10.96.0.300"),
     ['spec.clusterIPs[0]: Invalid value: "10.96.0.300": must be a valid IP address, (e.g. '
      "10.9.8.7 or 2001:db8::ffff)"]),
    (lambda s: s["spec"].update(clusterIP="010.96.0.1"),
     ['spec.clusterIPs[0]: Invalid value: "010.96.0.1": must not have leading 0s']),
    (lambda s: s["spec"].update(clusterIP="10.96.0.20", clusterIPs=["10.96.0.21"]),
     ['spec.clusterIPs: Invalid value: ["10.96.0.21"]: first value must match `clusterIP`']),
    (lambda s: s["spec"].update(clusterIP="None", type="NodePort"),
     ["spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort "
      "services"]),
    (lambda s: s["spec"].update(type="ExternalName"),
     ["spec.externalName: Required value"]),
    (lambda s: s["spec"].update(type="ExternalName", externalName="my_db.example.com."),
     [f'spec.externalName: Invalid value: "my_db.example.com": {DNS1123_SUBDOMAIN}']),
    (lambda s: s["spec"].update(type="ExternalName", externalName="db.example.com",
                                clusterIP="10.96.0.5"),
     ["spec.clusterIPs: Forbidden: may not be set for ExternalName services"]),
    (lambda s: s["spec"].update(sessionAffinity="Sticky"),
     ['spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", '
      '"None"']),
    (lambda s: s["spec"].update(sessionAffinity="ClientIP",
                                sessionAffinityConfig={"clientIP": {"timeoutSeconds": 0}}),
     ["spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 0: must be greater "
      "than 0 and less than 86400"]),
    (lambda s: s["spec"].update(externalIPs=["127.0.0.1", "192.0.2.1", "nope"]),
     ['spec.externalIPs[0]: Invalid value: "127.0.0.1": may not be in the loopback range '
      "(127.0.0.0/8, ::1/128)",
      'spec.externalIPs[2]: Invalid value: "nope": must be a valid IP address, (e.g. 10.9.8.7 '
      "or 2001:db8::ffff)"]),
    (lambda s: s["spec"].update(type="LoadBalancer", loadBalancerIP="192.0.2.300"),
     ['spec.loadBalancerIP: Invalid value: "192.0.2.300": must be a valid IP address, (e.g. '
      "10.9.8.7 or 2001:db8::ffff)"]),
    (lambda s: s["spec"].update(loadBalancerSourceRanges=["10.0.0.0/8"]),
     ["spec.LoadBalancerSourceRanges: Forbidden: may only be used when `type` is "
      "'LoadBalancer'"]),
    (lambda s: s["spec"].update(type="LoadBalancer", loadBalancerSourceRanges=["10.0.0.1/8"]),
     ['spec.LoadBalancerSourceRanges[0]: Invalid value: "10.0.0.1/8": must not have bits set '
      "beyond the prefix length"]),
    (lambda s: s["spec"].update(externalTrafficPolicy="Local"),
     ['spec.externalTrafficPolicy: Invalid value: "Local": may only be set for '
      "externally-accessible services"]),
    (lambda s: s["spec"].update(type="NodePort", externalTrafficPolicy="Nearest"),
     ['spec.externalTrafficPolicy: Unsupported value: "Nearest": supported values: "Cluster", '
      '"Local"']),
    (lambda s: s["spec"].update(healthCheckNodePort=30001),
     ["spec.healthCheckNodePort: Invalid value: 30001: may only be set when `type` is "
      "'LoadBalancer' and `externalTrafficPolicy` is 'Local'"]),
    (lambda s: s["spec"].update(allocateLoadBalancerNodePorts=True),
     ["spec.allocateLoadBalancerNodePorts: Forbidden: may only be used when `type` is "
      "'LoadBalancer'"]),
    (lambda s: s["spec"].update(internalTrafficPolicy="Nearby"),
     ['spec.internalTrafficPolicy: Unsupported value: "Nearby": supported values: "Cluster", '
      '"Local"']),
    (lambda s: s["spec"].update(ipFamilyPolicy="TripleStack"),
     ['spec.ipFamilyPolicy: Unsupported value: "TripleStack": supported values: '
      '"PreferDualStack", "RequireDualStack", "SingleStack"']),
    (lambda s: s["spec"].update(selector={"run": "ngi nx"}),
     ['spec.selector: Invalid value: "ngi nx": a valid label must be an empty string or '
      "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
      "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
      "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]),
    (lambda s: port0(s).update(appProtocol="kubernetes.io/h2c"), []),
    (lambda s: s["spec"].update(type="NodePort") or port0(s).update(nodePort=30080), []),
    (lambda s: s["spec"].update(type="LoadBalancer", externalTrafficPolicy="Local"), []),
])
def test_service_rules(change: Callable[[Obj], Any], expected: list[str]) -> None:
    assert check(mutated(service, change)) == expected


def stored_service(**spec: Any) -> Obj:
    old = defaulted(service(**spec))
    old["spec"].update(clusterIP="10.96.0.20", clusterIPs=["10.96.0.20"])
    return old


def test_service_cluster_ip_may_not_change() -> None:
    old = stored_service()
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = "10.96.0.30"
    assert check(new, old) == ['spec.clusterIPs[0]: Invalid value: ["10.96.0.30"]: may not '
                               "change once set"]


def test_service_cluster_ip_omitted_on_update_is_kept() -> None:
    old = stored_service()
    assert check(service(), old) == []
    new = service(clusterIP="")
    assert check(new, old) == []


def test_service_health_check_node_port_is_immutable() -> None:
    old = stored_service(type="LoadBalancer", externalTrafficPolicy="Local")
    old["spec"]["healthCheckNodePort"] = 31000
    new = copy.deepcopy(old)
    new["spec"]["healthCheckNodePort"] = 31001
    assert check(new, old) == ["spec.healthCheckNodePort: Forbidden: field is immutable"]


def test_service_ip_families_may_not_change() -> None:
    old = stored_service()
    new = copy.deepcopy(old)
    new["spec"]["ipFamilies"] = ["IPv6"]
    assert 'spec.ipFamilies[0]: Invalid value: ["IPv6"]: may not change once set' in \
        check(new, old)


def test_service_to_external_name_and_back() -> None:
    old = stored_service()
    new = copy.deepcopy(old)
    new["spec"].update(type="ExternalName", externalName="example.com")
    assert check(new, old) == []


# --- Endpoints and EndpointSlices -------------------------------------------------------------

def endpoints(*subsets: Obj) -> Obj:
    return obj("v1", "Endpoints", "nginx", subsets=list(subsets))


def test_endpoints() -> None:
    ok = {"addresses": [{"ip": "10.244.0.5", "nodeName": "node1"}], "ports": [{"port": 80}]}
    assert check(endpoints(ok)) == []
    assert check(endpoints({"ports": [{"port": 80}]})) == [
        "subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`"]
    bad = {"notReadyAddresses": [{"ip": "127.0.0.1"}, {"ip": "10.1"}],
           "ports": [{"port": 80, "name": "a"}, {"port": 0, "protocol": "QUIC"}]}
    assert check(endpoints(bad)) == [
        'subsets[0].notReadyAddresses[0].ip: Invalid value: "127.0.0.1": may not be in the '
        "loopback range (127.0.0.0/8, ::1/128)",
        'subsets[0].notReadyAddresses[1].ip: Invalid value: "10.1": must be a valid IP address, '
        "(e.g. 10.9.8.7 or 2001:db8::ffff)",
        'subsets[0].notReadyAddresses[1].ip: Invalid value: "10.1": must be a valid IP address',
        "subsets[0].ports[1].name: Required value",
        f"subsets[0].ports[1].port: Invalid value: 0: {PORT_RANGE}",
        'subsets[0].ports[1].protocol: Unsupported value: "QUIC": supported values: "SCTP", '
        '"TCP", "UDP"',
    ]


def slice_(address_type: str = "IPv4", addresses: list[str] | None = None,
           **fields: Any) -> Obj:
    return obj("discovery.k8s.io/v1", "EndpointSlice", "nginx-abc12", addressType=address_type,
               endpoints=[{"addresses": addresses or ["10.244.0.5"],
                           "conditions": {"ready": True}}],
               **({"ports": [{"name": "", "port": 80, "protocol": "TCP"}]} | fields))


def test_endpoint_slices() -> None:
    assert check(slice_()) == []
    assert check(slice_("FQDN", ["db.example.com"])) == []
    assert check(slice_("IP")) == ['addressType: Unsupported value: "IP": supported values: '
                                   '"FQDN", "IPv4", "IPv6"']
    assert check(slice_("")) == ["addressType: Required value"]
    assert check(slice_("IPv4", ["fd00::5"])) == [
        'endpoints[0].addresses[0]: Invalid value: "fd00::5": must be an IPv4 address']
    no_addresses = slice_()
    no_addresses["endpoints"][0]["addresses"] = []
    assert check(no_addresses) == [
        "endpoints[0].addresses: Required value: must contain at least 1 address"]
    ports = slice_(ports=[{"name": "http", "port": 80}, {"name": "http", "protocol": "ICMP"}])
    assert check(ports) == [
        'ports[1].name: Duplicate value: "http"',
        'ports[1].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"']


def test_endpoint_slice_address_type_is_immutable() -> None:
    old = defaulted(slice_())
    new = slice_("IPv6", ["fd00::5"])
    assert check(new, old) == ['addressType: Invalid value: "IPv6": field is immutable']


# --- Ingress and IngressClass -----------------------------------------------------------------

def rule(i: Obj) -> Obj:
    r: Obj = i["spec"]["rules"][0]
    return r


@pytest.mark.parametrize(("change", "expected"), [
    (lambda i: i["spec"].pop("rules"),
     ["spec: Invalid value: null: either `defaultBackend` or `rules` must be specified"]),
    (lambda i: i["spec"].update(rules=[], defaultBackend={
        "service": {"name": "nginx", "port": {"name": "http"}}}), []),
    (lambda i: rule(i).update(host="192.168.1.1"),
     ['spec.rules[0].host: Invalid value: "192.168.1.1": must be a DNS name, not an IP '
      "address"]),
    (lambda i: rule(i).update(host="*.k8s"), []),
    (lambda i: rule(i).update(host="a.*.k8s"),
     ['spec.rules[0].host: Invalid value: "a.*.k8s": a wildcard DNS-1123 subdomain must start '
      "with '*.', followed by a valid DNS subdomain, which must consist of lower case "
      "alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. "
      "'*.example.com', regex used for validation is "
      "'\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]),
    (lambda i: rule(i).update(http={"paths": []}),
     ["spec.rules[0].http.paths: Required value"]),
])
def test_ingress_rules(change: Callable[[Obj], Any], expected: list[str]) -> None:
    assert check(mutated(ingress, change)) == expected


PATH = "spec.rules[0].http.paths[0]"


@pytest.mark.parametrize(("path", "expected"), [
    ({"pathType": "Prefix", "path": "/api"}, []),
    ({"pathType": "Exact", "path": "/api"}, []),
    ({"pathType": None}, [f"{PATH}.pathType: Required value: pathType must be specified"]),
    ({"pathType": "Regex"},
     [f'{PATH}.pathType: Unsupported value: "Regex": supported values: "Exact", '
      '"ImplementationSpecific", "Prefix"']),
    ({"pathType": "Prefix", "path": "api"},
     [f'{PATH}.path: Invalid value: "api": must be an absolute path']),
    ({"pathType": "ImplementationSpecific", "path": "api"},
     [f'{PATH}.path: Invalid value: "api": must be an absolute path']),
    ({"pathType": "ImplementationSpecific", "path": ""}, []),
    ({"pathType": "Prefix", "path": "/a//b"},
     [f"{PATH}.path: Invalid value: \"/a//b\": must not contain '//'"]),
    ({"pathType": "Exact", "path": "/a/.."},
     [f"{PATH}.path: Invalid value: \"/a/..\": cannot end with '/..'"]),
    ({"backend": {"service": {"name": "nginx"}}},
     [f"{PATH}.backend: Required value: port name or number is required"]),
    ({"backend": {"service": {"name": "nginx", "port": {"number": 70000}}}},
     [f"{PATH}.backend.service.port.number: Invalid value: 70000: {PORT_RANGE}"]),
    ({"backend": {"service": {"name": "nginx", "port": {"number": 80, "name": "http"}}}},
     [f'{PATH}.backend: Invalid value: "": cannot set both port name & port number']),
    ({"backend": {"service": {"name": "1nginx", "port": {"number": 80}}}},
     [f'{PATH}.backend.service.name: Invalid value: "1nginx": {DNS1035_LABEL}']),
    ({"backend": {"service": {"port": {"number": 80}}}},
     [f"{PATH}.backend.service.name: Required value"]),
    ({"backend": {}},
     [f'{PATH}.backend: Invalid value: "": resource or service backend is required']),
    ({"backend": {"resource": {"apiGroup": "example.com", "kind": "Bucket", "name": "b"}}}, []),
])
def test_ingress_paths(path: Obj, expected: list[str]) -> None:
    i = ingress(**path)
    if path.get("pathType", "") is None:
        del i["spec"]["rules"][0]["http"]["paths"][0]["pathType"]
    assert check(i) == expected


def test_converted_seed_v1beta1_ingress_is_valid() -> None:
    """The seed's extensions/v1beta1 Ingress: defaulted in its own version, then converted."""
    beta = {"apiVersion": "extensions/v1beta1", "kind": "Ingress",
            "metadata": {"name": "ingress", "namespace": "default"},
            "spec": {"rules": [{"host": "yczhang.k8s", "http": {"paths": [
                {"path": "/", "backend": {"serviceName": "nginx", "servicePort": 80}}]}}]}}
    v1 = conversion.to_version(beta, "networking.k8s.io/v1")
    assert check(v1) == []
    apply_defaults(beta)
    assert beta["spec"]["rules"][0]["http"]["paths"][0]["pathType"] == "ImplementationSpecific"


def test_ingress_tls_and_class() -> None:
    i = ingress()
    i["spec"]["tls"] = [{"hosts": ["yczhang.k8s", "Bad_Host"], "secretName": "Tls"}]
    i["spec"]["ingressClassName"] = "nginx"
    i["metadata"]["annotations"] = {"kubernetes.io/ingress.class": "traefik"}
    assert check(i) == [
        f'spec.tls[0].hosts[1]: Invalid value: "Bad_Host": {DNS1123_SUBDOMAIN}',
        f'spec.tls[0].secretName: Invalid value: "Tls": {DNS1123_SUBDOMAIN}',
        'annotations.kubernetes.io/ingress.class: Invalid value: "traefik": must match '
        "`ingressClassName` when both are specified",
    ]


def ingress_class(**spec: Any) -> Obj:
    return obj("networking.k8s.io/v1", "IngressClass", "nginx", namespace=None,
               spec={"controller": "k8s.io/ingress-nginx", **spec})


def test_ingress_classes() -> None:
    assert check(ingress_class()) == []
    assert check(ingress_class(controller="")) == ["spec.controller: Required value"]
    assert check(ingress_class(controller="nginx")) == [
        'spec.controller: Invalid value: "nginx": must be a domain-prefixed path (such as '
        '"acme.io/foo")']
    assert check(ingress_class(parameters={"kind": "Cfg", "name": "c", "scope": "Namespace"})) \
        == ["spec.parameters.namespace: Required value: `parameters.scope` is set to "
            "'Namespace'"]
    old = defaulted(ingress_class())
    assert check(ingress_class(controller="example.com/other"), old) == [
        'spec.controller: Invalid value: "example.com/other": field is immutable']


# --- ConfigMaps and Secrets -------------------------------------------------------------------

def test_config_maps() -> None:
    cm = obj("v1", "ConfigMap", "cfg", data={"ok.key": "v", "bad/key": "v", "dup": "v"},
             binaryData={"dup": "YQ=="})
    assert check(cm) == [
        'data[bad/key]: Invalid value: "bad/key": a valid config key must consist of '
        "alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or "
        "'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
        'data[dup]: Invalid value: "dup": duplicate of key present in binaryData',
    ]
    assert check(obj("v1", "ConfigMap", "cfg", data={"..": "x"})) == [
        'data[..]: Invalid value: "..": must not be \'..\'']


def test_immutable_config_maps_and_secrets() -> None:
    old = defaulted(obj("v1", "ConfigMap", "cfg", data={"a": "1"}, immutable=True))
    changed = obj("v1", "ConfigMap", "cfg", data={"a": "2"}, immutable=True)
    assert check(changed, old) == ["data: Forbidden: field is immutable when `immutable` is set"]
    unset = obj("v1", "ConfigMap", "cfg", data={"a": "1"})
    assert check(unset, old) == ["immutable: Forbidden: field is immutable when `immutable` is "
                                 "set"]
    labels_only = obj("v1", "ConfigMap", "cfg", data={"a": "1"}, immutable=True)
    labels_only["metadata"]["labels"] = {"x": "y"}
    assert check(labels_only, old) == []
    old_secret = defaulted(obj("v1", "Secret", "s", data={"a": "MQ=="}, immutable=True))
    new_secret = obj("v1", "Secret", "s", data={"a": "Mg=="}, immutable=True)
    assert check(new_secret, old_secret) == [
        "data: Forbidden: field is immutable when `immutable` is set"]


def test_secrets() -> None:
    assert check(obj("v1", "Secret", "s", data={"a": "MQ=="}, stringData={"b": "2"})) == []
    assert check(obj("v1", "Secret", "s", data={"a": "%%%"})) == [
        'data[a]: Invalid value: "%%%": illegal base64 data']
    assert check(obj("v1", "Secret", "tls", type="kubernetes.io/tls", data={"tls.crt": ""})) \
        == ["data[tls.key]: Required value"]
    old = defaulted(obj("v1", "Secret", "s"))
    new = obj("v1", "Secret", "s", type="kubernetes.io/basic-auth", data={"username": ""})
    assert check(new, old) == ['type: Invalid value: "kubernetes.io/basic-auth": field is '
                               "immutable"]


# --- Namespaces, Nodes, Events, Leases --------------------------------------------------------

def test_namespaces() -> None:
    ns = obj("v1", "Namespace", "dev", namespace=None)
    assert check(ns) == []
    ns["spec"] = {"finalizers": ["cleanup"]}
    assert check(ns) == ['spec.finalizers: Invalid value: "cleanup": name is neither a standard '
                         "finalizer name nor is it fully qualified"]
    old = defaulted(obj("v1", "Namespace", "dev", namespace=None))
    renamed = obj("v1", "Namespace", "prod", namespace=None)
    assert check(renamed, old) == ['metadata.name: Invalid value: "prod": field is immutable']


def node(**spec: Any) -> Obj:
    return obj("v1", "Node", "node1", namespace=None, spec=spec,
               status={"capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"}})


def test_nodes() -> None:
    assert check(node(podCIDRs=["10.244.0.0/24"])) == []
    assert check(node(podCIDRs=["10.244.0.1/24"])) == [
        'spec.podCIDRs[0]: Invalid value: "10.244.0.1/24": must not have bits set beyond the '
        "prefix length"]
    taints = [{"key": "k", "effect": "NoSchedule"}, {"key": "k", "value": "v",
                                                     "effect": "NoSchedule"}, {"key": "k"}]
    assert check(node(taints=taints)) == [
        'metadata.taints[1]: Duplicate value: {"Key":"k","Value":"v","Effect":"NoSchedule",'
        '"TimeAdded":null}: taints must be unique by key and effect pair',
        "metadata.taints[2].effect: Required value",
    ]
    bad = node()
    bad["status"]["capacity"]["cpu"] = "-1"
    assert check(bad) == [  # allocatable is defaulted from capacity
        'status.capacity.cpu: Invalid value: "-1": must be greater than or equal to 0',
        'status.allocatable.cpu: Invalid value: "-1": must be greater than or equal to 0']
    old = defaulted(node(podCIDRs=["10.244.0.0/24"], providerID="kubesvc://node1"))
    moved = node(podCIDRs=["10.244.1.0/24"], providerID="kubesvc://node1")
    assert check(moved, old) == ['spec.podCIDRs: Forbidden: node updates may not change podCIDR '
                                 'except from "" to valid']


def test_events() -> None:
    ev = obj("v1", "Event", "client.17a", involvedObject={"kind": "Pod", "name": "client",
                                                         "namespace": "default"},
             reason="Started", message="Started container client", type="Normal")
    assert check(ev) == []
    ev["involvedObject"]["namespace"] = "kube-system"
    assert check(ev) == ['involvedObject.namespace: Invalid value: "kube-system": does not '
                         "match event.namespace"]


def lease(**spec: Any) -> Obj:
    return obj("coordination.k8s.io/v1", "Lease", "node1", namespace="kube-node-lease",
               spec={"holderIdentity": "node1", **spec})


def test_leases() -> None:
    assert check(lease(leaseDurationSeconds=40)) == []
    assert check(lease(leaseDurationSeconds=0, leaseTransitions=-1)) == [
        "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
        "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
    ]
    assert check(lease(preferredHolder="node2")) == [
        "spec.preferredHolder: Forbidden: may only be specified if `strategy` is defined"]


def test_service_accounts() -> None:
    assert check(obj("v1", "ServiceAccount", "default")) == []
    assert check(obj("v1", "ServiceAccount", "Default")) == [
        f'metadata.name: Invalid value: "Default": {DNS1123_SUBDOMAIN}']
