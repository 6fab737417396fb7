"""apps/v1: Deployment and ReplicaSet (pkg/apis/apps/validation)."""

from __future__ import annotations

from typing import Any

from kubesvc.api.validation._field import (
    NEGATIVE,
    Errors,
    Struct,
    child,
    get_dict,
    int_or_str,
    opt_dict,
    opt_int,
)
from kubesvc.api.validation._meta import (
    selector_matches,
    selector_requirements,
    selector_struct,
    validate_label_selector,
    validate_object_meta,
    validate_object_meta_update,
)
from kubesvc.api.validation._strings import is_valid_percent, name_is_dns_subdomain
from kubesvc.api.validation.core_pod import validate_pod_template_spec


def _nonnegative(e: Errors, value: int | None, path: str) -> None:
    if value is not None and value < 0:
        e.invalid(path, value, NEGATIVE)


def _validate_selector_and_template(e: Errors, spec: dict[str, Any], kind: str) -> None:
    selector = opt_dict(e, spec, "selector", "spec.selector")
    if selector is None:
        e.required("spec.selector")
    else:
        validate_label_selector(e, selector, "spec.selector")
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            e.invalid("spec.selector", selector_struct(selector),
                      "empty selector is invalid for deployment")
    # A missing selector selects nothing (labels.Nothing()), so no template can match it.
    reqs = selector_requirements(selector) if selector is not None else None
    template = get_dict(e, spec, "template", "spec.template")
    if selector is not None and reqs is None:
        e.invalid("spec.selector", selector_struct(selector), "invalid label selector")
    else:
        meta = template.get("metadata") if isinstance(template.get("metadata"), dict) else {}
        labels = meta.get("labels") if isinstance(meta, dict) else None
        label_map = labels if isinstance(labels, dict) else {}
        if reqs is None or (reqs and not selector_matches(reqs, label_map)):
            e.invalid("spec.template.metadata.labels", labels,
                      "`selector` does not match template `labels`")
        validate_pod_template_spec(e, template, "spec.template")
        tspec = template.get("spec") if isinstance(template.get("spec"), dict) else {}
        restart = tspec.get("restartPolicy", "") if isinstance(tspec, dict) else ""
        if restart != "Always":
            e.not_supported("spec.template.spec.restartPolicy", restart, ("Always",))
        if isinstance(tspec, dict) and tspec.get("activeDeadlineSeconds") is not None:
            e.forbidden("spec.template.spec.activeDeadlineSeconds",
                        "activeDeadlineSeconds in ReplicaSet is not Supported")


def _int_or_percent(e: Errors, value: int | str | None, path: str) -> None:
    if isinstance(value, str):
        for msg in is_valid_percent(value):
            e.invalid(path, value, msg)
    elif isinstance(value, int):
        _nonnegative(e, value, path)


def _percent_value(value: int | str | None) -> int | None:
    """getIntOrPercentValue: 25 for "25%", the int itself, None for a malformed string."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and not is_valid_percent(value):
        return int(value[:-1])
    return None


def _validate_strategy(e: Errors, spec: dict[str, Any]) -> None:
    strategy = get_dict(e, spec, "strategy", "spec.strategy")
    kind = strategy.get("type", "")
    rolling = opt_dict(e, strategy, "rollingUpdate", "spec.strategy.rollingUpdate")
    if kind == "Recreate":
        if rolling is not None:
            e.forbidden("spec.strategy.rollingUpdate",
                        "may not be specified when strategy `type` is 'Recreate'")
    elif kind == "RollingUpdate":
        if rolling is None:
            e.required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil")
            return
        path = "spec.strategy.rollingUpdate"
        unavailable = int_or_str(e, rolling, "maxUnavailable", child(path, "maxUnavailable"))
        surge = int_or_str(e, rolling, "maxSurge", child(path, "maxSurge"))
        _int_or_percent(e, unavailable, child(path, "maxUnavailable"))
        _int_or_percent(e, surge, child(path, "maxSurge"))
        if (_percent_value(unavailable) or 0) == 0 and (_percent_value(surge) or 0) == 0:
            e.invalid(child(path, "maxUnavailable"), unavailable or 0,
                      "may not be 0 when `maxSurge` is 0")
        percent = _percent_value(unavailable)
        if isinstance(unavailable, str) and percent is not None and percent > 100:
            e.invalid(child(path, "maxUnavailable"), unavailable, "must not be greater than 100%")
    else:
        rolling_struct = None if rolling is None else Struct(
            MaxUnavailable=rolling.get("maxUnavailable"), MaxSurge=rolling.get("maxSurge"))
        e.not_supported("spec.strategy", Struct(Type=kind, RollingUpdate=rolling_struct),
                        ("Recreate", "RollingUpdate"))


def _validate_spec(e: Errors, spec: dict[str, Any], kind: str) -> None:
    _nonnegative(e, opt_int(e, spec, "replicas", "spec.replicas"), "spec.replicas")
    if kind == "ReplicaSet":
        _nonnegative(e, opt_int(e, spec, "minReadySeconds", "spec.minReadySeconds"),
                     "spec.minReadySeconds")
    _validate_selector_and_template(e, spec, kind)
    if kind != "Deployment":
        return
    _validate_strategy(e, spec)
    min_ready = opt_int(e, spec, "minReadySeconds", "spec.minReadySeconds") or 0
    _nonnegative(e, min_ready, "spec.minReadySeconds")
    _nonnegative(e, opt_int(e, spec, "revisionHistoryLimit", "spec.revisionHistoryLimit"),
                 "spec.revisionHistoryLimit")
    deadline = opt_int(e, spec, "progressDeadlineSeconds", "spec.progressDeadlineSeconds")
    if deadline is not None:
        _nonnegative(e, deadline, "spec.progressDeadlineSeconds")
        if deadline <= min_ready:
            e.invalid("spec.progressDeadlineSeconds", deadline,
                      "must be greater than minReadySeconds")


def validate_workload(e: Errors, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Deployment or ReplicaSet; in apps/v1 spec.selector may not change."""
    kind = str(obj.get("kind", ""))
    meta = get_dict(e, obj, "metadata", "metadata")
    spec = get_dict(e, obj, "spec", "spec")
    if old is None:
        validate_object_meta(e, meta, namespaced=True, name_fn=name_is_dns_subdomain)
    else:
        validate_object_meta_update(e, meta, get_dict(Errors(), old, "metadata", "metadata"))
    _validate_spec(e, spec, kind)
    if old is not None:
        old_spec = old.get("spec") if isinstance(old.get("spec"), dict) else {}
        new_sel = spec.get("selector")
        old_sel = old_spec.get("selector") if isinstance(old_spec, dict) else None
        e.immutable("spec.selector", selector_struct(new_sel) if isinstance(new_sel, dict)
                    else new_sel, selector_struct(old_sel) if isinstance(old_sel, dict)
                    else old_sel)
