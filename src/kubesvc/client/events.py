"""Recording core/v1 Events about objects, as `kubectl describe` shows them."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from kubesvc.api.errors import ApiError
from kubesvc.api.resources import of
from kubesvc.client.rest import Client

log = logging.getLogger(__name__)

EVENTS = of("v1", "Event")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def record(client: Client, obj: dict[str, Any], type_: str, reason: str, message: str,
                 component: str, host: str = "") -> None:
    """Best effort: an event that cannot be written is logged, never fatal."""
    meta = obj["metadata"]
    namespace = meta.get("namespace") or "default"
    now = _now()
    source = {"component": component, **({"host": host} if host else {})}
    event = {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": namespace},
        "involvedObject": {"kind": obj.get("kind", ""), "apiVersion": obj.get("apiVersion", ""),
                           "name": meta["name"], "namespace": meta.get("namespace", ""),
                           "uid": meta.get("uid", ""),
                           "resourceVersion": meta.get("resourceVersion", "")},
        "reason": reason, "message": message, "type": type_, "source": source,
        "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        "reportingComponent": component, "reportingInstance": host,
    }
    try:
        await client.create(EVENTS, event, namespace)
    except ApiError as err:
        log.debug("event %s on %s not recorded: %s", reason, meta["name"], err)
