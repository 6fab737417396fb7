"""Backend weights for the weighted schedulers, from the pods' `kubesvc.io/weight` annotation.

EndpointSlices carry no weights, so the proxy reads them from the pods themselves, keyed by pod
IP as endpoints are. Only pods with a non-default weight are remembered.
"""

from __future__ import annotations

from typing import Any

from kubesvc.proxy.schedulers import DEFAULT_WEIGHT, pod_weight

Obj = dict[str, Any]


def _pod_ips(pod: Obj) -> tuple[str, ...]:
    if (pod.get("spec") or {}).get("hostNetwork"):
        return ()  # the node's own address, shared with every host-network pod
    status = pod.get("status") or {}
    ips = [entry.get("ip") for entry in status.get("podIPs") or []] or [status.get("podIP")]
    return tuple(str(ip) for ip in ips if ip)


class PodWeights:
    def __init__(self) -> None:
        # pod IP -> (the pod, as namespace/name, and its weight), when not the default.
        self._weights: dict[str, tuple[str, int]] = {}
        self._ips: dict[str, tuple[str, ...]] = {}  # pod -> its IPs

    def weight(self, ip: str) -> int:
        entry = self._weights.get(ip)
        return DEFAULT_WEIGHT if entry is None else entry[1]

    def pod_changed(self, old: Obj | None, new: Obj | None) -> bool:
        """Record a pod add (old None), update or delete (new None); True if the weight of an
        address changed."""
        obj = new if new is not None else old
        assert obj is not None
        meta = obj["metadata"]
        pod = f"{meta.get('namespace', 'default')}/{meta['name']}"
        ips = self._ips.pop(pod, ())
        before = {ip: self.weight(ip) for ip in ips}
        for ip in ips:
            if self._weights.get(ip, (pod,))[0] == pod:  # not since taken by another pod
                self._weights.pop(ip, None)
        if new is not None:
            weight = pod_weight(new["metadata"].get("annotations"))
            ips = _pod_ips(new)
            if ips:
                self._ips[pod] = ips
            for ip in ips:
                before.setdefault(ip, self.weight(ip))
                if weight != DEFAULT_WEIGHT:
                    self._weights[ip] = (pod, weight)
        return any(self.weight(ip) != weight for ip, weight in before.items())
