"""Which endpoints a service port sends traffic to, per traffic policy (kube-proxy's
pkg/proxy/topology.go CategorizeEndpoints, without topology hints)."""

from __future__ import annotations

from dataclasses import dataclass

from kubesvc.proxy.types import Endpoint, ServicePort


@dataclass(frozen=True, slots=True)
class Categorized:
    cluster: tuple[Endpoint, ...]  # for "Cluster" traffic policy
    local: tuple[Endpoint, ...]  # for "Local" traffic policy
    reachable: tuple[Endpoint, ...]  # every endpoint this node may send traffic to
    has_any: bool  # the service has usable endpoints somewhere, not only here


def categorize_endpoints(svc: ServicePort, endpoints: tuple[Endpoint, ...]) -> Categorized:
    """Ready endpoints are used; only when there are none, serving-terminating ones are, so
    connections drain instead of being refused while a rollout replaces every pod."""
    cluster: tuple[Endpoint, ...] = ()
    has_any = False
    if svc.uses_cluster_endpoints:
        cluster = tuple(ep for ep in endpoints if ep.ready) or tuple(
            ep for ep in endpoints if ep.serving and ep.terminating
        )
        has_any = bool(cluster)
    if not svc.uses_local_endpoints:
        return Categorized(cluster, (), cluster, has_any)

    usable = [ep for ep in endpoints if ep.ready or (ep.serving and ep.terminating)]
    has_any = has_any or bool(usable)
    local = tuple(ep for ep in endpoints if ep.local and ep.ready)
    falls_back = False
    if not local:
        local = tuple(ep for ep in endpoints if ep.local and ep.serving and ep.terminating)
        falls_back = bool(local)
    if not svc.uses_cluster_endpoints:
        return Categorized((), local, local, has_any)
    if not falls_back:
        # local holds only ready endpoints, all of which are in cluster already.
        return Categorized(cluster, local, cluster, has_any)
    merged = {str(ep): ep for ep in (*cluster, *local)}
    return Categorized(cluster, local, tuple(sorted(merged.values())), has_any)


@dataclass(frozen=True, slots=True)
class PolicyChains:
    """Where a service port's traffic goes under its traffic policies, in the mode's own
    names for its cluster-wide and node-local endpoint chains."""

    uses_cluster: bool
    uses_local: bool
    internal: str  # the chain for traffic from inside the cluster
    has_internal: bool
    external: str  # the chain for traffic from outside (NodePort, LB, external IPs)
    has_external: bool
    uses_external: bool


def policy_chains(svc: ServicePort, eps: Categorized, cluster_chain: str,
                  local_chain: str) -> PolicyChains:
    internal, has_internal = cluster_chain, eps.has_any
    if svc.internal_policy_local:
        internal, has_internal = local_chain, bool(eps.local)
    external, has_external = cluster_chain, eps.has_any
    if svc.external_policy_local:
        external, has_external = local_chain, bool(eps.local)
    return PolicyChains(
        uses_cluster=bool(eps.cluster) and svc.uses_cluster_endpoints,
        uses_local=bool(eps.local) and svc.uses_local_endpoints,
        internal=internal, has_internal=has_internal,
        external=external, has_external=has_external,
        uses_external=eps.has_any and svc.externally_accessible)
