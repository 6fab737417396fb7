"""Containers and volumes of a pod spec (pkg/apis/core/validation: validateContainers,
ValidateVolumes and what they call)."""

from __future__ import annotations

import re
from typing import Any

from kubesvc.api.validation._field import (
    NEGATIVE,
    TYPE_INVALID,
    Errors,
    Struct,
    child,
    dict_items,
    get_dict,
    get_int,
    get_list,
    get_str,
    index,
    int_or_str,
    key,
    opt_bool,
    opt_dict,
    opt_int,
    opt_str,
    render,
)
from kubesvc.api.validation._strings import (
    QUANTITY_FORMAT,
    inclusive_range,
    is_config_map_key,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_http_header_name,
    is_qualified_name,
    is_relaxed_env_var_name,
    is_valid_port_name,
    is_valid_port_num,
    name_is_dns_subdomain,
    parse_quantity,
)

MAX_INT32 = 2**31 - 1
PROTOCOLS = ("SCTP", "TCP", "UDP")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
HOST_PATH_TYPES = ("", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File",
                   "FileOrCreate", "Socket")
# Volume sources in the order Kubernetes checks them, with the path segment it reports when a
# second one is given (two of those segments carry Kubernetes' own typos).
VOLUME_SOURCES = (
    ("emptyDir", "emptyDir"), ("hostPath", "hostPath"), ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"), ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"), ("nfs", "nfs"), ("iscsi", "iscsi"), ("glusterfs", "glusterfs"),
    ("flocker", "flocker"), ("persistentVolumeClaim", "persistentVolumeClaim"), ("rbd", "rbd"),
    ("cinder", "cinder"), ("cephfs", "cephFS"), ("quobyte", "quobyte"),
    ("downwardAPI", "downwarAPI"), ("fc", "fc"), ("flexVolume", "flexVolume"),
    ("configMap", "configMap"), ("azureFile", "azureFile"), ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"), ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"), ("storageos", "storageos"), ("projected", "projected"),
    ("scaleIO", "scaleIO"), ("csi", "csi"), ("ephemeral", "ephemeral"), ("image", "image"),
)
FILE_MODE_MSG = "must be a number between 0 and 0777 (octal), both inclusive"
STANDARD_CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")


def dns_label(e: Errors, value: str, path: str) -> None:
    for msg in is_dns1123_label(value):
        e.invalid(path, value, msg)


def dns_subdomain(e: Errors, value: str, path: str) -> None:
    for msg in is_dns1123_subdomain(value):
        e.invalid(path, value, msg)


def _nonnegative(e: Errors, value: int | None, path: str) -> None:
    if value is not None and value < 0:
        e.invalid(path, value, NEGATIVE)


def validate_port_num_or_name(e: Errors, port: int | str | None, path: str) -> None:
    if port is None or isinstance(port, int):
        value = port or 0
        for msg in is_valid_port_num(value):
            e.invalid(path, value, msg)
    else:
        for msg in is_valid_port_name(port):
            e.invalid(path, port, msg)


# ---------------------------------------------------------------------------------------------
# Volumes


def _validate_mode(e: Errors, src: dict[str, Any], name: str, path: str) -> None:
    mode = opt_int(e, src, name, child(path, name), "int32")
    if mode is not None and not 0 <= mode <= 0o777:
        e.invalid(child(path, name), mode, FILE_MODE_MSG)


def _validate_volume_source(e: Errors, vol: dict[str, Any], path: str) -> None:
    seen = 0
    for field_name, report_as in VOLUME_SOURCES:
        if vol.get(field_name) is None:
            continue
        if seen:
            e.forbidden(child(path, report_as), "may not specify more than 1 volume type")
            continue
        seen += 1
        p = child(path, field_name)
        src = get_dict(e, vol, field_name, p)
        if field_name == "hostPath":
            host_path = get_str(e, src, "path", child(p, "path"))
            if not host_path:
                e.required(child(p, "path"))
                continue
            if ".." in host_path.split("/"):
                e.invalid(child(p, "path"), host_path, "must not contain '..'")
            kind = opt_str(e, src, "type", child(p, "type"))
            if kind is not None and kind not in HOST_PATH_TYPES:
                e.not_supported(child(p, "type"), kind, HOST_PATH_TYPES)
        elif field_name == "secret":
            if not get_str(e, src, "secretName", child(p, "secretName")):
                e.required(child(p, "secretName"))
            _validate_mode(e, src, "defaultMode", p)
        elif field_name == "configMap":
            if not get_str(e, src, "name", child(p, "name")):
                e.required(child(p, "name"))
            _validate_mode(e, src, "defaultMode", p)
        elif field_name == "persistentVolumeClaim":
            if not get_str(e, src, "claimName", child(p, "claimName")):
                e.required(child(p, "claimName"))
        elif field_name == "nfs":
            if not get_str(e, src, "server", child(p, "server")):
                e.required(child(p, "server"))
            nfs_path = get_str(e, src, "path", child(p, "path"))
            if not nfs_path:
                e.required(child(p, "path"))
            elif not nfs_path.startswith("/"):
                e.invalid(child(p, "path"), nfs_path, "must be an absolute path")
        elif field_name in ("downwardAPI", "projected"):
            _validate_mode(e, src, "defaultMode", p)
    if not seen:
        e.required(path, "must specify a volume type")


def validate_volumes(e: Errors, spec: dict[str, Any], path: str) -> set[str]:
    names: set[str] = set()
    for i, vol in dict_items(e, get_list(e, spec, "volumes", path), path):
        p = index(path, i)
        before = len(e)
        _validate_volume_source(e, vol, p)
        name = get_str(e, vol, "name", child(p, "name"))
        if not name:
            e.required(child(p, "name"))
        else:
            dns_label(e, name, child(p, "name"))
        if name in names:
            e.duplicate(child(p, "name"), name)
        if len(e) == before:
            names.add(name)
    return names


# ---------------------------------------------------------------------------------------------
# Containers


def _validate_container_ports(e: Errors, ctr: dict[str, Any], path: str) -> None:
    names: set[str] = set()
    for i, port in dict_items(e, get_list(e, ctr, "ports", path), path):
        p = index(path, i)
        name = get_str(e, port, "name", child(p, "name"))
        if name:
            msgs = is_valid_port_name(name)
            for msg in msgs:
                e.invalid(child(p, "name"), name, msg)
            if not msgs:
                if name in names:
                    e.duplicate(child(p, "name"), name)
                names.add(name)
        container_port = get_int(e, port, "containerPort", child(p, "containerPort"))
        if container_port == 0:
            e.required(child(p, "containerPort"))
        else:
            for msg in is_valid_port_num(container_port):
                e.invalid(child(p, "containerPort"), container_port, msg)
        host_port = get_int(e, port, "hostPort", child(p, "hostPort"))
        if host_port:
            for msg in is_valid_port_num(host_port):
                e.invalid(child(p, "hostPort"), host_port, msg)
        protocol = get_str(e, port, "protocol", child(p, "protocol"))
        if not protocol:
            e.required(child(p, "protocol"))
        elif protocol not in PROTOCOLS:
            e.not_supported(child(p, "protocol"), protocol, PROTOCOLS)


def _validate_key_selector(e: Errors, sel: dict[str, Any], path: str) -> None:
    name = get_str(e, sel, "name", child(path, "name"))
    for msg in name_is_dns_subdomain(name, False):
        e.invalid(child(path, "name"), name, msg)
    k = get_str(e, sel, "key", child(path, "key"))
    if not k:
        e.required(child(path, "key"))
    else:
        for msg in is_config_map_key(k):
            e.invalid(child(path, "key"), k, msg)


# The pod fields a v1 downward API reference can name at all, and those env vars may use.
CONVERTIBLE_FIELD_PATHS = ("metadata.annotations", "metadata.labels", "metadata.name",
                           "metadata.namespace", "metadata.uid", "spec.nodeName",
                           "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                           "status.hostIP", "status.hostIPs", "status.phase", "status.podIP",
                           "status.podIPs")
ENV_FIELD_PATHS = ("metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
                   "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP",
                   "status.podIPs")


def _validate_env(e: Errors, ctr: dict[str, Any], path: str) -> None:
    for i, ev in dict_items(e, get_list(e, ctr, "env", path), path):
        p = index(path, i)
        name = get_str(e, ev, "name", child(p, "name"))
        if not name:
            e.required(child(p, "name"))
        else:
            for msg in is_relaxed_env_var_name(name):
                e.invalid(child(p, "name"), name, msg)
        value_from = opt_dict(e, ev, "valueFrom", child(p, "valueFrom"))
        if value_from is None:
            continue
        vp = child(p, "valueFrom")
        sources = 0
        if value_from.get("fieldRef") is not None:
            sources += 1
            ref = get_dict(e, value_from, "fieldRef", child(vp, "fieldRef"))
            rp = child(vp, "fieldRef")
            if not get_str(e, ref, "apiVersion", child(rp, "apiVersion")):
                e.required(child(rp, "apiVersion"))
            else:
                field_path = get_str(e, ref, "fieldPath", child(rp, "fieldPath"))
                m = re.fullmatch(r"(metadata\.(?:labels|annotations))\['(.*)'\]", field_path)
                if not field_path:
                    e.required(child(rp, "fieldPath"))
                elif m:
                    sub = m.group(2).lower() if m.group(1).endswith("annotations") else m.group(2)
                    for msg in is_qualified_name(sub):
                        e.invalid(rp, sub, msg)
                elif field_path not in CONVERTIBLE_FIELD_PATHS:
                    e.invalid(child(rp, "fieldPath"), field_path, "error converting fieldPath: "
                              f"field label not supported: {field_path}")
                elif field_path not in ENV_FIELD_PATHS:
                    e.not_supported(child(rp, "fieldPath"), field_path, ENV_FIELD_PATHS)
        if value_from.get("resourceFieldRef") is not None:
            sources += 1
            ref = get_dict(e, value_from, "resourceFieldRef", child(vp, "resourceFieldRef"))
            if not get_str(e, ref, "resource", child(vp, "resourceFieldRef", "resource")):
                e.required(child(vp, "resourceFieldRef", "resource"))
        for ref_name in ("configMapKeyRef", "secretKeyRef"):
            if value_from.get(ref_name) is not None:
                sources += 1
                _validate_key_selector(e, get_dict(e, value_from, ref_name, child(vp, ref_name)),
                                       child(vp, ref_name))
        if sources == 0:
            e.invalid(vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, "
                              "`configMapKeyRef` or `secretKeyRef`")
        elif ev.get("value"):
            e.invalid(vp, "", "may not be specified when `value` is not empty")
        elif sources > 1:
            e.invalid(vp, "", "may not have more than one field specified at a time")


def _validate_env_from(e: Errors, ctr: dict[str, Any], path: str) -> None:
    for i, src in dict_items(e, get_list(e, ctr, "envFrom", path), path):
        p = index(path, i)
        prefix = get_str(e, src, "prefix", child(p, "prefix"))
        if prefix:
            for msg in is_relaxed_env_var_name(prefix):
                e.invalid(child(p, "prefix"), prefix, msg)
        sources = 0
        for ref_name in ("configMapRef", "secretRef"):
            if src.get(ref_name) is None:
                continue
            sources += 1
            rp = child(p, ref_name)
            name = get_str(e, get_dict(e, src, ref_name, rp), "name", child(rp, "name"))
            if not name:
                e.required(child(rp, "name"))
            else:
                for msg in name_is_dns_subdomain(name, True):
                    e.invalid(child(rp, "name"), name, msg)
        if sources == 0:
            e.invalid(path, "", "must specify one of: `configMapRef` or `secretRef`")
        elif sources > 1:
            e.invalid(path, "", "may not have more than one field specified at a time")


def _validate_volume_mounts(e: Errors, ctr: dict[str, Any], volumes: set[str],
                            path: str) -> None:
    mount_points: set[str] = set()
    for i, mnt in dict_items(e, get_list(e, ctr, "volumeMounts", path), path):
        p = index(path, i)
        name = get_str(e, mnt, "name", child(p, "name"))
        if not name:
            e.required(child(p, "name"))
        if name not in volumes:
            e.not_found(child(p, "name"), name)
        mount_path = get_str(e, mnt, "mountPath", child(p, "mountPath"))
        if not mount_path:
            e.required(child(p, "mountPath"))
        if mount_path in mount_points:
            e.invalid(child(p, "mountPath"), mount_path, "must be unique")
        mount_points.add(mount_path)
        sub_path = get_str(e, mnt, "subPath", child(p, "subPath"))
        if sub_path.startswith("/"):
            e.invalid(child(path, "subPath"), sub_path, "must be a relative path")
        elif ".." in sub_path.replace("\\", "/").split("/"):
            e.invalid(child(path, "subPath"), sub_path, "must not contain '..'")


def _validate_resources(e: Errors, ctr: dict[str, Any], path: str) -> None:
    res = get_dict(e, ctr, "resources", path)
    quantities: dict[str, dict[str, Any]] = {}
    for kind in ("limits", "requests"):
        kp = child(path, kind)
        values = get_dict(e, res, kind, kp)
        quantities[kind] = {}
        for name, raw in values.items():
            p = key(kp, name)
            for msg in is_qualified_name(name):
                e.invalid(p, name, msg)
            if "/" not in name and name not in STANDARD_CONTAINER_RESOURCES and \
                    not name.startswith("hugepages-"):
                e.invalid(p, name, "must be a standard resource for containers")
            q = parse_quantity(raw) if isinstance(raw, str | int | float) else None
            if q is None:
                e.add(p, f"Invalid value: {render(raw)}: quantities must match the regular "
                         f"expression {QUANTITY_FORMAT}", TYPE_INVALID)
                continue
            if q < 0:
                e.invalid(p, str(raw), NEGATIVE)
            quantities[kind][name] = (q, str(raw))
    limits, requests = quantities["limits"], quantities["requests"]
    for name, (q, text) in requests.items():
        overcommit = ("/" not in name or name.startswith("kubernetes.io/")) and \
            not name.startswith("hugepages-")
        if name in limits:
            limit_q, limit_text = limits[name]
            if q != limit_q and not overcommit:
                e.invalid(child(path, "requests"), text,
                          f"must be equal to {name} limit of {limit_text}")
            elif q > limit_q:
                e.invalid(child(path, "requests"), text,
                          f"must be less than or equal to {name} limit of {limit_text}")
        elif not overcommit:
            e.required(child(path, "limits"), "Limit must be set for non overcommitable resources")


def _validate_security_context(e: Errors, ctr: dict[str, Any], path: str) -> None:
    sc = opt_dict(e, ctr, "securityContext", path)
    if sc is None:
        return
    for name in ("runAsUser", "runAsGroup"):
        v = opt_int(e, sc, name, child(path, name))
        if v is not None and not 0 <= v <= MAX_INT32:
            e.invalid(child(path, name), v, inclusive_range(0, MAX_INT32))
    if opt_bool(e, sc, "allowPrivilegeEscalation", child(path, "allowPrivilegeEscalation")) \
            is False:
        if opt_bool(e, sc, "privileged", child(path, "privileged")):
            e.invalid(path, Struct(sc), "cannot set `allowPrivilegeEscalation` to false and "
                                        "`privileged` to true")
        caps = get_dict(e, sc, "capabilities", child(path, "capabilities"))
        if "CAP_SYS_ADMIN" in (caps.get("add") or []):
            e.invalid(path, Struct(sc), "cannot set `allowPrivilegeEscalation` to false and "
                                        "`capabilities.Add` CAP_SYS_ADMIN")


def _validate_handler(e: Errors, handler: dict[str, Any], grace: int | None, path: str,
                      *, lifecycle: bool) -> None:
    kinds = ("exec", "httpGet", "tcpSocket", "sleep") if lifecycle else \
        ("exec", "httpGet", "tcpSocket", "grpc")
    count = 0
    for kind in kinds:
        if handler.get(kind) is None:
            continue
        p = child(path, kind)
        if count:
            e.forbidden(p, "may not specify more than 1 handler type")
            continue
        count += 1
        action = get_dict(e, handler, kind, p)
        if kind == "exec":
            if not get_list(e, action, "command", child(p, "command")):
                e.required(child(p, "command"))
        elif kind == "httpGet":
            if not get_str(e, action, "path", child(p, "path")):
                e.required(child(p, "path"))
            validate_port_num_or_name(e, int_or_str(e, action, "port", child(p, "port")),
                                      child(p, "port"))
            scheme = get_str(e, action, "scheme", child(p, "scheme"))
            if scheme not in ("HTTP", "HTTPS"):
                e.not_supported(child(p, "scheme"), scheme, ("HTTP", "HTTPS"))
            for _, header in dict_items(e, get_list(e, action, "httpHeaders",
                                                    child(p, "httpHeaders")),
                                        child(p, "httpHeaders")):
                header_name = get_str(e, header, "name", child(p, "httpHeaders"))
                for msg in is_http_header_name(header_name):
                    e.invalid(child(p, "httpHeaders"), header_name, msg)
        elif kind == "tcpSocket":
            validate_port_num_or_name(e, int_or_str(e, action, "port", child(p, "port")),
                                      child(p, "port"))
        elif kind == "grpc":
            validate_port_num_or_name(e, get_int(e, action, "port", child(p, "port")),
                                      child(p, "port"))
        elif kind == "sleep":
            seconds = get_int(e, action, "seconds", child(p, "seconds"))
            if grace is not None and not 0 <= seconds <= grace:
                e.invalid(p, seconds, "must be non-negative and less than "
                                      f"terminationGracePeriodSeconds ({grace})")
    if count == 0:
        e.required(path, "must specify a handler type")


def _validate_probe(e: Errors, ctr: dict[str, Any], name: str, grace: int | None,
                    path: str) -> None:
    probe = opt_dict(e, ctr, name, path)
    if probe is None:
        return
    _validate_handler(e, probe, grace, path, lifecycle=False)
    for field_name in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds",
                       "successThreshold", "failureThreshold"):
        _nonnegative(e, opt_int(e, probe, field_name, child(path, field_name)),
                     child(path, field_name))
    probe_grace = opt_int(e, probe, "terminationGracePeriodSeconds",
                          child(path, "terminationGracePeriodSeconds"))
    if probe_grace is not None and probe_grace <= 0:
        e.invalid(child(path, "terminationGracePeriodSeconds"), probe_grace,
                  "must be greater than 0")
    if name in ("livenessProbe", "startupProbe"):
        success = get_int(e, probe, "successThreshold", child(path, "successThreshold"))
        if success != 1:
            e.invalid(child(path, "successThreshold"), success, "must be 1")
    if name == "readinessProbe" and probe_grace is not None:
        e.invalid(child(path, "terminationGracePeriodSeconds"), probe_grace,
                  "must not be set for readinessProbes")


def _validate_lifecycle(e: Errors, ctr: dict[str, Any], grace: int | None, path: str) -> None:
    lifecycle = opt_dict(e, ctr, "lifecycle", path)
    if lifecycle is None:
        return
    for hook in ("postStart", "preStop"):
        handler = opt_dict(e, lifecycle, hook, child(path, hook))
        if handler is not None:
            _validate_handler(e, handler, grace, child(path, hook), lifecycle=True)


def _validate_container_common(e: Errors, ctr: dict[str, Any], volumes: set[str],
                               path: str) -> None:
    name = get_str(e, ctr, "name", child(path, "name"))
    if not name:
        e.required(child(path, "name"))
    else:
        dns_label(e, name, child(path, "name"))
    if not get_str(e, ctr, "image", child(path, "image")):
        e.required(child(path, "image"))
    policy = get_str(e, ctr, "terminationMessagePolicy", child(path, "terminationMessagePolicy"))
    if not policy:
        e.required(child(path, "terminationMessagePolicy"))
    elif policy not in TERMINATION_MESSAGE_POLICIES:
        e.not_supported(child(path, "terminationMessagePolicy"), policy,
                        TERMINATION_MESSAGE_POLICIES)
    _validate_container_ports(e, ctr, child(path, "ports"))
    _validate_env(e, ctr, child(path, "env"))
    _validate_env_from(e, ctr, child(path, "envFrom"))
    _validate_volume_mounts(e, ctr, volumes, child(path, "volumeMounts"))
    pull = get_str(e, ctr, "imagePullPolicy", child(path, "imagePullPolicy"))
    if not pull:
        e.required(child(path, "imagePullPolicy"))
    elif pull not in PULL_POLICIES:
        e.not_supported(child(path, "imagePullPolicy"), pull, PULL_POLICIES)
    _validate_resources(e, ctr, child(path, "resources"))
    _validate_security_context(e, ctr, child(path, "securityContext"))


def _host_port_conflicts(e: Errors, containers: list[tuple[int, dict[str, Any]]],
                         path: str) -> None:
    seen: set[str] = set()
    for i, ctr in containers:
        ports = get_list(Errors(), ctr, "ports", "")
        for j, port in enumerate(ports):
            if not isinstance(port, dict) or not port.get("hostPort"):
                continue
            entry = f"{port.get('protocol', '')}/{port.get('hostIP', '')}/{port['hostPort']}"
            if entry in seen:
                e.duplicate(child(index(child(index(path, i), "ports"), j), "hostPort"), entry)
            seen.add(entry)


def validate_containers(e: Errors, spec: dict[str, Any], volumes: set[str], grace: int | None,
                         path: str) -> list[str]:
    items = get_list(e, spec, "containers", path)
    if not items:
        e.required(path)
        return []
    containers = dict_items(e, items, path)
    names: list[str] = []
    for i, ctr in containers:
        p = index(path, i)
        _validate_container_common(e, ctr, volumes, p)
        name = ctr.get("name") if isinstance(ctr.get("name"), str) else ""
        if name in names:
            e.duplicate(child(p, "name"), name)
        names.append(str(name))
        _validate_lifecycle(e, ctr, grace, child(p, "lifecycle"))
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            _validate_probe(e, ctr, probe, grace, child(p, probe))
        if ctr.get("restartPolicy") is not None:
            e.forbidden(child(p, "restartPolicy"), "may not be set for non-init containers")
    _host_port_conflicts(e, containers, path)
    return names


def validate_init_containers(e: Errors, spec: dict[str, Any], regular: list[str],
                              volumes: set[str], grace: int | None, path: str) -> None:
    names = set(regular)
    for i, ctr in dict_items(e, get_list(e, spec, "initContainers", path), path):
        p = index(path, i)
        _validate_container_common(e, ctr, volumes, p)
        restart = opt_str(e, ctr, "restartPolicy", child(p, "restartPolicy"))
        if restart is not None and restart != "Always":
            e.not_supported(child(p, "restartPolicy"), restart, ("Always",))
        name = ctr.get("name") if isinstance(ctr.get("name"), str) else ""
        if name in names:
            e.duplicate(child(p, "name"), name)
        elif name:
            names.add(str(name))
        _host_port_conflicts(e, [(i, ctr)], path)
        if restart == "Always":
            _validate_lifecycle(e, ctr, grace, child(p, "lifecycle"))
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                _validate_probe(e, ctr, probe, grace, child(p, probe))
        else:
            for field_name in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if ctr.get(field_name) is not None:
                    e.forbidden(child(p, field_name),
                                "may not be set for init containers without restartPolicy=Always")
