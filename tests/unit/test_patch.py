"""PATCH bodies: JSON patch, merge patch, strategic merge patch and (managed-field-less) apply.

The kubectl bodies below were captured from kubectl v1.37.1 (`kubectl apply` against a stand-in
server), with only the long last-applied-configuration annotation shortened.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest

from kubesvc.api import resources
from kubesvc.api.errors import ApiError
from kubesvc.api.patch import (
    APPLY_PATCH,
    JSON_PATCH,
    MERGE_PATCH,
    SCHEMAS,
    STRATEGIC_MERGE_PATCH,
    apply_patch,
)

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def patch(original: dict[str, Any], body: Any, content_type: str) -> dict[str, Any]:
    """Apply `body` (JSON-encoded unless already bytes) and check `original` was left alone."""
    before = copy.deepcopy(original)
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    result = apply_patch(original, raw, content_type)
    assert original == before, "apply_patch modified its input"
    assert isinstance(result, dict)
    return result


def smp(original: dict[str, Any], body: Any) -> dict[str, Any]:
    return patch(original, body, STRATEGIC_MERGE_PATCH)


def fails(original: dict[str, Any], body: Any, content_type: str, code: int,
          reason: str) -> ApiError:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(ApiError) as info:
        apply_patch(original, raw, content_type)
    assert (info.value.code, info.value.reason) == (code, reason), info.value.message
    return info.value


def names(items: list[dict[str, Any]], key: str = "name") -> list[Any]:
    return [item[key] for item in items]


def deployment() -> dict[str, Any]:
    """The Deployment kubectl created from its first manifest, as the server stored it."""
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "uid": "uid-web",
                     "resourceVersion": "1",
                     "labels": {"app": "web", "tier": "front"},
                     "annotations": {LAST_APPLIED: "{...v1...}"},
                     "finalizers": ["example.com/a", "example.com/b"]},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "imagePullSecrets": [{"name": "reg1"}],
                    "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["a.local"]}],
                    "tolerations": [{"key": "k1", "operator": "Exists"}],
                    "volumes": [{"name": "data", "emptyDir": {}},
                                {"name": "cfg", "configMap": {"name": "cfg"}}],
                    "initContainers": [{"name": "init", "image": "busybox",
                                        "command": ["sh", "-c", "true"]}],
                    "containers": [
                        {"name": "nginx", "image": "nginx:1.25", "imagePullPolicy": "Always",
                         "ports": [{"containerPort": 80, "name": "http"},
                                   {"containerPort": 443, "name": "https"}],
                         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                         "volumeMounts": [{"name": "data", "mountPath": "/data"},
                                          {"name": "cfg", "mountPath": "/etc/cfg"}]},
                        {"name": "sidecar", "image": "busybox", "args": ["sleep", "3600"]},
                    ],
                },
            },
        },
        "status": {"replicas": 1,
                   "conditions": [{"type": "Available", "status": "True"},
                                  {"type": "Progressing", "status": "True"}]},
    }


# `kubectl apply` of the second manifest onto deployment(): every directive kubectl emits.
KUBECTL_APPLY_DEPLOYMENT = {
    "metadata": {
        "$deleteFromPrimitiveList/finalizers": ["example.com/a"],
        "$setElementOrder/finalizers": ["example.com/b", "example.com/c"],
        "annotations": {LAST_APPLIED: "{...v2...}", "note": "hello"},
        "finalizers": ["example.com/c"],
        "labels": {"tier": None}},
    "spec": {
        "replicas": 3,
        "strategy": {"$retainKeys": ["type"], "rollingUpdate": None, "type": "Recreate"},
        "template": {"spec": {
            "$setElementOrder/containers": [{"name": "nginx"}, {"name": "logger"}],
            "$setElementOrder/hostAliases": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
            "$setElementOrder/imagePullSecrets": [{"name": "reg2"}],
            "$setElementOrder/initContainers": [{"name": "init"}],
            "$setElementOrder/volumes": [{"name": "data"}, {"name": "cfg"}],
            "containers": [
                {"$setElementOrder/env": [{"name": "B"}, {"name": "C"}],
                 "$setElementOrder/ports": [{"containerPort": 8080}, {"containerPort": 443}],
                 "$setElementOrder/volumeMounts": [{"mountPath": "/etc/cfg"}],
                 "env": [{"name": "B", "value": "22"}, {"name": "C", "value": "3"},
                         {"$patch": "delete", "name": "A"}],
                 "image": "nginx:1.27",
                 "imagePullPolicy": None,
                 "name": "nginx",
                 "ports": [{"containerPort": 8080, "name": "http"},
                           {"$patch": "delete", "containerPort": 80}],
                 "volumeMounts": [{"$patch": "delete", "mountPath": "/data"}]},
                {"image": "fluentbit", "name": "logger"},
                {"$patch": "delete", "name": "sidecar"}],
            "hostAliases": [{"hostnames": ["a.local", "b.local"], "ip": "10.0.0.1"},
                            {"hostnames": ["c.local"], "ip": "10.0.0.2"}],
            "imagePullSecrets": [{"name": "reg2"}, {"$patch": "delete", "name": "reg1"}],
            "initContainers": [{"image": "busybox:1.36", "name": "init"}],
            "tolerations": [{"key": "k2", "operator": "Exists"}],
            "volumes": [{"$retainKeys": ["configMap", "name"], "configMap": {"name": "other"},
                         "emptyDir": None, "name": "data"}]}}},
}


def pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "uid": "u1"},
        "spec": {"containers": [{"name": "app", "image": "app:1"}],
                 "nodeName": "n1"},
        "status": {"phase": "Pending",
                   "conditions": [{"type": "PodScheduled", "status": "True"},
                                  {"type": "Ready", "status": "False"}],
                   "podIPs": [{"ip": "10.1.0.5"}],
                   "containerStatuses": [{"name": "app", "ready": False, "restartCount": 0}]},
    }


def service() -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "svc", "namespace": "default", "uid": "u2",
                     "annotations": {LAST_APPLIED: "{...v1...}"}},
        "spec": {"selector": {"app": "web"}, "clusterIP": "10.96.0.10",
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                           {"name": "https", "port": 443, "targetPort": 443, "protocol": "TCP"}]},
    }


def node() -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "n1", "uid": "u3"},
        "spec": {"podCIDR": "10.1.0.0/24", "podCIDRs": ["10.1.0.0/24"],
                 "taints": [{"key": "a", "effect": "NoSchedule"}]},
        "status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.1"},
                                 {"type": "Hostname", "address": "n1"}],
                   "conditions": [{"type": "Ready", "status": "False", "reason": "Starting"},
                                  {"type": "MemoryPressure", "status": "False"}]},
    }


def configmap() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cm", "namespace": "default",
                         "annotations": {LAST_APPLIED: "{...v1...}"}},
            "data": {"a": "1", "b": "2"}}


# ------------------------------------------------------------------------------------------
# Media types


def test_unknown_media_type_is_415() -> None:
    error = fails(deployment(), {}, "application/json", 415, "UnsupportedMediaType")
    assert "application/strategic-merge-patch+json" in error.message
    fails(deployment(), {}, "text/plain", 415, "UnsupportedMediaType")
    fails(deployment(), {}, "application/apply-patch+cbor", 415, "UnsupportedMediaType")


@pytest.mark.parametrize("content_type", [
    "application/merge-patch+json; charset=utf-8",
    "Application/Merge-Patch+JSON",
    " application/merge-patch+json ;charset=UTF-8",
])
def test_media_type_parameters_and_case_are_ignored(content_type: str) -> None:
    assert patch(deployment(), {"spec": {"replicas": 2}}, content_type)["spec"]["replicas"] == 2


@pytest.mark.parametrize("content_type", [JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH,
                                          APPLY_PATCH])
def test_the_result_is_a_new_object(content_type: str) -> None:
    original = deployment()
    bodies: dict[str, Any] = {
        JSON_PATCH: [{"op": "replace", "path": "/spec/template/spec/containers/0/image",
                      "value": "nginx:2"}],
        MERGE_PATCH: {"spec": {"template": {"metadata": {"labels": {"x": "y"}}}}},
        STRATEGIC_MERGE_PATCH: {"spec": {"template": {"spec": {"containers": [
            {"name": "nginx", "image": "nginx:2"}]}}}},
        APPLY_PATCH: {"apiVersion": "apps/v1", "kind": "Deployment",
                      "metadata": {"name": "web", "labels": {"x": "y"}}},
    }
    result = patch(original, bodies[content_type], content_type)
    assert result is not original
    assert result["spec"] is not original["spec"]
    result["spec"]["template"]["spec"]["containers"][0]["image"] = "mutated"
    assert original["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"


# ------------------------------------------------------------------------------------------
# application/json-patch+json


def test_json_patch_operations() -> None:
    result = patch(deployment(), [
        {"op": "test", "path": "/spec/replicas", "value": 1},
        {"op": "replace", "path": "/spec/replicas", "value": 4},
        {"op": "add", "path": "/metadata/labels/extra", "value": "yes"},
        {"op": "remove", "path": "/metadata/labels/tier"},
        {"op": "add", "path": "/spec/template/spec/containers/-",
         "value": {"name": "third", "image": "x"}},
        {"op": "copy", "from": "/metadata/labels/app", "path": "/metadata/labels/copied"},
        {"op": "move", "from": "/spec/template/spec/tolerations",
         "path": "/spec/template/spec/moved"},
        {"op": "add", "path": "/metadata/annotations/example.com~1key", "value": "slash"},
    ], JSON_PATCH)
    assert result["spec"]["replicas"] == 4
    assert result["metadata"]["labels"] == {"app": "web", "extra": "yes", "copied": "web"}
    assert names(result["spec"]["template"]["spec"]["containers"]) == [
        "nginx", "sidecar", "third"]
    assert "tolerations" not in result["spec"]["template"]["spec"]
    assert result["spec"]["template"]["spec"]["moved"] == [{"key": "k1", "operator": "Exists"}]
    assert result["metadata"]["annotations"]["example.com/key"] == "slash"


def test_json_patch_failed_test_is_422_invalid() -> None:
    error = fails(deployment(), [{"op": "test", "path": "/spec/replicas", "value": 7},
                                 {"op": "replace", "path": "/spec/replicas", "value": 9}],
                  JSON_PATCH, 422, "Invalid")
    assert error.message == "the server rejected our request due to an error in our request"
    assert error.causes[0].message == "testing value /spec/replicas failed: test failed"
    assert error.status()["details"]["causes"][0]["field"] == "patch"


@pytest.mark.parametrize(("operation", "detail"), [
    ({"op": "remove", "path": "/spec/nope"},
     'remove operation does not apply: doc is missing path: "/spec/nope": missing value'),
    ({"op": "replace", "path": "/spec/nope", "value": 1},
     'replace operation does not apply: doc is missing path: "/spec/nope": missing value'),
    ({"op": "add", "path": "/spec/nope/deeper", "value": 1},
     'add operation does not apply: doc is missing path: "/spec/nope/deeper": missing value'),
    ({"op": "add", "path": "spec", "value": 1},
     'add operation does not apply: doc is missing path: "spec": missing value'),
    ({"op": "move", "from": "/spec/nope", "path": "/spec/x"},
     'move operation does not apply: doc is missing from path: "/spec/nope": missing value'),
    ({"op": "copy", "from": "/spec/nope", "path": "/spec/x"},
     'copy operation does not apply: doc is missing from path: "/spec/nope": missing value'),
    ({"op": "test", "path": "/spec/nope", "value": 1},
     'test operation does not apply: is missing path: "/spec/nope"'),
    ({"op": "remove", "path": "/spec/template/spec/containers/9"},
     'remove operation does not apply: doc is missing path: '
     '"/spec/template/spec/containers/9": missing value'),
    ({"op": "bogus", "path": "/spec"}, "Unexpected kind: bogus"),
    ({"path": "/spec"}, "Unexpected kind: unknown"),
    ({"op": "add", "value": 1}, "add operation failed to decode path: missing value"),
    ({"op": "move", "path": "/a"}, "move operation failed to decode from: missing value"),
    ({"op": "add", "path": "/spec/x"}, 'add operation does not contain a "value" member'),
])
def test_json_patch_that_does_not_apply_is_422(operation: dict[str, Any], detail: str) -> None:
    error = fails(deployment(), [operation], JSON_PATCH, 422, "Invalid")
    assert error.causes[0].message == detail


def test_json_patch_conflicts_are_422() -> None:
    error = fails(deployment(), [{"op": "move", "from": "/spec", "path": "/spec/inner"}],
                  JSON_PATCH, 422, "Invalid")
    assert "move operation does not apply" in error.causes[0].message


@pytest.mark.parametrize(("body", "words"), [
    (b"[{", "error decoding patch"),
    (b"", "empty"),
    (b"   ", "empty"),
    (b'{"op": "add"}', "JSON array of operations, not a JSON object"),
    (b'"add"', "not a JSON string"),
    (b'["add"]', "operation 0 must be a JSON object"),
    (b'[{"op":"add","path":"/a","value":NaN}]', "NaN"),
    (b"\xff\xfe\xfa", "error decoding patch"),
])
def test_json_patch_bad_bodies_are_400(body: bytes, words: str) -> None:
    error = fails(deployment(), body, JSON_PATCH, 400, "BadRequest")
    assert words in error.message


def test_json_patch_with_too_many_operations_is_413() -> None:
    operations = [{"op": "test", "path": "/kind", "value": "Deployment"}] * 10001
    error = fails(deployment(), operations, JSON_PATCH, 413, "RequestEntityTooLarge")
    assert error.message == ("The allowed maximum operations in a JSON patch is 10000, "
                             "got 10001")


def test_json_patch_replacing_the_object_with_a_non_object_is_422() -> None:
    error = fails(deployment(), [{"op": "replace", "path": "", "value": [1]}], JSON_PATCH,
                  422, "Invalid")
    assert error.message == ('Deployment.apps "web" is invalid: patch: Invalid value: "[1]": '
                             "the patched document is a JSON array, not an object")
    assert error.causes[0].field == "patch"


def test_json_patch_replacing_the_whole_object_keeps_its_type() -> None:
    result = patch(configmap(), [{"op": "replace", "path": "",
                                  "value": {"metadata": {"name": "cm"}, "data": {"z": "1"}}}],
                   JSON_PATCH)
    assert result == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"},
                      "data": {"z": "1"}}


def test_json_patch_removing_type_meta_puts_it_back_and_changing_it_is_422() -> None:
    result = patch(configmap(), [{"op": "remove", "path": "/kind"},
                                 {"op": "remove", "path": "/apiVersion"}], JSON_PATCH)
    assert (result["apiVersion"], result["kind"]) == ("v1", "ConfigMap")
    error = fails(configmap(), [{"op": "replace", "path": "/kind", "value": "Secret"}],
                  JSON_PATCH, 422, "Invalid")
    assert "kind cannot be changed" in error.message


def test_empty_json_patch_changes_nothing() -> None:
    assert patch(deployment(), [], JSON_PATCH) == deployment()


# ------------------------------------------------------------------------------------------
# application/merge-patch+json


def test_merge_patch_merges_maps_deletes_nulls_and_replaces_lists() -> None:
    result = patch(deployment(), {
        "metadata": {"labels": {"tier": None, "new": "x"}, "annotations": None},
        "spec": {"replicas": 2,
                 "template": {"spec": {"containers": [{"name": "only", "image": "i"}]}},
                 "paused": True,
                 "newField": {"a": 1, "gone": None}},
    }, MERGE_PATCH)
    assert result["metadata"]["labels"] == {"app": "web", "new": "x"}
    assert "annotations" not in result["metadata"]
    assert result["spec"]["replicas"] == 2
    assert result["spec"]["paused"] is True
    assert result["spec"]["newField"] == {"a": 1}
    assert result["spec"]["template"]["spec"]["containers"] == [{"name": "only", "image": "i"}]
    assert result["spec"]["template"]["spec"]["volumes"] == deployment()["spec"]["template"][
        "spec"]["volumes"]


def test_merge_patch_replaces_a_scalar_with_an_object() -> None:
    result = patch(configmap(), {"data": {"a": {"x": None, "y": 1}}}, MERGE_PATCH)
    assert result["data"]["a"] == {"y": 1}


def test_merge_patch_with_an_array_is_422_and_with_a_scalar_400() -> None:
    error = fails(configmap(), [1], MERGE_PATCH, 422, "Invalid")
    assert error.message.startswith('ConfigMap "cm" is invalid: patch: Invalid value: "[1]"')
    for body in (b"null", b'"text"', b"3", b"true"):
        error = fails(configmap(), body, MERGE_PATCH, 400, "BadRequest")
        assert error.message.startswith("Invalid JSON Patch")
    fails(configmap(), b"{not json", MERGE_PATCH, 400, "BadRequest")


def test_merge_patch_type_meta() -> None:
    result = patch(configmap(), {"kind": None, "apiVersion": None}, MERGE_PATCH)
    assert (result["apiVersion"], result["kind"]) == ("v1", "ConfigMap")
    fails(configmap(), {"apiVersion": "v2"}, MERGE_PATCH, 422, "Invalid")


# ------------------------------------------------------------------------------------------
# application/strategic-merge-patch+json: what kubectl apply sends


def test_kubectl_apply_example_from_the_brief() -> None:
    original = deployment()
    original["spec"]["template"]["spec"]["containers"] = [
        {"name": "nginx", "image": "nginx:1.25", "imagePullPolicy": "Always",
         "ports": [{"containerPort": 80}]}]
    result = smp(original, {
        "metadata": {"annotations": {LAST_APPLIED: "{...v2...}"}},
        "spec": {"replicas": 3, "template": {"spec": {
            "$setElementOrder/containers": [{"name": "nginx"}],
            "containers": [{"image": "nginx:1.27", "name": "nginx"}]}}}})
    assert result["spec"]["replicas"] == 3
    assert result["metadata"]["annotations"] == {LAST_APPLIED: "{...v2...}"}
    assert result["spec"]["template"]["spec"]["containers"] == [
        {"name": "nginx", "image": "nginx:1.27", "imagePullPolicy": "Always",
         "ports": [{"containerPort": 80}]}]
    assert result["spec"]["template"]["spec"]["volumes"] == original["spec"]["template"][
        "spec"]["volumes"]


def test_kubectl_apply_of_a_changed_deployment() -> None:
    result = smp(deployment(), KUBECTL_APPLY_DEPLOYMENT)
    meta = result["metadata"]
    assert meta["finalizers"] == ["example.com/b", "example.com/c"]
    assert meta["labels"] == {"app": "web"}
    assert meta["annotations"] == {LAST_APPLIED: "{...v2...}", "note": "hello"}
    spec = result["spec"]
    assert spec["replicas"] == 3
    assert spec["strategy"] == {"type": "Recreate"}
    pod_spec = spec["template"]["spec"]
    assert pod_spec == {
        "imagePullSecrets": [{"name": "reg2"}],
        "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["a.local", "b.local"]},
                        {"hostnames": ["c.local"], "ip": "10.0.0.2"}],
        "tolerations": [{"key": "k2", "operator": "Exists"}],
        "volumes": [{"name": "data", "configMap": {"name": "other"}},
                    {"name": "cfg", "configMap": {"name": "cfg"}}],
        "initContainers": [{"name": "init", "image": "busybox:1.36",
                            "command": ["sh", "-c", "true"]}],
        "containers": [
            {"name": "nginx", "image": "nginx:1.27",
             "ports": [{"containerPort": 8080, "name": "http"},
                       {"containerPort": 443, "name": "https"}],
             "env": [{"name": "B", "value": "22"}, {"name": "C", "value": "3"}],
             "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}]},
            {"image": "fluentbit", "name": "logger"},
        ],
    }
    # Untouched parts stay, and no directive reaches the stored object.
    assert result["status"] == deployment()["status"]
    assert spec["selector"] == {"matchLabels": {"app": "web"}}
    assert "$" not in json.dumps(result)


def test_kubectl_apply_keeps_server_side_list_items() -> None:
    # A mutating webhook added a container the manifest does not know about.
    original = deployment()
    original["spec"]["template"]["spec"]["containers"].insert(
        1, {"name": "injected", "image": "proxy"})
    result = smp(original, KUBECTL_APPLY_DEPLOYMENT)
    assert names(result["spec"]["template"]["spec"]["containers"]) == [
        "nginx", "injected", "logger"]


def test_kubectl_apply_of_a_changed_service() -> None:
    result = smp(service(), {
        "metadata": {"annotations": {LAST_APPLIED: "{...v2...}"}},
        "spec": {"$setElementOrder/ports": [{"port": 80}, {"port": 9100}],
                 "ports": [{"port": 80, "targetPort": 9090},
                           {"name": "metrics", "port": 9100},
                           {"$patch": "delete", "port": 443}],
                 "selector": {"app": "web2"}}})
    assert result["spec"] == {
        "selector": {"app": "web2"}, "clusterIP": "10.96.0.10",
        "ports": [{"name": "http", "port": 80, "targetPort": 9090, "protocol": "TCP"},
                  {"name": "metrics", "port": 9100}]}


def test_kubectl_apply_of_a_changed_configmap() -> None:
    result = smp(configmap(), {"data": {"a": None, "b": "20", "c": "3"},
                               "metadata": {"annotations": {LAST_APPLIED: "{...v2...}"}}})
    assert result["data"] == {"b": "20", "c": "3"}


def test_setting_a_field_to_null_deletes_it_and_unknown_nulls_are_ignored() -> None:
    result = smp(deployment(), {"spec": {"template": {"spec": {"containers": [
        {"name": "nginx", "imagePullPolicy": None, "neverThere": None}]}}},
        "metadata": {"neverThere": None}})
    nginx = result["spec"]["template"]["spec"]["containers"][0]
    assert "imagePullPolicy" not in nginx
    assert "neverThere" not in nginx
    assert "neverThere" not in result["metadata"]


def test_nulls_inside_new_values_are_dropped() -> None:
    result = smp(deployment(), {"spec": {"template": {"spec": {
        "securityContext": {"runAsUser": 1000, "fsGroup": None},
        "containers": [{"name": "new", "image": "x", "workingDir": None}]}}}})
    pod_spec = result["spec"]["template"]["spec"]
    assert pod_spec["securityContext"] == {"runAsUser": 1000}
    assert pod_spec["containers"][0] == {"name": "new", "image": "x"}


# ------------------------------------------------------------------------------------------
# Merge key families


def test_containers_merge_by_name() -> None:
    result = smp(deployment(), {"spec": {"template": {"spec": {
        "containers": [{"name": "sidecar", "image": "busybox:2"},
                       {"name": "extra", "image": "e"}],
        "initContainers": [{"name": "init2", "image": "i"}]}}}})
    pod_spec = result["spec"]["template"]["spec"]
    assert [(c["name"], c["image"]) for c in pod_spec["containers"]] == [
        ("nginx", "nginx:1.25"), ("sidecar", "busybox:2"), ("extra", "e")]
    assert pod_spec["containers"][1]["args"] == ["sleep", "3600"]
    assert names(pod_spec["initContainers"]) == ["init2", "init"]


def test_order_of_merged_lists_follows_kubernetes() -> None:
    # Without $setElementOrder, items the patch brings come before the live items they are not
    # next to (mergeSortedSlice); with it, the order is the one given.
    body = {"spec": {"template": {"spec": {"containers": [{"name": "new", "image": "n"}]}}}}
    result = smp(deployment(), body)
    assert names(result["spec"]["template"]["spec"]["containers"]) == ["new", "nginx", "sidecar"]
    body["spec"]["template"]["spec"]["$setElementOrder/containers"] = [
        {"name": "nginx"}, {"name": "sidecar"}, {"name": "new"}]
    result = smp(deployment(), body)
    assert names(result["spec"]["template"]["spec"]["containers"]) == ["nginx", "sidecar", "new"]


def test_container_ports_merge_by_container_port() -> None:
    result = smp(deployment(), {"spec": {"template": {"spec": {"containers": [
        {"name": "nginx", "ports": [{"containerPort": 443, "name": "tls"},
                                    {"containerPort": 9000}]}]}}}})
    ports = result["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert ports == [{"containerPort": 80, "name": "http"},
                     {"containerPort": 443, "name": "tls"}, {"containerPort": 9000}]


def test_env_merges_by_name_and_volume_mounts_by_mount_path() -> None:
    result = smp(deployment(), {"spec": {"template": {"spec": {"containers": [
        {"name": "nginx",
         "env": [{"name": "A", "value": "one"}, {"name": "Z", "value": "26"}],
         "volumeMounts": [{"mountPath": "/data", "readOnly": True},
                          {"mountPath": "/tmp", "name": "tmp"}]}]}}}})
    nginx = result["spec"]["template"]["spec"]["containers"][0]
    assert nginx["env"] == [{"name": "A", "value": "one"}, {"name": "Z", "value": "26"},
                            {"name": "B", "value": "2"}]
    assert nginx["volumeMounts"] == [
        {"name": "data", "mountPath": "/data", "readOnly": True},
        {"mountPath": "/tmp", "name": "tmp"}, {"name": "cfg", "mountPath": "/etc/cfg"}]


def test_volumes_and_image_pull_secrets_merge_by_name() -> None:
    result = smp(deployment(), {"spec": {"template": {"spec": {
        "volumes": [{"name": "cfg", "configMap": {"defaultMode": 420}},
                    {"name": "tmp", "emptyDir": {}}],
        "imagePullSecrets": [{"name": "reg1"}, {"name": "reg2"}]}}}})
    pod_spec = result["spec"]["template"]["spec"]
    assert pod_spec["volumes"] == [{"name": "data", "emptyDir": {}},
                                   {"name": "cfg", "configMap": {"name": "cfg",
                                                                 "defaultMode": 420}},
                                   {"name": "tmp", "emptyDir": {}}]
    assert pod_spec["imagePullSecrets"] == [{"name": "reg1"}, {"name": "reg2"}]


def test_host_aliases_merge_by_ip_and_other_pod_spec_keys() -> None:
    original = deployment()
    original["spec"]["template"]["spec"]["topologySpreadConstraints"] = [
        {"topologyKey": "zone", "maxSkew": 1}]
    original["spec"]["template"]["spec"]["schedulingGates"] = [{"name": "g1"}]
    result = smp(original, {"spec": {"template": {"spec": {
        "hostAliases": [{"ip": "10.0.0.9", "hostnames": ["z"]}],
        "topologySpreadConstraints": [{"topologyKey": "zone", "maxSkew": 2},
                                      {"topologyKey": "host", "maxSkew": 1}],
        "schedulingGates": [{"name": "g2"}]}}}})
    pod_spec = result["spec"]["template"]["spec"]
    assert names(pod_spec["hostAliases"], "ip") == ["10.0.0.9", "10.0.0.1"]
    assert pod_spec["topologySpreadConstraints"] == [{"topologyKey": "zone", "maxSkew": 2},
                                                     {"topologyKey": "host", "maxSkew": 1}]
    assert names(pod_spec["schedulingGates"]) == ["g2", "g1"]


def test_service_ports_merge_by_port() -> None:
    result = smp(service(), {"spec": {"ports": [{"port": 443, "targetPort": 8443},
                                                {"port": 53, "protocol": "UDP"}]}})
    assert result["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
        {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"},
        {"port": 53, "protocol": "UDP"}]


def test_owner_references_merge_by_uid() -> None:
    original = configmap()
    original["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "Pod", "name": "a", "uid": "1"}]
    result = smp(original, {"metadata": {"ownerReferences": [
        {"apiVersion": "v1", "kind": "Pod", "name": "a", "uid": "1", "controller": True},
        {"apiVersion": "v1", "kind": "Pod", "name": "b", "uid": "2"}]}})
    refs = result["metadata"]["ownerReferences"]
    assert names(refs, "uid") == ["1", "2"]
    assert refs[0]["controller"] is True
    result = smp(result, {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": "1"}]}})
    assert names(result["metadata"]["ownerReferences"], "uid") == ["2"]


def test_finalizers_are_a_merged_set() -> None:
    result = smp(deployment(), {"metadata": {"finalizers": ["example.com/b", "example.com/z"]}})
    assert result["metadata"]["finalizers"] == ["example.com/a", "example.com/b",
                                                "example.com/z"]
    result = smp(deployment(), {"metadata": {"finalizers": ["example.com/z"]}})
    assert result["metadata"]["finalizers"] == ["example.com/z", "example.com/a",
                                                "example.com/b"]


def test_conditions_merge_by_type() -> None:
    result = smp(pod(), {"status": {"conditions": [{"type": "Ready", "status": "True"},
                                                   {"type": "Initialized", "status": "True"}],
                                    "podIPs": [{"ip": "fd00::5"}]}})
    assert result["status"]["conditions"] == [
        {"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"},
        {"type": "Initialized", "status": "True"}]
    assert names(result["status"]["podIPs"], "ip") == ["fd00::5", "10.1.0.5"]
    result = smp(deployment(), {"status": {"conditions": [
        {"type": "Available", "status": "False"}]}})
    assert result["status"]["conditions"] == [{"type": "Available", "status": "False"},
                                              {"type": "Progressing", "status": "True"}]


def test_namespace_and_service_conditions_merge_by_type() -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"},
                 "spec": {"finalizers": ["kubernetes"]},
                 "status": {"phase": "Active", "conditions": [{"type": "A", "status": "True"}]}}
    result = smp(namespace, {"spec": {"finalizers": ["other"]},
                             "status": {"conditions": [{"type": "B", "status": "True"}]}})
    assert names(result["status"]["conditions"], "type") == ["B", "A"]
    assert result["spec"]["finalizers"] == ["other"]  # Namespace spec.finalizers is atomic
    svc = service()
    svc["status"] = {"conditions": [{"type": "X", "status": "True"}]}
    result = smp(svc, {"status": {"conditions": [{"type": "Y", "status": "False"}]}})
    assert names(result["status"]["conditions"], "type") == ["Y", "X"]


def test_node_addresses_and_conditions_merge_by_type() -> None:
    result = smp(node(), {
        "spec": {"podCIDRs": ["fd00:1::/64"], "taints": [{"key": "b", "effect": "NoExecute"}]},
        "status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.2"},
                                 {"type": "ExternalIP", "address": "198.51.100.1"}],
                   "conditions": [{"type": "Ready", "status": "True", "reason": None}]}})
    assert result["status"]["addresses"] == [
        {"type": "InternalIP", "address": "192.0.2.2"},
        {"type": "ExternalIP", "address": "198.51.100.1"}, {"type": "Hostname", "address": "n1"}]
    assert result["status"]["conditions"] == [{"type": "Ready", "status": "True"},
                                              {"type": "MemoryPressure", "status": "False"}]
    assert result["spec"]["podCIDRs"] == ["fd00:1::/64", "10.1.0.0/24"]
    assert result["spec"]["taints"] == [{"key": "b", "effect": "NoExecute"}]


def test_service_account_secrets_merge_but_image_pull_secrets_are_replaced() -> None:
    account = {"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": "sa", "namespace": "default"},
               "secrets": [{"name": "s1"}], "imagePullSecrets": [{"name": "p1"}]}
    result = smp(account, {"secrets": [{"name": "s2"}], "imagePullSecrets": [{"name": "p2"}]})
    assert result["secrets"] == [{"name": "s2"}, {"name": "s1"}]
    assert result["imagePullSecrets"] == [{"name": "p2"}]


def test_lists_without_a_strategy_are_replaced() -> None:
    result = smp(deployment(), {"spec": {"template": {"spec": {
        "tolerations": [{"key": "k2", "operator": "Exists", "value": None}],
        "containers": [{"name": "sidecar", "args": ["sleep", "60"]}]}}}})
    pod_spec = result["spec"]["template"]["spec"]
    assert pod_spec["tolerations"] == [{"key": "k2", "operator": "Exists"}]
    assert pod_spec["containers"][1]["args"] == ["sleep", "60"]
    # containerStatuses is atomic even though its items have strategies of their own.
    result = smp(pod(), {"status": {"containerStatuses": [{"name": "app", "ready": True}]}})
    assert result["status"]["containerStatuses"] == [{"name": "app", "ready": True}]


@pytest.mark.parametrize(("original", "body", "path", "expected"), [
    ({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "e"},
      "subsets": [{"addresses": [{"ip": "10.1.0.1"}], "ports": [{"port": 80}]}]},
     {"subsets": [{"addresses": [{"ip": "10.1.0.2"}]}]},
     ("subsets",), [{"addresses": [{"ip": "10.1.0.2"}]}]),
    ({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "s"},
      "addressType": "IPv4", "endpoints": [{"addresses": ["10.1.0.1"]}], "ports": [{"port": 80}]},
     {"endpoints": [{"addresses": ["10.1.0.2"]}]},
     ("endpoints",), [{"addresses": ["10.1.0.2"]}]),
    ({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i"},
      "spec": {"rules": [{"host": "a.example"}]}},
     {"spec": {"rules": [{"host": "b.example"}]}},
     ("spec", "rules"), [{"host": "b.example"}]),
    ({"apiVersion": "networking.k8s.io/v1beta1", "kind": "Ingress", "metadata": {"name": "i"},
      "spec": {"backend": {"serviceName": "a", "servicePort": 80},
               "rules": [{"host": "a.example"}]}},
     {"spec": {"rules": [{"host": "b.example"}]}},
     ("spec", "rules"), [{"host": "b.example"}]),
    ({"apiVersion": "extensions/v1beta1", "kind": "Ingress", "metadata": {"name": "i"},
      "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}},
     {"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.2"}]}}},
     ("status", "loadBalancer", "ingress"), [{"ip": "192.0.2.2"}]),
    ({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "c"},
      "spec": {"controller": "x/y"}},
     {"spec": {"parameters": {"kind": "K", "name": "n"}}},
     ("spec",), {"controller": "x/y", "parameters": {"kind": "K", "name": "n"}}),
    ({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
      "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}},
     {"spec": {"holderIdentity": "b"}},
     ("spec",), {"holderIdentity": "b", "leaseDurationSeconds": 15}),
    ({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
      "data": {"a": "MQ==", "b": "Mg=="}},
     {"data": {"a": None}, "stringData": {"c": "3"}},
     ("data",), {"b": "Mg=="}),
    ({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "ev"}, "count": 1,
      "involvedObject": {"kind": "Pod", "name": "p"}},
     {"count": 2, "involvedObject": {"uid": "u"}},
     ("involvedObject",), {"kind": "Pod", "name": "p", "uid": "u"}),
])
def test_every_served_kind_patches(original: dict[str, Any], body: dict[str, Any],
                                   path: tuple[str, ...], expected: Any) -> None:
    value: Any = smp(original, body)
    for key in path:
        value = value[key]
    assert value == expected


def test_every_served_kind_has_a_strategy_table() -> None:
    for res in resources.RESOURCES:
        assert (res.group, res.kind) in SCHEMAS, res


def test_kind_without_a_strategy_table_is_415() -> None:
    custom = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    error = fails(custom, {"spec": {}}, STRATEGIC_MERGE_PATCH, 415, "UnsupportedMediaType")
    assert "application/merge-patch+json" in error.message
    # Group matters: apps/v1 has no Pod.
    fails({"apiVersion": "apps/v1", "kind": "Pod"}, {}, STRATEGIC_MERGE_PATCH, 415,
          "UnsupportedMediaType")


# ------------------------------------------------------------------------------------------
# Directives


def test_patch_replace_in_a_map() -> None:
    result = smp(deployment(), {"spec": {"template": {"metadata": {"labels": {
        "$patch": "replace", "only": "this", "gone": None}}}}})
    assert result["spec"]["template"]["metadata"]["labels"] == {"only": "this"}


def test_patch_delete_in_a_map() -> None:
    result = smp(deployment(), {"spec": {"strategy": {"$patch": "delete"}}})
    assert result["spec"]["strategy"] == {}


def test_patch_merge_in_a_map_is_the_default() -> None:
    result = smp(deployment(), {"metadata": {"labels": {"$patch": "merge", "x": "y"}}})
    assert result["metadata"]["labels"] == {"app": "web", "tier": "front", "x": "y"}


def test_patch_replace_on_the_whole_object() -> None:
    result = smp(configmap(), {"$patch": "replace", "metadata": {"name": "cm"},
                               "data": {"z": "26"}})
    assert result == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"},
                      "data": {"z": "26"}}


def test_patch_replace_in_a_list() -> None:
    result = smp(deployment(), {"spec": {"template": {"spec": {"containers": [
        {"name": "solo", "image": "s"}, {"$patch": "replace"}]}}}})
    assert result["spec"]["template"]["spec"]["containers"] == [{"name": "solo", "image": "s"}]


def test_patch_delete_in_a_list() -> None:
    result = smp(deployment(), {"spec": {"template": {"spec": {"containers": [
        {"$patch": "delete", "name": "sidecar"}, {"$patch": "delete", "name": "absent"}]}}}})
    assert names(result["spec"]["template"]["spec"]["containers"]) == ["nginx"]


def test_patch_merge_in_a_list_item_merges_it() -> None:
    result = smp(deployment(), {"spec": {"template": {"spec": {"containers": [
        {"$patch": "merge", "name": "sidecar", "image": "busybox:2"}]}}}})
    sidecar = result["spec"]["template"]["spec"]["containers"][1]
    assert sidecar == {"name": "sidecar", "image": "busybox:2", "args": ["sleep", "3600"]}


def test_delete_directives_on_a_list_the_object_lacks_add_nothing() -> None:
    result = smp(pod(), {"spec": {"initContainers": [{"$patch": "delete", "name": "x"}],
                                  "volumes": [{"$patch": "delete", "name": "v"},
                                              {"name": "w", "emptyDir": {}}]}})
    assert result["spec"]["initContainers"] == []  # omitted once typed, as Kubernetes does
    assert result["spec"]["volumes"] == [{"name": "w", "emptyDir": {}}]


@pytest.mark.parametrize("body", [
    {"metadata": {"labels": {"$patch": "explode"}}},
    {"spec": {"template": {"spec": {"containers": [{"$patch": "explode", "name": "nginx"}]}}}},
])
def test_unknown_patch_directive_is_400(body: dict[str, Any]) -> None:
    error = fails(deployment(), body, STRATEGIC_MERGE_PATCH, 400, "BadRequest")
    assert "unknown patch type: explode in map:" in error.message


def test_set_element_order_reorders_without_other_changes() -> None:
    result = smp(deployment(), {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "nginx"}]}}}})
    containers = result["spec"]["template"]["spec"]["containers"]
    assert names(containers) == ["sidecar", "nginx"]
    assert containers == list(reversed(deployment()["spec"]["template"]["spec"]["containers"]))


def test_set_element_order_with_new_items() -> None:
    result = smp(deployment(), {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "first"}, {"name": "nginx"},
                                        {"name": "sidecar"}],
        "containers": [{"name": "first", "image": "f"}]}}}})
    assert names(result["spec"]["template"]["spec"]["containers"]) == [
        "first", "nginx", "sidecar"]


def test_set_element_order_for_a_list_of_scalars() -> None:
    result = smp(deployment(), {"metadata": {
        "$setElementOrder/finalizers": ["example.com/c", "example.com/b", "example.com/a"],
        "finalizers": ["example.com/c"]}})
    assert result["metadata"]["finalizers"] == ["example.com/c", "example.com/b",
                                                "example.com/a"]


def test_set_element_order_for_a_list_the_object_lacks() -> None:
    result = smp(pod(), {"spec": {"$setElementOrder/hostAliases": [{"ip": "a"}, {"ip": "b"}],
                                  "hostAliases": [{"ip": "a"}, {"ip": "b"}]}})
    assert names(result["spec"]["hostAliases"], "ip") == ["a", "b"]


@pytest.mark.parametrize(("body", "words"), [
    ({"$setElementOrder/containers": [{"name": "nginx"}],
      "containers": [{"name": "other", "image": "o"}]}, "doesn't match $setElementOrder list"),
    ({"$setElementOrder/containers": {"name": "nginx"}},
     "expected a []interface {}, but received a map[string]interface {}"),
    ({"$setElementOrderX/containers": [{"name": "nginx"}]},
     "invalid patch format of setElementOrder list"),
    ({"$setElementOrder/containers": [{"image": "nginx"}],
      "containers": [{"name": "nginx"}]}, "does not contain declared merge key: name"),
])
def test_bad_set_element_order_is_400(body: dict[str, Any], words: str) -> None:
    error = fails(deployment(), {"spec": {"template": {"spec": body}}}, STRATEGIC_MERGE_PATCH,
                  400, "BadRequest")
    assert words in error.message


def test_delete_from_primitive_list() -> None:
    result = smp(deployment(), {"metadata": {
        "$deleteFromPrimitiveList/finalizers": ["example.com/a", "example.com/never"]}})
    assert result["metadata"]["finalizers"] == ["example.com/b"]
    node_result = smp(node(), {"spec": {"$deleteFromPrimitiveList/podCIDRs": ["10.1.0.0/24"]}})
    assert node_result["spec"]["podCIDRs"] == []


def test_delete_from_primitive_list_of_an_absent_list_is_a_no_op() -> None:
    result = smp(pod(), {"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}})
    assert "finalizers" not in result["metadata"]


def test_bad_delete_from_primitive_list_key_is_400() -> None:
    error = fails(deployment(), {"metadata": {"$deleteFromPrimitiveListfinalizers": ["x"]}},
                  STRATEGIC_MERGE_PATCH, 400, "BadRequest")
    assert error.message == "invalid patch format of primitive list"


def test_retain_keys_clears_the_other_keys() -> None:
    result = smp(deployment(), {"spec": {"strategy": {"$retainKeys": ["type"],
                                                      "type": "Recreate"}}})
    assert result["spec"]["strategy"] == {"type": "Recreate"}
    result = smp(deployment(), {"spec": {"template": {"spec": {"volumes": [
        {"$retainKeys": ["name", "hostPath"], "name": "data",
         "hostPath": {"path": "/srv"}}]}}}})
    assert result["spec"]["template"]["spec"]["volumes"][0] == {
        "name": "data", "hostPath": {"path": "/srv"}}


@pytest.mark.parametrize("strategy", [
    {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 2}},
    {"$retainKeys": "type", "type": "Recreate"},
    {"$retainKeys": [{"type": 1}]},
])
def test_bad_retain_keys_is_400(strategy: dict[str, Any]) -> None:
    error = fails(deployment(), {"spec": {"strategy": strategy}}, STRATEGIC_MERGE_PATCH,
                  400, "BadRequest")
    assert error.message == "invalid patch format of retainKeys"


def test_directives_never_reach_the_stored_object() -> None:
    result = smp(deployment(), {"spec": {"template": {"spec": {
        "tolerations": [{"$patch": "delete", "key": "k1"}],
        "containers": [{"name": "new", "image": "n",
                        "$setElementOrder/env": [{"name": "X"}],
                        "env": [{"name": "X", "value": "1"}]}]}}}})
    assert "$" not in json.dumps(result)
    assert result["spec"]["template"]["spec"]["containers"][0] == {
        "name": "new", "image": "n", "env": [{"name": "X", "value": "1"}]}


# ------------------------------------------------------------------------------------------
# Malformed strategic merge patches


def test_list_item_without_its_merge_key_is_400() -> None:
    error = fails(deployment(), {"spec": {"template": {"spec": {"containers": [
        {"image": "x"}]}}}}, STRATEGIC_MERGE_PATCH, 400, "BadRequest")
    assert error.message == "map: map[image:x] does not contain declared merge key: name"


def test_lists_of_lists_are_422() -> None:
    original = deployment()
    original["metadata"]["finalizers"] = [["a"]]
    error = fails(original, {"metadata": {"finalizers": [["b"]]}}, STRATEGIC_MERGE_PATCH,
                  422, "Invalid")
    assert error.causes[0].message == "lists of lists are not supported"


def test_mixed_list_item_types_are_400() -> None:
    error = fails(deployment(), {"spec": {"template": {"spec": {"containers": ["nginx"]}}}},
                  STRATEGIC_MERGE_PATCH, 400, "BadRequest")
    assert "list element types are not identical" in error.message


def test_a_value_of_another_type_replaces_the_original() -> None:
    result = smp(deployment(), {"spec": {"template": {"spec": {"containers": "none"}}}})
    assert result["spec"]["template"]["spec"]["containers"] == "none"


@pytest.mark.parametrize(("body", "words"), [
    (b"{", "error decoding patch"),
    (b"", "empty"),
    (b"[]", "not a JSON array"),
    (b'"x"', "not a JSON string"),
    (b'{"spec": {"replicas": Infinity}}', "Infinity"),
])
def test_bad_strategic_merge_patch_bodies_are_400(body: bytes, words: str) -> None:
    error = fails(deployment(), body, STRATEGIC_MERGE_PATCH, 400, "BadRequest")
    assert words in error.message


def test_null_strategic_merge_patch_changes_nothing() -> None:
    assert smp(deployment(), b"null") == deployment()


def test_strategic_merge_patch_keeps_the_type_meta() -> None:
    result = smp(configmap(), {"kind": "Secret", "apiVersion": None})
    assert (result["apiVersion"], result["kind"]) == ("v1", "ConfigMap")


def test_deep_nesting_is_400() -> None:
    body = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    for content_type in (STRATEGIC_MERGE_PATCH, MERGE_PATCH, APPLY_PATCH):
        fails(deployment(), body, content_type, 400, "BadRequest")


# ------------------------------------------------------------------------------------------
# application/apply-patch+yaml


def test_apply_yaml_merges_onto_the_object() -> None:
    body = b"""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    added: "yes"
spec:
  replicas: 5
  template:
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        env:
        - name: B
          value: "two"
"""
    result = patch(deployment(), body, APPLY_PATCH)
    assert result["spec"]["replicas"] == 5
    assert result["metadata"]["labels"] == {"app": "web", "tier": "front", "added": "yes"}
    containers = result["spec"]["template"]["spec"]["containers"]
    assert names(containers) == ["nginx", "sidecar"]
    assert containers[0]["image"] == "nginx:1.27"
    assert containers[0]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "two"}]
    assert containers[0]["ports"] == deployment()["spec"]["template"]["spec"]["containers"][0][
        "ports"]
    assert result["status"] == deployment()["status"]


def test_apply_accepts_what_kubectl_server_side_sends() -> None:
    # kubectl apply --server-side sends JSON; then a second apply of the last-applied annotation.
    body = json.dumps({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "svc", "namespace": "default"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 9090},
                           {"name": "metrics", "port": 9100}],
                 "selector": {"app": "web2"}}}).encode()
    result = patch(service(), body, APPLY_PATCH + "; charset=utf-8")
    assert result["spec"]["selector"] == {"app": "web2"}
    assert [(p["port"], p.get("targetPort")) for p in result["spec"]["ports"]] == [
        (80, 9090), (9100, None), (443, 443)]
    assert result["spec"]["clusterIP"] == "10.96.0.10"
    result = patch(result, {"apiVersion": "v1", "kind": "Service",
                            "metadata": {"annotations": {LAST_APPLIED: "{...}"},
                                         "name": "svc", "namespace": "default"}}, APPLY_PATCH)
    assert result["metadata"]["annotations"] == {LAST_APPLIED: "{...}"}
    assert result["spec"]["selector"] == {"app": "web2"}


def test_apply_onto_nothing_gives_the_applied_configuration() -> None:
    body = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, namespace: default}\n" \
           b"data: {when: 2024-01-01, flag: 'on', n: '1'}\n"
    result = patch({}, body, APPLY_PATCH)
    assert result == {"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "cm", "namespace": "default"},
                      "data": {"when": "2024-01-01", "flag": "on", "n": "1"}}


def test_apply_null_deletes_and_unknown_kinds_still_apply() -> None:
    result = patch(configmap(), b"apiVersion: v1\nkind: ConfigMap\ndata: {a: null, c: '3'}\n",
                   APPLY_PATCH)
    assert result["data"] == {"b": "2", "c": "3"}
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
              "spec": {"size": 1, "tags": ["a"]}}
    result = patch(widget, b"apiVersion: example.com/v1\nkind: Widget\nspec: {tags: [b]}\n",
                   APPLY_PATCH)
    assert result["spec"] == {"size": 1, "tags": ["b"]}


@pytest.mark.parametrize(("body", "message"), [
    (b"apiVersion: apps/v1beta1\nkind: Deployment\n",
     "Incorrect version specified in apply patch. Specified patch version: apps/v1beta1, "
     "expected: apps/v1"),
    (b"kind: Deployment\n",
     "Incorrect version specified in apply patch. Specified patch version: , expected: apps/v1"),
    (b"",
     "Incorrect version specified in apply patch. Specified patch version: , expected: apps/v1"),
    (b"apiVersion: apps/v1\nkind: ReplicaSet\n",
     "Incorrect kind specified in apply patch. Specified patch kind: ReplicaSet, "
     "expected: Deployment"),
    (b"apiVersion: apps/v1\nkind: Deployment\nmetadata: {managedFields: []}\n",
     "metadata.managedFields must be nil"),
])
def test_apply_rejections_are_400(body: bytes, message: str) -> None:
    assert fails(deployment(), body, APPLY_PATCH, 400, "BadRequest").message == message


@pytest.mark.parametrize(("body", "words"), [
    (b"apiVersion: [unclosed\n", "error decoding YAML"),
    (b"- a\n- b\n", "must be an object, not a array"),
    (b"just text\n", "must be an object, not a string"),
    (b"a: 1\n---\nb: 2\n", "error decoding YAML"),
    (b"apiVersion: v1\nx: !!binary aGk=\n", "cannot be represented in JSON"),
    (b"apiVersion: v1\nx: .nan\n", "unsupported value"),
    (b"\xff\xfe\x00\xd8", "error decoding YAML"),
])
def test_bad_apply_bodies_are_400(body: bytes, words: str) -> None:
    error = fails(configmap(), body, APPLY_PATCH, 400, "BadRequest")
    assert words in error.message


def test_apply_alias_bomb_is_400() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    body = ("\n".join(lines) + "\n").encode()
    error = fails({}, body, APPLY_PATCH, 400, "BadRequest")
    assert "aliases" in error.message


def test_apply_keys_that_are_not_strings_become_strings() -> None:
    result = patch(configmap(), b"apiVersion: v1\ndata: {1: one, true: yes}\n", APPLY_PATCH)
    assert result["data"] == {"a": "1", "b": "2", "1": "one", "true": True}


# ------------------------------------------------------------------------------------------
# Whatever arrives, the answer is a dict or an ApiError


def _random_value(rng: random.Random, depth: int) -> Any:
    keys = ["name", "image", "containers", "env", "ports", "containerPort", "finalizers",
            "$patch", "$retainKeys", "$setElementOrder/containers", "$setElementOrder/env",
            "$deleteFromPrimitiveList/finalizers", "metadata", "spec", "template", "volumes",
            "conditions", "type", "labels"]
    scalars: list[Any] = [None, True, 1, 1.5, "nginx", "delete", "replace", "merge", "x"]
    if depth <= 0 or rng.random() < 0.3:
        return rng.choice(scalars)
    if rng.random() < 0.5:
        return [_random_value(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(keys): _random_value(rng, depth - 1) for _ in range(rng.randint(0, 4))}


@pytest.mark.parametrize("content_type", [JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH,
                                          APPLY_PATCH])
def test_random_bodies_give_a_dict_or_an_api_error(content_type: str) -> None:
    rng = random.Random(f"patch-{content_type}")
    for _ in range(400):
        body = _random_value(rng, 6)
        if content_type == JSON_PATCH and rng.random() < 0.7:
            body = [{"op": rng.choice(["add", "remove", "replace", "move", "copy", "test"]),
                     "path": rng.choice(["", "/spec", "/metadata/labels/x", "/spec/x/y",
                                         "/spec/template/spec/containers/0", "/a~1b", "x"]),
                     "from": rng.choice(["/spec", "/metadata", "/nope"]),
                     "value": _random_value(rng, 3)} for _ in range(rng.randint(1, 3))]
        elif content_type == APPLY_PATCH and isinstance(body, dict) and rng.random() < 0.7:
            body = {**body, "apiVersion": "apps/v1", "kind": "Deployment"}
        original = deployment()
        try:
            result = apply_patch(original, json.dumps(body).encode(), content_type)
        except ApiError as error:
            assert error.code in (400, 413, 415, 422)
            continue
        assert isinstance(result, dict)
        assert original == deployment()
