"""coordination.k8s.io/v1 Lease: leader election and node heartbeats."""

from __future__ import annotations

from kubesvc.api.schema.dsl import INT32, STRING, model, prop
from kubesvc.api.schema.meta import MICRO_TIME, resource

LEASE_SPEC = model(
    "io.k8s.api.coordination.v1.LeaseSpec",
    "LeaseSpec is a specification of a Lease.",
    prop("holderIdentity", STRING, "holderIdentity contains the identity of the holder of a "
         "current lease."),
    prop("leaseDurationSeconds", INT32, "leaseDurationSeconds is a duration that candidates for a "
         "lease need to wait to force acquire it."),
    prop("acquireTime", MICRO_TIME, "acquireTime is a time when the current lease was acquired."),
    prop("renewTime", MICRO_TIME, "renewTime is a time when the current holder of a lease has "
         "last updated the lease."),
    prop("leaseTransitions", INT32, "leaseTransitions is the number of transitions of a lease "
         "between holders."),
    prop("strategy", STRING, "strategy indicates the strategy for picking the leader for "
         "coordinated leader election."),
    prop("preferredHolder", STRING, "preferredHolder signals to a lease holder that the lease has "
         "a more optimal holder and should be given up."),
)

LEASE = resource(
    "coordination.k8s.io/v1",
    "io.k8s.api.coordination.v1.Lease",
    "Lease defines a lease concept.",
    prop("spec", LEASE_SPEC, "spec contains the specification of the Lease."),
)
