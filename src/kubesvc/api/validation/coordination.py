"""coordination.k8s.io/v1: Lease (pkg/apis/coordination/validation)."""

from __future__ import annotations

from typing import Any

from kubesvc.api.validation._field import Errors, get_dict, opt_int, opt_str
from kubesvc.api.validation._meta import validate_object_meta, validate_object_meta_update
from kubesvc.api.validation._strings import is_qualified_name, name_is_dns_subdomain

LEASE_STRATEGIES = ("OldestEmulationVersion",)


def validate_lease(e: Errors, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    meta = get_dict(e, obj, "metadata", "metadata")
    if old is None:
        validate_object_meta(e, meta, namespaced=True, name_fn=name_is_dns_subdomain)
    else:
        validate_object_meta_update(e, meta, get_dict(Errors(), old, "metadata", "metadata"))
    spec = get_dict(e, obj, "spec", "spec")
    duration = opt_int(e, spec, "leaseDurationSeconds", "spec.leaseDurationSeconds")
    if duration is not None and duration <= 0:
        e.invalid("spec.leaseDurationSeconds", duration, "must be greater than 0")
    transitions = opt_int(e, spec, "leaseTransitions", "spec.leaseTransitions")
    if transitions is not None and transitions < 0:
        e.invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0")
    strategy = opt_str(e, spec, "strategy", "spec.strategy")
    if strategy is not None:
        if "/" not in strategy:
            if strategy not in LEASE_STRATEGIES:
                e.not_supported("spec.strategy.strategy", strategy, LEASE_STRATEGIES)
        else:
            for msg in is_qualified_name(strategy):
                e.invalid("spec.strategy.strategy", strategy, msg)
    holder = opt_str(e, spec, "preferredHolder", "spec.preferredHolder")
    if holder and not strategy:
        e.forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined")
    opt_str(e, spec, "holderIdentity", "spec.holderIdentity")
