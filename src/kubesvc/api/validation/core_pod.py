"""Pods and pod templates (pkg/apis/core/validation: ValidatePodSpec and friends)."""

from __future__ import annotations

import re
from typing import Any

from kubesvc.api.validation._field import (
    Errors,
    Struct,
    child,
    dict_items,
    get_dict,
    get_list,
    get_str,
    get_str_list,
    get_str_map,
    go_json,
    index,
    key,
    opt_bool,
    opt_dict,
    opt_int,
    opt_str,
    semantic_equal,
)
from kubesvc.api.validation._meta import (
    validate_annotations,
    validate_label_name,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)
from kubesvc.api.validation._strings import (
    inclusive_range,
    is_dns1123_subdomain_with_underscore,
    is_label_value,
    is_qualified_name,
    is_valid_ip,
    name_is_dns_subdomain,
)
from kubesvc.api.validation.core_containers import (
    MAX_INT32,
    dns_label,
    dns_subdomain,
    validate_containers,
    validate_init_containers,
    validate_volumes,
)

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
UPDATABLE_POD_SPEC_FIELDS = (
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously "
    "negative)",
)

# ---------------------------------------------------------------------------------------------
# The pod spec


def _validate_pod_security_context(e: Errors, spec: dict[str, Any], path: str) -> None:
    sc = opt_dict(e, spec, "securityContext", path)
    if sc is None:
        return
    for name in ("runAsUser", "runAsGroup", "fsGroup"):
        v = opt_int(e, sc, name, child(path, name))
        if v is not None and not 0 <= v <= MAX_INT32:
            e.invalid(child(path, name), v, inclusive_range(0, MAX_INT32))
    groups_path = child(path, "supplementalGroups")
    for i, g in enumerate(get_list(e, sc, "supplementalGroups", groups_path)):
        if isinstance(g, int) and not 0 <= g <= MAX_INT32:
            e.invalid(index(groups_path, i), g, inclusive_range(0, MAX_INT32))
    policy = opt_str(e, sc, "fsGroupChangePolicy", child(path, "fsGroupChangePolicy"))
    if policy is not None and policy not in ("Always", "OnRootMismatch"):
        e.not_supported(child(path, "fsGroupChangePolicy"), policy, ("Always", "OnRootMismatch"))


def validate_tolerations(e: Errors, tolerations: list[Any], path: str) -> None:
    for i, t in dict_items(e, tolerations, path):
        p = index(path, i)
        k = get_str(e, t, "key", child(p, "key"))
        op = get_str(e, t, "operator", child(p, "operator"))
        value = get_str(e, t, "value", child(p, "value"))
        effect = get_str(e, t, "effect", child(p, "effect"))
        if k:
            validate_label_name(e, k, child(p, "key"))
        if not k and op != "Exists":
            e.invalid(child(p, "operator"), op, "operator must be Exists when `key` is empty, "
                                                'which means "match all values and all keys"')
        if t.get("tolerationSeconds") is not None and effect != "NoExecute":
            e.invalid(child(p, "effect"), effect,
                      "effect must be 'NoExecute' when `tolerationSeconds` is set")
        if op in ("Equal", ""):
            errs = is_label_value(value)
            if errs:
                e.invalid(child(p, "operator"), value, ";".join(errs))
        elif op == "Exists":
            if value:
                e.invalid(child(p, "operator"), value,
                          "value must be empty when `operator` is 'Exists'")
        else:
            e.not_supported(child(p, "operator"), op, ("Equal", "Exists"))
        if effect and effect not in TAINT_EFFECTS:
            e.not_supported(child(p, "effect"), effect, TAINT_EFFECTS)


def _validate_dns_config(e: Errors, spec: dict[str, Any], dns_policy: str, path: str) -> None:
    cfg = opt_dict(e, spec, "dnsConfig", path)
    if dns_policy == "None":
        if cfg is None:
            e.required(path, "must provide `dnsConfig` when `dnsPolicy` is None")
            return
        if not cfg.get("nameservers"):
            e.required(child(path, "nameservers"),
                       "must provide at least one DNS nameserver when `dnsPolicy` is None")
            return
    if cfg is None:
        return
    servers = get_str_list(e, cfg, "nameservers", child(path, "nameservers"))
    if len(servers) > 3:
        e.invalid(child(path, "nameservers"), servers, "must not have more than 3 nameservers")
    for i, ns in enumerate(servers):
        is_valid_ip(e, index(child(path, "nameservers"), i), ns)
    searches = get_str_list(e, cfg, "searches", child(path, "searches"))
    if len(searches) > 32:
        e.invalid(child(path, "searches"), searches, "must not have more than 32 search paths")
    if len(" ".join(searches)) > 2048:
        e.invalid(child(path, "searches"), searches, "must not have more than 2048 characters "
                                                     "(including spaces) in the search list")
    for i, search in enumerate(searches):
        if search != ".":
            search = search.removesuffix(".")
            for msg in is_dns1123_subdomain_with_underscore(search):
                e.invalid(index(child(path, "searches"), i), search, msg)
    for i, opt in dict_items(e, get_list(e, cfg, "options", child(path, "options")),
                             child(path, "options")):
        if not opt.get("name"):
            e.required(index(child(path, "options"), i), "must not be empty")


def validate_pod_spec(e: Errors, spec: dict[str, Any], path: str, *, is_pod: bool) -> None:
    """ValidatePodSpec. is_pod: the spec is a Pod's own, not a template's."""
    grace = opt_int(e, spec, "terminationGracePeriodSeconds",
                    child(path, "terminationGracePeriodSeconds"))
    if grace is None:
        e.required(child(path, "terminationGracePeriodSeconds"))
    volumes = validate_volumes(e, spec, child(path, "volumes"))
    names = validate_containers(e, spec, volumes, grace, child(path, "containers"))
    validate_init_containers(e, spec, names, volumes, grace, child(path, "initContainers"))
    if opt_bool(e, spec, "hostNetwork", child(path, "hostNetwork")):
        cpath = child(path, "containers")
        for i, ctr in dict_items(Errors(), get_list(Errors(), spec, "containers", ""), cpath):
            for j, port in dict_items(Errors(), get_list(Errors(), ctr, "ports", ""), ""):
                host, cont = port.get("hostPort") or 0, port.get("containerPort") or 0
                if (is_pod or host != 0) and host != cont:
                    e.invalid(child(index(child(index(cpath, i), "ports"), j), "hostPort"), host,
                              "must match `containerPort` when `hostNetwork` is true")
    restart = get_str(e, spec, "restartPolicy", child(path, "restartPolicy"))
    if not restart:
        e.required(child(path, "restartPolicy"))
    elif restart not in RESTART_POLICIES:
        e.not_supported(child(path, "restartPolicy"), restart, RESTART_POLICIES)
    dns_policy = get_str(e, spec, "dnsPolicy", child(path, "dnsPolicy"))
    if not dns_policy:
        e.required(child(path, "dnsPolicy"))
    elif dns_policy not in DNS_POLICIES:
        e.not_supported(child(path, "dnsPolicy"), dns_policy, DNS_POLICIES)
    validate_labels(e, get_str_map(e, spec, "nodeSelector", child(path, "nodeSelector")),
                    child(path, "nodeSelector"))
    _validate_pod_security_context(e, spec, child(path, "securityContext"))
    secrets_path = child(path, "imagePullSecrets")
    for i, ref in dict_items(e, get_list(e, spec, "imagePullSecrets", secrets_path),
                             secrets_path):
        if set(ref) - {"name"}:
            e.invalid(index(secrets_path, i), Struct(ref), "only name may be set")
    _validate_dns_config(e, spec, dns_policy, child(path, "dnsConfig"))
    gates_path = child(path, "readinessGates")
    for i, gate in dict_items(e, get_list(e, spec, "readinessGates", gates_path), gates_path):
        p = child(index(gates_path, i), "conditionType")
        condition = get_str(e, gate, "conditionType", p)
        for msg in is_qualified_name(condition):
            e.invalid(p, condition, msg)
    sched_path = child(path, "schedulingGates")
    seen_gates: set[str] = set()
    for i, gate in dict_items(e, get_list(e, spec, "schedulingGates", sched_path), sched_path):
        gate_name = get_str(e, gate, "name", index(sched_path, i))
        for msg in is_qualified_name(gate_name):
            e.invalid(index(sched_path, i), gate_name, msg)
        if gate_name in seen_gates:
            e.duplicate(index(sched_path, i), gate_name)
        seen_gates.add(gate_name)
    for name in ("serviceAccountName", "nodeName", "priorityClassName"):
        value = get_str(e, spec, name, child(path, name))
        if value:
            dns_subdomain(e, value, child(path, name))
    deadline = opt_int(e, spec, "activeDeadlineSeconds", child(path, "activeDeadlineSeconds"))
    if deadline is not None and not 1 <= deadline <= MAX_INT32:
        e.invalid(child(path, "activeDeadlineSeconds"), deadline, inclusive_range(1, MAX_INT32))
    for name in ("hostname", "subdomain"):
        value = get_str(e, spec, name, child(path, name))
        if value:
            dns_label(e, value, child(path, name))
    validate_tolerations(e, get_list(e, spec, "tolerations", child(path, "tolerations")),
                         child(path, "tolerations"))
    aliases_path = child(path, "hostAliases")
    for i, alias in dict_items(e, get_list(e, spec, "hostAliases", aliases_path), aliases_path):
        p = index(aliases_path, i)
        is_valid_ip(e, child(p, "ip"), get_str(e, alias, "ip", child(p, "ip")))
        for j, host in enumerate(get_str_list(e, alias, "hostnames", child(p, "hostnames"))):
            dns_subdomain(e, host, index(child(p, "hostnames"), j))
    runtime_class = opt_str(e, spec, "runtimeClassName", child(path, "runtimeClassName"))
    if runtime_class is not None:
        dns_subdomain(e, runtime_class, child(path, "runtimeClassName"))
    preemption = opt_str(e, spec, "preemptionPolicy", child(path, "preemptionPolicy"))
    if preemption is not None and preemption not in ("PreemptLowerPriority", "Never"):
        if not preemption:
            e.required(child(path, "preemptionPolicy"))
        else:
            e.not_supported(child(path, "preemptionPolicy"), preemption,
                            ("PreemptLowerPriority", "Never"))
    os_spec = opt_dict(e, spec, "os", child(path, "os"))
    if os_spec is not None:
        os_name = get_str(e, os_spec, "name", child(path, "os", "name"))
        if not os_name:
            e.required(child(path, "os", "name"))
        elif os_name not in ("linux", "windows"):
            e.not_supported(child(path, "os", "name"), os_name, ("linux", "windows"))


def _validate_images_trimmed(e: Errors, spec: dict[str, Any], path: str) -> None:
    for list_name in ("containers", "initContainers"):
        items = spec.get(list_name)
        if not isinstance(items, list):
            continue
        for i, ctr in enumerate(items):
            image = ctr.get("image") if isinstance(ctr, dict) else None
            if isinstance(image, str) and image != image.strip():
                e.invalid(child(index(child(path, list_name), i), "image"), image,
                          "must not have leading or trailing whitespace")


def validate_pod_template_spec(e: Errors, template: dict[str, Any], path: str) -> None:
    """ValidatePodTemplateSpec (labels are reported at `<path>.labels`, as Kubernetes does)."""
    meta = get_dict(e, template, "metadata", child(path, "metadata"))
    validate_labels(e, get_str_map(e, meta, "labels", child(path, "labels")),
                    child(path, "labels"))
    annotations = get_str_map(e, meta, "annotations", child(path, "annotations"))
    validate_annotations(e, annotations, child(path, "annotations"))
    _validate_pod_annotations(e, annotations, child(path, "annotations"))
    spec = get_dict(e, template, "spec", child(path, "spec"))
    validate_pod_spec(e, spec, child(path, "spec"), is_pod=False)
    if spec.get("ephemeralContainers"):
        e.forbidden(child(path, "spec", "ephemeralContainers"),
                    "ephemeral containers not allowed in pod template")


DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"


def _validate_pod_annotations(e: Errors, annotations: dict[str, str], path: str) -> None:
    if DELETION_COST in annotations:
        value = annotations[DELETION_COST]
        ok = re.fullmatch(r"[+-]?[0-9]+", value) is not None and \
            -(2**31) <= int(value) <= MAX_INT32
        if not ok:
            e.invalid(key(path, DELETION_COST), value, "must be a 32bit integer")


# ---------------------------------------------------------------------------------------------
# Pods


def validate_pod(e: Errors, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    meta = get_dict(e, obj, "metadata", "metadata")
    spec = get_dict(e, obj, "spec", "spec")
    if old is None:
        validate_object_meta(e, meta, namespaced=True, name_fn=name_is_dns_subdomain)
    else:
        validate_object_meta_update(e, meta, get_dict(Errors(), old, "metadata", "metadata"))
    annotations = get_str_map(Errors(), meta, "annotations", "")
    _validate_pod_annotations(e, annotations, "metadata.annotations")
    validate_pod_spec(e, spec, "spec", is_pod=True)
    _validate_images_trimmed(e, spec, "spec")
    if old is None:
        if spec.get("ephemeralContainers"):
            e.forbidden("spec.ephemeralContainers", "cannot be set on create")
        if spec.get("nodeName") and spec.get("schedulingGates"):
            e.forbidden("spec.nodeName",
                        "cannot be set until all schedulingGates have been cleared")
        return
    _validate_pod_update(e, spec, get_dict(Errors(), old, "spec", "spec"))


def _validate_pod_update(e: Errors, spec: dict[str, Any], old_spec: dict[str, Any]) -> None:
    for list_name in ("containers", "initContainers"):
        new_list, old_list = spec.get(list_name) or [], old_spec.get(list_name) or []
        if not isinstance(new_list, list) or not isinstance(old_list, list):
            return
        if len(new_list) != len(old_list):
            e.forbidden(child("spec", list_name), "pod updates may not add or remove containers")
            return
    new_deadline, old_deadline = spec.get("activeDeadlineSeconds"), \
        old_spec.get("activeDeadlineSeconds")
    if isinstance(new_deadline, int):
        if not 0 <= new_deadline <= MAX_INT32:
            e.invalid("spec.activeDeadlineSeconds", new_deadline, inclusive_range(0, MAX_INT32))
            return
        if isinstance(old_deadline, int) and old_deadline < new_deadline:
            e.invalid("spec.activeDeadlineSeconds", new_deadline,
                      "must be less than or equal to previous value")
            return
    elif new_deadline is None and old_deadline is not None:
        e.invalid("spec.activeDeadlineSeconds", None,
                  "must not update from a positive integer to nil value")
    new_tolerations = spec.get("tolerations") or []
    for old_t in old_spec.get("tolerations") or []:
        if not isinstance(old_t, dict) or not any(
                isinstance(t, dict) and semantic_equal(
                    {**old_t, "tolerationSeconds": t.get("tolerationSeconds")}, t)
                for t in new_tolerations):
            e.forbidden("spec.tolerations",
                        "existing toleration can not be modified except its tolerationSeconds")
            break
    old_gates = {g.get("name") for g in old_spec.get("schedulingGates") or []
                 if isinstance(g, dict)}
    for i, gate in enumerate(spec.get("schedulingGates") or []):
        if isinstance(gate, dict) and gate.get("name") not in old_gates:
            e.forbidden(child(index("spec.schedulingGates", i), "name"),
                        "only deletion is allowed, but found new scheduling gate "
                        f"'{gate.get('name')}'")
    munged = dict(spec)
    for list_name in ("containers", "initContainers"):
        if isinstance(spec.get(list_name), list):
            munged[list_name] = [
                {**c, "image": o.get("image")} if isinstance(c, dict) and isinstance(o, dict)
                else c
                for c, o in zip(spec[list_name], old_spec.get(list_name) or [], strict=False)]
    for name in ("activeDeadlineSeconds", "schedulingGates", "tolerations"):
        munged.pop(name, None)
        if name in old_spec:
            munged[name] = old_spec[name]
    old_grace = old_spec.get("terminationGracePeriodSeconds")
    if isinstance(old_grace, int) and old_grace < 0 and munged.get(
            "terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = old_grace
    if old_spec.get("schedulingGates") and not semantic_equal(
            munged.get("nodeSelector"), old_spec.get("nodeSelector")):
        old_sel = old_spec.get("nodeSelector") or {}
        new_sel = munged.get("nodeSelector") or {}
        if any(new_sel.get(k) != v for k, v in old_sel.items()):
            e.invalid("spec.nodeSelector", new_sel, "only additions to spec.nodeSelector are "
                                                    "allowed (no mutations or deletions)")
        munged["nodeSelector"] = old_spec.get("nodeSelector")
    if not semantic_equal(munged, old_spec):
        fields = ",".join(UPDATABLE_POD_SPEC_FIELDS)
        e.forbidden("spec", f"pod updates may not change fields other than {fields}\n"
                            + spec_diff(old_spec, munged))


def spec_diff(old: Any, new: Any, path: str = "") -> str:
    """A short `-`/`+` listing of what differs (Kubernetes prints a go-cmp diff here)."""
    lines: list[str] = []
    _diff(old, new, path or "spec", lines)
    return "\n".join(lines)


def _diff(old: Any, new: Any, path: str, lines: list[str]) -> None:
    if semantic_equal(old, new):
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for k in list(old) + [k for k in new if k not in old]:
            _diff(old.get(k), new.get(k), child(path, k), lines)
        return
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            _diff(a, b, index(path, i), lines)
        return
    lines.append(f"  {path}:")
    if old is not None:
        lines.append(f"- \t{go_json(old)}")
    if new is not None:
        lines.append(f"+ \t{go_json(new)}")
