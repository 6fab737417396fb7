"""Ingress version conversion: the seed's manifest, both directions, every backend form."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubesvc.api.conversion import INGRESS_VERSIONS, to_version

BETA_VERSIONS = ("extensions/v1beta1", "networking.k8s.io/v1beta1")

# The seed's Ingress, exactly as the tutorial applies it.
SEED: dict[str, Any] = {
    "apiVersion": "extensions/v1beta1",
    "kind": "Ingress",
    "metadata": {"name": "ingress"},
    "spec": {"rules": [{"host": "yczhang.k8s", "http": {"paths": [
        {"path": "/", "backend": {"serviceName": "nginx", "servicePort": 80}},
    ]}}]},
}

SEED_V1: dict[str, Any] = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "Ingress",
    "metadata": {"name": "ingress"},
    "spec": {"rules": [{"host": "yczhang.k8s", "http": {"paths": [
        {"path": "/", "pathType": "ImplementationSpecific",
         "backend": {"service": {"name": "nginx", "port": {"number": 80}}}},
    ]}}]},
}

# A v1 Ingress using every field the conversion touches.
FULL_V1: dict[str, Any] = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "Ingress",
    "metadata": {"name": "web", "namespace": "default", "annotations": {"a": "b"}},
    "spec": {
        "ingressClassName": "nginx",
        "defaultBackend": {"service": {"name": "fallback", "port": {"name": "http"}}},
        "tls": [{"hosts": ["a.example"], "secretName": "a-tls"}],
        "rules": [
            {"host": "a.example", "http": {"paths": [
                {"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": "web", "port": {"number": 8080}}}},
                {"path": "/static", "pathType": "Exact",
                 "backend": {"resource": {"apiGroup": "k8s.example.com", "kind": "Bucket",
                                          "name": "static"}}},
            ]}},
            {"host": "b.example"},
        ],
    },
    "status": {"loadBalancer": {"ingress": [{"ip": "192.168.49.2"}]}},
}


def test_seed_converts_up_to_v1() -> None:
    assert to_version(SEED, "networking.k8s.io/v1") == SEED_V1


def test_seed_round_trip_keeps_everything_and_defaults_path_type() -> None:
    back = to_version(to_version(SEED, "networking.k8s.io/v1"), "extensions/v1beta1")
    expected = copy.deepcopy(SEED)
    expected["spec"]["rules"][0]["http"]["paths"][0]["pathType"] = "ImplementationSpecific"
    assert back == expected


@pytest.mark.parametrize("version", BETA_VERSIONS)
def test_v1_round_trip_through_beta_is_lossless(version: str) -> None:
    beta = to_version(FULL_V1, version)
    assert beta["apiVersion"] == version
    assert to_version(beta, "networking.k8s.io/v1") == FULL_V1


def test_v1_to_beta_shape() -> None:
    beta = to_version(FULL_V1, "networking.k8s.io/v1beta1")
    spec = beta["spec"]
    assert "defaultBackend" not in spec
    assert spec["backend"] == {"serviceName": "fallback", "servicePort": "http"}
    assert spec["ingressClassName"] == "nginx"
    paths = spec["rules"][0]["http"]["paths"]
    assert paths[0] == {"path": "/", "pathType": "Prefix",
                        "backend": {"serviceName": "web", "servicePort": 8080}}
    assert paths[1]["backend"] == {"resource": {"apiGroup": "k8s.example.com", "kind": "Bucket",
                                                "name": "static"}}
    assert spec["rules"][1] == {"host": "b.example"}
    assert beta["status"] == FULL_V1["status"]


@pytest.mark.parametrize(("service_port", "port"), [
    (80, {"number": 80}),
    ("http", {"name": "http"}),
    ("", {}),  # a string port, even empty, still names a service (as Kubernetes converts it)
])
def test_service_port_forms(service_port: int | str, port: dict[str, Any]) -> None:
    beta = {"apiVersion": "extensions/v1beta1", "kind": "Ingress", "metadata": {"name": "x"},
            "spec": {"backend": {"serviceName": "svc", "servicePort": service_port}}}
    v1 = to_version(beta, "networking.k8s.io/v1")
    assert v1["spec"] == {"defaultBackend": {"service": {"name": "svc", "port": port}}}


def test_backend_without_service_gets_none() -> None:
    beta = {"apiVersion": "networking.k8s.io/v1beta1", "kind": "Ingress",
            "metadata": {"name": "x"},
            "spec": {"backend": {"resource": {"kind": "Bucket", "name": "b"}}}}
    v1 = to_version(beta, "networking.k8s.io/v1")
    assert v1["spec"]["defaultBackend"] == {"resource": {"kind": "Bucket", "name": "b"}}


def test_beta_groups_convert_into_each_other() -> None:
    other = to_version(SEED, "networking.k8s.io/v1beta1")
    assert other["apiVersion"] == "networking.k8s.io/v1beta1"
    assert other["spec"]["rules"][0]["http"]["paths"][0]["backend"] == {
        "serviceName": "nginx", "servicePort": 80}


def test_input_is_not_modified() -> None:
    original = copy.deepcopy(SEED)
    to_version(SEED, "networking.k8s.io/v1")
    assert original == SEED
    original_v1 = copy.deepcopy(FULL_V1)
    to_version(FULL_V1, "extensions/v1beta1")
    assert original_v1 == FULL_V1


@pytest.mark.parametrize("version", INGRESS_VERSIONS)
def test_same_version_is_a_copy(version: str) -> None:
    obj = {**SEED, "apiVersion": version}
    out = to_version(obj, version)
    assert out == obj and out is not obj


def test_other_kinds_only_copy() -> None:
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nginx"}}
    assert to_version(svc, "v1") == svc
    with pytest.raises(ValueError, match='cannot convert Service from "v1" to "apps/v1"'):
        to_version(svc, "apps/v1")


@pytest.mark.parametrize("version", ["networking.k8s.io/v2", "v1"])
def test_unknown_ingress_version_is_refused(version: str) -> None:
    with pytest.raises(ValueError, match="cannot convert Ingress"):
        to_version(SEED, version)
