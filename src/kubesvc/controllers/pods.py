"""Pod facts the workload controllers share: readiness, availability, ownership."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]


def condition(obj: Obj, kind: str) -> Obj | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def is_ready(pod: Obj) -> bool:
    cond = condition(pod, "Ready")
    return cond is not None and cond.get("status") == "True"


def is_available(pod: Obj, min_ready_seconds: int, now: datetime | None = None) -> bool:
    """Ready for at least minReadySeconds."""
    cond = condition(pod, "Ready")
    if cond is None or cond.get("status") != "True":
        return False
    if not min_ready_seconds:
        return True
    since = cond.get("lastTransitionTime")
    if not since:
        return False
    start = datetime.strptime(since, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return ((now or datetime.now(UTC)) - start).total_seconds() >= min_ready_seconds


def is_active(pod: Obj) -> bool:
    """Counts towards a ReplicaSet's replicas: not finished and not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def controller_of(obj: Obj) -> Obj | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def owner_ref(owner: Obj) -> Obj:
    meta = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": meta["name"],
            "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}


def set_condition(status: Obj, new: Obj) -> None:
    """Replace a condition by type, keeping lastTransitionTime when the status is unchanged."""
    conditions = status.setdefault("conditions", [])
    for i, cond in enumerate(conditions):
        if cond.get("type") == new["type"]:
            if cond.get("status") == new["status"]:
                new = dict(new, lastTransitionTime=cond.get("lastTransitionTime",
                                                             new.get("lastTransitionTime")))
            conditions[i] = new
            return
    conditions.append(new)


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def template_copy(template: Obj) -> Obj:
    return copy.deepcopy(template)
