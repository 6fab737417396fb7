"""ObjectMeta, labels, annotations and label selectors (apimachinery's api/validation and
apis/meta/v1/validation, plus core's finalizer rule)."""

from __future__ import annotations

from collections.abc import Callable
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
    index,
    opt_bool,
    opt_int,
)
from kubesvc.api.validation._strings import (
    is_label_value,
    is_qualified_name,
    name_is_dns_label,
    nbytes,
)

NameFn = Callable[[str, bool], list[str]]

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
STANDARD_FINALIZERS = ("kubernetes", "orphan", "foregroundDeletion")


def validate_label_name(e: Errors, name: str, path: str) -> None:
    for msg in is_qualified_name(name):
        e.invalid(path, name, msg)


def validate_labels(e: Errors, labels: dict[str, str], path: str) -> None:
    for k, v in labels.items():
        validate_label_name(e, k, path)
        for msg in is_label_value(v):
            e.invalid(path, v, msg)


def validate_annotations(e: Errors, annotations: dict[str, str], path: str) -> None:
    for k in annotations:
        for msg in is_qualified_name(k.lower()):
            e.invalid(path, k, msg)
    total = sum(nbytes(k) + nbytes(v) for k, v in annotations.items())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        e.too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT)


def _validate_owner_references(e: Errors, meta: dict[str, Any], path: str) -> None:
    refs = dict_items(e, get_list(e, meta, "ownerReferences", path), path)
    first_controller = ""
    for i, ref in refs:
        p = index(path, i)
        api_version = get_str(e, ref, "apiVersion", child(p, "apiVersion"))
        kind = get_str(e, ref, "kind", child(p, "kind"))
        if not api_version:
            e.required(child(p, "apiVersion"), "must not be empty")
        elif api_version.count("/") > 1 or api_version.endswith("/"):
            e.invalid(child(p, "apiVersion"), api_version, "must be <group>/<version> or <version>")
        if not kind:
            e.required(child(p, "kind"), "must not be empty")
        if not get_str(e, ref, "name", child(p, "name")):
            e.required(child(p, "name"), "must not be empty")
        if not get_str(e, ref, "uid", child(p, "uid")):
            e.required(child(p, "uid"), "must not be empty")
        if api_version == "v1" and kind == "Event":
            e.invalid(p, Struct(ref), "/v1, Kind=Event is disallowed from being an owner")
        if opt_bool(e, ref, "controller", child(p, "controller")):
            current = f"{kind}/{ref.get('name', '')}"
            if first_controller:
                e.invalid(path, [Struct(r) for _, r in refs],
                          'Only one reference can have Controller set to true. Found "true" in '
                          f"references for {first_controller} and {current}")
            else:
                first_controller = current


def _validate_finalizers(e: Errors, finalizers: list[str], path: str) -> None:
    for f in finalizers:
        for msg in is_qualified_name(f):
            e.invalid(path, f, msg)
    if "orphan" in finalizers and "foregroundDeletion" in finalizers:
        e.invalid(path, finalizers, "finalizer orphan and foregroundDeletion cannot be both set")
    for i, f in enumerate(finalizers):
        validate_kube_finalizer_name(e, f, index(path, i))


def validate_kube_finalizer_name(e: Errors, name: str, path: str) -> None:
    if "/" not in name and name not in STANDARD_FINALIZERS:
        e.invalid(path, name, "name is neither a standard finalizer name nor is it fully qualified")


def validate_object_meta(e: Errors, meta: dict[str, Any], *, namespaced: bool, name_fn: NameFn,
                         path: str = "metadata") -> None:
    """ValidateObjectMeta for a create.

    A namespaced object's `metadata.namespace` is checked when present; the API server fills
    it from the request path before calling validate, so its absence is not reported here.
    """
    name = get_str(e, meta, "name", child(path, "name"))
    generate = get_str(e, meta, "generateName", child(path, "generateName"))
    if generate:
        for msg in name_fn(generate, True):
            e.invalid(child(path, "generateName"), generate, msg)
    if not name:
        if not generate:
            e.required(child(path, "name"), "name or generateName is required")
    else:
        for msg in name_fn(name, False):
            e.invalid(child(path, "name"), name, msg)
    _validate_meta_common(e, meta, namespaced=namespaced, path=path)


def _validate_meta_common(e: Errors, meta: dict[str, Any], *, namespaced: bool,
                          path: str) -> None:
    namespace = get_str(e, meta, "namespace", child(path, "namespace"))
    if namespaced:
        if namespace:
            for msg in name_is_dns_label(namespace, False):
                e.invalid(child(path, "namespace"), namespace, msg)
    elif namespace:
        e.forbidden(child(path, "namespace"), "not allowed on this type")
    generation = opt_int(e, meta, "generation", child(path, "generation"))
    if generation is not None and generation < 0:
        e.invalid(child(path, "generation"), generation, "must be greater than or equal to 0")
    validate_labels(e, get_str_map(e, meta, "labels", child(path, "labels")),
                    child(path, "labels"))
    validate_annotations(e, get_str_map(e, meta, "annotations", child(path, "annotations")),
                         child(path, "annotations"))
    _validate_owner_references(e, meta, child(path, "ownerReferences"))
    _validate_finalizers(e, get_str_list(e, meta, "finalizers", child(path, "finalizers")),
                         child(path, "finalizers"))


def validate_object_meta_update(e: Errors, new: dict[str, Any], old: dict[str, Any],
                                path: str = "metadata") -> None:
    """ValidateObjectMetaUpdate.

    uid, creationTimestamp and deletion fields are compared only when the update carries them:
    Kubernetes copies them from the stored object first (see defaults.carry_over).
    """

    def p(name: str) -> str:
        return child(path, name)

    if old.get("deletionTimestamp"):
        extra = sorted(set(get_str_list(e, new, "finalizers", p("finalizers")))
                       - set(get_str_list(e, old, "finalizers", p("finalizers"))))
        if extra:
            listed = "[]string{" + ", ".join(f'"{f}"' for f in extra) + "}"
            e.forbidden(p("finalizers"), "no new finalizers can be added if the object is being "
                                         f"deleted, found new finalizers {listed}")
    e.immutable(p("name"), new.get("name", ""), old.get("name", ""))
    e.immutable(p("namespace"), new.get("namespace", ""), old.get("namespace", ""))
    for name in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
        if new.get(name) is not None:
            e.immutable(p(name), new.get(name), old.get(name))
    generation = opt_int(e, new, "generation", p("generation"))
    if generation is not None and generation < 0:
        e.invalid(p("generation"), generation, "must be greater than or equal to 0")
    validate_labels(e, get_str_map(e, new, "labels", p("labels")), p("labels"))
    validate_annotations(e, get_str_map(e, new, "annotations", p("annotations")),
                         p("annotations"))
    _validate_owner_references(e, new, p("ownerReferences"))
    for i, f in enumerate(get_str_list(e, new, "finalizers", p("finalizers"))):
        validate_kube_finalizer_name(e, f, index(p("finalizers"), i))


# ---------------------------------------------------------------------------------------------
# Label selectors


SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def selector_struct(sel: dict[str, Any]) -> Struct:
    """A LabelSelector as json.Marshal prints it: matchLabels, then matchExpressions."""
    out = Struct()
    if sel.get("matchLabels"):
        out["matchLabels"] = sel["matchLabels"]
    if sel.get("matchExpressions"):
        exprs = []
        for x in sel["matchExpressions"]:
            if not isinstance(x, dict):
                exprs.append(x)
                continue
            s = Struct(key=x.get("key", ""), operator=x.get("operator", ""))
            if x.get("values"):
                s["values"] = x["values"]
            exprs.append(s)
        out["matchExpressions"] = exprs
    return out


def validate_label_selector(e: Errors, sel: dict[str, Any], path: str) -> None:
    validate_labels(e, get_str_map(e, sel, "matchLabels", child(path, "matchLabels")),
                    child(path, "matchLabels"))
    exprs_path = child(path, "matchExpressions")
    for i, req in dict_items(e, get_list(e, sel, "matchExpressions", exprs_path), exprs_path):
        p = index(exprs_path, i)
        op = get_str(e, req, "operator", child(p, "operator"))
        values = get_str_list(e, req, "values", child(p, "values"))
        if op in ("In", "NotIn"):
            if not values:
                e.required(child(p, "values"),
                           "must be specified when `operator` is 'In' or 'NotIn'")
        elif op in ("Exists", "DoesNotExist"):
            if values:
                e.forbidden(child(p, "values"),
                            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
        else:
            e.invalid(child(p, "operator"), op, "not a valid selector operator")
        validate_label_name(e, get_str(e, req, "key", child(p, "key")), child(p, "key"))
        for j, v in enumerate(values):
            for msg in is_label_value(v):
                e.invalid(index(child(p, "values"), j), v, msg)


Requirement = tuple[str, str, tuple[str, ...]]


def selector_requirements(sel: dict[str, Any]) -> list[Requirement] | None:
    """metav1.LabelSelectorAsSelector: the requirements, or None when it cannot be built."""
    reqs: list[Requirement] = []
    labels = sel.get("matchLabels") or {}
    exprs = sel.get("matchExpressions") or []
    if not isinstance(labels, dict) or not isinstance(exprs, list):
        return None
    for k, v in labels.items():
        if not isinstance(v, str) or is_qualified_name(k) or is_label_value(v):
            return None
        reqs.append((k, "In", (v,)))
    for x in exprs:
        if not isinstance(x, dict):
            return None
        k, op, values = x.get("key"), x.get("operator"), x.get("values") or []
        if not isinstance(k, str) or is_qualified_name(k) or op not in SELECTOR_OPERATORS:
            return None
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            return None
        if (op in ("In", "NotIn")) != bool(values):
            return None
        if any(is_label_value(v) for v in values):
            return None
        reqs.append((k, op, tuple(values)))
    return reqs


def selector_matches(reqs: list[Requirement], labels: dict[str, str]) -> bool:
    for k, op, values in reqs:
        present = k in labels
        if op == "In" and not (present and labels[k] in values):
            return False
        if op == "NotIn" and present and labels[k] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def meta_of(e: Errors, obj: dict[str, Any]) -> dict[str, Any]:
    return get_dict(e, obj, "metadata", "metadata")
