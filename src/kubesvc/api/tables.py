"""Server-side `Table` output for `kubectl get`, column for column as Kubernetes prints it.

kubectl asks for `application/json;as=Table;v=v1;g=meta.k8s.io` and prints the server's columns
and cells as sent, so what `kubectl get` shows is decided here. Columns, cells and wording follow
Kubernetes' own printers (pkg/printers/internalversion/printers.go). Like the real API server,
every cell is produced in wide form (priority-1 columns included, nothing clipped): kubectl
hides the priority-1 columns itself unless `-o wide` is given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kubesvc.api.errors import bad_request
from kubesvc.api.selectors import format_label_selector

_Obj = Mapping[str, Any]
_Cells = list[Any]

# The Swagger docs Kubernetes' printers use as column descriptions, keyed `Type.field`.
_DOCS: dict[str, str] = {
    "PodStatus.podIP": (
        "podIP address allocated to the pod. Routable at least within the cluster. Empty if not "
        "yet allocated."
    ),
    "PodStatus.nominatedNodeName": (
        "nominatedNodeName is set only when this pod preempts other pods on the node, but it "
        "cannot be scheduled right away as preemption victims receive their graceful "
        "termination periods. This field does not guarantee that the pod will be scheduled on "
        "this node. Scheduler may decide to place the pod elsewhere if other nodes become "
        "available sooner. Scheduler may also decide to give the resources on this node to a "
        "higher priority pod that is created after preemption. As a result, this field may be "
        "different than PodSpec.nodeName when the pod is scheduled."
    ),
    "PodSpec.nodeName": (
        "NodeName indicates in which node this pod is scheduled. If empty, this pod is a "
        "candidate for scheduling by the scheduler defined in schedulerName. Once this field is "
        "set, the kubelet for this node becomes responsible for the lifecycle of this pod. This "
        "field should not be used to express a desire for the pod to be scheduled on a specific "
        "node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename"
    ),
    "PodSpec.readinessGates": (
        "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready "
        "when all its containers are ready AND all conditions specified in the readiness gates "
        "have status equal to \"True\" More info: "
        "https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates"
    ),
    "ServiceSpec.type": (
        "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are "
        "ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a "
        "cluster-internal IP address for load-balancing to endpoints. Endpoints are determined "
        "by the selector or if that is not specified, by manual construction of an Endpoints "
        "object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated "
        "and the endpoints are published as a set of endpoints rather than a virtual IP. "
        "\"NodePort\" builds on ClusterIP and allocates a port on every node which routes to "
        "the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates "
        "an external load-balancer (if supported in the current cloud) which routes to the same "
        "endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified "
        "externalName. Several other fields do not apply to ExternalName services. More info: "
        "https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-"
        "service-types"
    ),
    "ServiceSpec.clusterIP": (
        "clusterIP is the IP address of the service and is usually assigned randomly. If an "
        "address is specified manually, is in-range (as per system configuration), and is not "
        "in use, it will be allocated to the service; otherwise creation of the service will "
        "fail. This field may not be changed through updates unless the type field is also "
        "being changed to ExternalName (which requires this field to be blank) or the type "
        "field is being changed from ExternalName (in which case this field may optionally be "
        "specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a "
        "valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual "
        "IP), which is useful when direct endpoint connections are preferred and proxying is "
        "not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this "
        "field is specified when creating a Service of type ExternalName, creation will fail. "
        "This field will be wiped when updating a Service to type ExternalName. More info: "
        "https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-serv"
        "ice-proxies"
    ),
    "ServiceSpec.externalIPs": (
        "externalIPs is a list of IP addresses for which nodes in the cluster will also accept "
        "traffic for this service.  These IPs are not managed by Kubernetes.  The user is "
        "responsible for ensuring that traffic arrives at a node with this IP.  A common "
        "example is external load-balancers that are not part of the Kubernetes system."
    ),
    "ServiceSpec.ports": (
        "The list of ports that are exposed by this service. More info: "
        "https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-serv"
        "ice-proxies"
    ),
    "ServiceSpec.selector": (
        "Route service traffic to pods with label keys and values matching this selector. If "
        "empty or not present, the service is assumed to have an external process managing its "
        "endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, "
        "NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: "
        "https://kubernetes.io/docs/concepts/services-networking/service/"
    ),
    "Endpoints.subsets": (
        "The set of all endpoints is the union of all subsets. Addresses are placed into "
        "subsets according to the IPs they share. A single address with multiple ports, some of "
        "which are ready and some of which are not (because they come from different "
        "containers) will result in the address being displayed in different subsets for the "
        "different ports. No address will appear in both Addresses and NotReadyAddresses in the "
        "same subset. Sets of addresses and ports that comprise a service."
    ),
    "NodeSystemInfo.kubeletVersion": "Kubelet Version reported by the node.",
    "NodeSystemInfo.osImage": (
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy))."
    ),
    "NodeSystemInfo.kernelVersion": (
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."
    ),
    "NodeSystemInfo.containerRuntimeVersion": (
        "ContainerRuntime Version reported by the node through runtime remote API (e.g. "
        "containerd://1.4.2)."
    ),
    "NodeStatus.addresses": (
        "List of addresses reachable to the node. Queried from cloud provider, if available. "
        "More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This "
        "field is declared as mergeable, but the merge key is not sufficiently unique, which "
        "can cause data corruption when it is merged. Callers should instead use a "
        "full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should "
        "assume that addresses can change during the lifetime of a Node. However, there are "
        "some exceptions where this may not be possible, such as Pods that inherit a Node's "
        "address in its own status or consumers of the downward API (status.hostIP)."
    ),
    "Event.lastTimestamp": (
        "The time at which the most recent occurrence of this event was recorded."
    ),
    "Event.type": "Type of this event (Normal, Warning), new types could be added in the future",
    "Event.reason": (
        "This should be a short, machine understandable string that gives the reason for the "
        "transition into the object's current status."
    ),
    "Event.involvedObject": "The object that this event is about.",
    "Event.source": (
        "The component reporting this event. Should be a short machine understandable string."
    ),
    "Event.message": "A human-readable description of the status of this operation.",
    "Event.firstTimestamp": (
        "The time at which the event was first recorded. (Time of server receipt is in "
        "TypeMeta.)"
    ),
    "Event.count": "The number of times this event has occurred.",
    "ObjectReference.fieldPath": (
        "If referring to a piece of an object instead of an entire object, this string should "
        "contain a valid JSON/Go field access statement, such as "
        "desiredState.manifest.containers[2]. For example, if the object reference is to a "
        "container within a pod, this would take on a value like: \"spec.containers{name}\" "
        "(where \"name\" refers to the name of the container that triggered the event) or if no "
        "container name is specified \"spec.containers[2]\" (container with index 2 in this "
        "pod). This syntax is chosen only to have some well-defined way of referencing a part "
        "of an object."
    ),
    "Secret.type": (
        "Used to facilitate programmatic handling of secret data. More info: "
        "https://kubernetes.io/docs/concepts/configuration/secret/#secret-types"
    ),
    "Secret.data": (
        "Data contains the secret data. Each key must consist of alphanumeric characters, '-', "
        "'_' or '.'. The serialized form of the secret data is a base64 encoded string, "
        "representing the arbitrary (possibly non-string) data value here. Described in "
        "https://tools.ietf.org/html/rfc4648#section-4"
    ),
    "ServiceAccount.secrets": (
        "Secrets is a list of the secrets in the same namespace that pods running using this "
        "ServiceAccount are allowed to use. Pods are only limited to this list if this service "
        "account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". "
        "The \"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. "
        "Prefer separate namespaces to isolate access to mounted secrets. This field should not "
        "be used to find auto-generated service account token secrets for use outside of pods. "
        "Instead, tokens can be requested directly using the TokenRequest API, or service "
        "account token secrets can be manually created. More info: "
        "https://kubernetes.io/docs/concepts/configuration/secret"
    ),
    "ConfigMap.data": (
        "Data contains the configuration data. Each key must consist of alphanumeric "
        "characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the "
        "BinaryData field. The keys stored in Data must not overlap with the keys in the "
        "BinaryData field, this is enforced during validation process."
    ),
    "ReplicaSetSpec.replicas": (
        "Replicas is the number of desired pods. This is a pointer to distinguish between "
        "explicit zero and unspecified. Defaults to 1. More info: "
        "https://kubernetes.io/docs/concepts/workloads/controllers/replicaset"
    ),
    "ReplicaSetSpec.selector": (
        "Selector is a label query over pods that should match the replica count. If the "
        "selector is empty, it is defaulted to the labels present on the pod template. Label "
        "keys and values that must match in order to be controlled by this replica set. More "
        "info: "
        "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selec"
        "tors"
    ),
    "ReplicaSetStatus.replicas": (
        "Replicas is the most recently observed number of non-terminating pods. More info: "
        "https://kubernetes.io/docs/concepts/workloads/controllers/replicaset"
    ),
    "ReplicaSetStatus.readyReplicas": (
        "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition."
    ),
    "DeploymentStatus.updatedReplicas": (
        "Total number of non-terminating pods targeted by this deployment that have the desired "
        "template spec."
    ),
    "DeploymentStatus.availableReplicas": (
        "Total number of available non-terminating pods (ready for at least minReadySeconds) "
        "targeted by this deployment."
    ),
    "DeploymentSpec.selector": (
        "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be "
        "the ones affected by this deployment."
    ),
    "EndpointSlice.addressType": (
        "addressType specifies the type of address carried by this EndpointSlice. All addresses "
        "in this slice must be the same type. This field is immutable after creation. The "
        "following address types are currently supported: * IPv4: Represents an IPv4 Address. * "
        "IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name."
    ),
    "EndpointSlice.ports": (
        "ports specifies the list of network ports exposed by each endpoint in this slice. Each "
        "port must have a unique name. When ports is empty, it indicates that there are no "
        "defined ports. When a port is defined with a nil port value, it indicates \"all "
        "ports\". Each slice may include a maximum of 100 ports."
    ),
    "EndpointSlice.endpoints": (
        "endpoints is a list of unique endpoints in this slice. Each slice may include a "
        "maximum of 1000 endpoints."
    ),
    "LeaseSpec.holderIdentity": (
        "holderIdentity contains the identity of the holder of a current lease. If Coordinated "
        "Leader Election is used, the holder identity must be equal to the elected "
        "LeaseCandidate.metadata.name field."
    ),
    "ObjectMeta.name": (
        "Name must be unique within a namespace. Is required when creating resources, although "
        "some resources may allow a client to request the generation of an appropriate name "
        "automatically. Name is primarily intended for creation idempotence and configuration "
        "definition. Cannot be updated. More info: "
        "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
    ),
    "ObjectMeta.creationTimestamp": (
        "CreationTimestamp is a timestamp representing the server time when this object was "
        "created. It is not guaranteed to be set in happens-before order across separate "
        "operations. Clients may not set this value. It is represented in RFC3339 form and is "
        "in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
        "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#m"
        "etadata"
    ),
}

_CONTAINERS_DOC = "Names of each container in the template."
_IMAGES_DOC = "Images referenced by each container in the template."


def _col(name: str, description: str, *, type_: str = "string", priority: int = 0,
         format_: str = "") -> dict[str, Any]:
    return {"name": name, "type": type_, "format": format_, "description": description,
            "priority": priority}


_NAME = _col("Name", _DOCS["ObjectMeta.name"], format_="name")
_AGE = _col("Age", _DOCS["ObjectMeta.creationTimestamp"])


# --- time -----------------------------------------------------------------------------------

def human_duration(d: timedelta) -> str:
    """Kubernetes' duration.HumanDuration: `5s`, `3m20s`, `11h`, `2d3h`, `2y329d`, ..."""
    seconds = int(d.total_seconds())  # truncates toward zero, as Go's int() does
    # Up to two seconds in the future counts as now: clocks on different machines drift.
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if hours < 24 * 365 * 2:
        return f"{days}d"
    if hours < 24 * 365 * 8:
        return f"{days // 365}y{days % 365}d" if days % 365 else f"{days // 365}y"
    return f"{days // 365}y"


def _parse_time(value: Any) -> datetime | None:
    """An RFC3339 (or RFC3339 micro) timestamp; None when unset or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _since(value: Any, now: datetime) -> str:
    moment = value if isinstance(value, datetime) else _parse_time(value)
    if moment is None:
        return "<unknown>"
    return human_duration(now - moment)


def _age(obj: _Obj, now: datetime) -> str:
    return _since(_meta(obj).get("creationTimestamp"), now)


# --- small shared formatters ----------------------------------------------------------------

def _meta(obj: _Obj) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _spec(obj: _Obj) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def _status(obj: _Obj) -> Mapping[str, Any]:
    return obj.get("status") or {}


def _name(obj: _Obj) -> str:
    return str(_meta(obj).get("name", ""))


def _format_labels(labels: Mapping[str, str] | None) -> str:
    """labels.FormatLabels: `a=b,c=d` sorted, `<none>` when empty."""
    return ",".join(sorted(f"{k}={v}" for k, v in (labels or {}).items())) or "<none>"


def _containers(template_spec: Mapping[str, Any]) -> tuple[str, str]:
    containers = template_spec.get("containers") or []
    return (",".join(c.get("name", "") for c in containers),
            ",".join(c.get("image", "") for c in containers))


def _template_spec(obj: _Obj) -> Mapping[str, Any]:
    return (_spec(obj).get("template") or {}).get("spec") or {}


def _load_balancer(status: Mapping[str, Any]) -> list[str]:
    """The distinct ingress points of a load balancer status, sorted (IP, else hostname)."""
    points = {i.get("ip") or i.get("hostname") for i in
              (status.get("loadBalancer") or {}).get("ingress") or []}
    return sorted(p for p in points if p)


def _with_more(items: list[str], limit: int = 3, empty: str = "<unset>") -> str:
    """Kubernetes' listWithMoreString: the first three, then ` + N more...`."""
    shown = ",".join(items[:limit])
    if len(items) > limit:
        return f"{shown} + {len(items) - limit} more..."
    return shown or empty


def _join_host_port(host: str, port: Any) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _condition_true(conditions: Any, type_: str) -> bool:
    return any(c.get("type") == type_ and c.get("status") == "True" for c in conditions or [])


# --- Pod ------------------------------------------------------------------------------------

_POD_COLUMNS = (
    _NAME,
    _col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    _col("Status", "The aggregate status of the containers in this pod."),
    _col("Restarts", "The number of times the containers in this pod have been restarted and "
                     "when the last container in this pod has restarted."),
    _AGE,
    _col("IP", _DOCS["PodStatus.podIP"], priority=1),
    _col("Node", _DOCS["PodSpec.nodeName"], priority=1),
    _col("Nominated Node", _DOCS["PodStatus.nominatedNodeName"], priority=1),
    _col("Readiness Gates", _DOCS["PodSpec.readinessGates"], priority=1),
)


def _exit_reason(terminated: Mapping[str, Any]) -> str:
    """What a container that ended without a reason is called: `Signal:9` or `ExitCode:1`."""
    if terminated.get("signal"):
        return f"Signal:{terminated['signal']}"
    return f"ExitCode:{terminated.get('exitCode', 0)}"


def _finished_at(container_status: Mapping[str, Any]) -> datetime | None:
    terminated = (container_status.get("lastState") or {}).get("terminated") or {}
    return _parse_time(terminated.get("finishedAt"))


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None or (b is not None and b > a) else a


@dataclass
class _PodSummary:
    """READY, STATUS and RESTARTS of a pod, worked out as printPod does."""

    reason: str
    ready: int = 0
    total: int = 0
    restarts: int = 0
    last_restart: datetime | None = None
    # Restartable init containers (sidecars) keep counting once the pod is initialized.
    sidecar_restarts: int = 0
    sidecar_last_restart: datetime | None = None


def _summarize_init(pod: _Obj, summary: _PodSummary) -> bool:
    """Walk the init containers; True while one of them still holds the pod back."""
    spec, status = _spec(pod), _status(pod)
    init_specs = spec.get("initContainers") or []
    # Sidecars (restartPolicy Always) run alongside the app containers and count towards READY.
    sidecar_specs = [c for c in init_specs if c.get("restartPolicy") == "Always"]
    sidecars = {c.get("name") for c in sidecar_specs}
    summary.total += len(sidecar_specs)
    for index, cs in enumerate(status.get("initContainerStatuses") or []):
        count = int(cs.get("restartCount", 0))
        summary.restarts += count
        summary.last_restart = _latest(summary.last_restart, _finished_at(cs))
        is_sidecar = cs.get("name") in sidecars
        if is_sidecar:
            summary.sidecar_restarts += count
            summary.sidecar_last_restart = _latest(summary.sidecar_last_restart,
                                                   _finished_at(cs))
        state = cs.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting") or {}
        if terminated is not None and terminated.get("exitCode", 0) == 0:
            continue
        if is_sidecar and cs.get("started"):
            summary.ready += 1 if cs.get("ready") else 0
            continue
        if terminated is not None:
            summary.reason = "Init:" + (terminated.get("reason") or _exit_reason(terminated))
        elif waiting.get("reason") and waiting["reason"] != "PodInitializing":
            summary.reason = "Init:" + waiting["reason"]
        else:
            summary.reason = f"Init:{index}/{len(init_specs)}"
        return True
    return False


def _summarize_pod(pod: _Obj) -> _PodSummary:
    spec, status = _spec(pod), _status(pod)
    phase = status.get("phase", "")
    summary = _PodSummary(reason=status.get("reason") or phase,
                          total=len(spec.get("containers") or []))
    if any(c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated"
           for c in status.get("conditions") or []):
        summary.reason = "SchedulingGated"

    initializing = _summarize_init(pod, summary)
    if not initializing or _condition_true(status.get("conditions"), "Initialized"):
        # Once initialized, only sidecar restarts still count next to the app containers'.
        summary.restarts = summary.sidecar_restarts
        summary.last_restart = summary.sidecar_last_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            summary.restarts += int(cs.get("restartCount", 0))
            summary.last_restart = _latest(summary.last_restart, _finished_at(cs))
            state = cs.get("state") or {}
            waiting, terminated = state.get("waiting") or {}, state.get("terminated")
            if waiting.get("reason"):
                summary.reason = waiting["reason"]
            elif terminated is not None:
                summary.reason = terminated.get("reason") or _exit_reason(terminated)
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                summary.ready += 1
        # A container that completed next to one still running does not make the pod Completed.
        if summary.reason == "Completed" and has_running:
            ready = _condition_true(status.get("conditions"), "Ready")
            summary.reason = "Running" if ready else "NotReady"

    if _meta(pod).get("deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            summary.reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            summary.reason = "Terminating"
    return summary


def _readiness_gates(pod: _Obj) -> str:
    gates = _spec(pod).get("readinessGates") or []
    if not gates:
        return "<none>"
    conditions = _status(pod).get("conditions") or []
    passed = 0
    for gate in gates:
        match = next((c for c in conditions if c.get("type") == gate.get("conditionType")), None)
        passed += 1 if match is not None and match.get("status") == "True" else 0
    return f"{passed}/{len(gates)}"


def _pod_cells(pod: _Obj, now: datetime) -> _Cells:
    s = _summarize_pod(pod)
    restarts = str(s.restarts)
    if s.restarts and s.last_restart is not None:
        restarts = f"{s.restarts} ({_since(s.last_restart, now)} ago)"
    status = _status(pod)
    pod_ips = status.get("podIPs") or []
    pod_ip = (pod_ips[0].get("ip") if pod_ips else status.get("podIP")) or "<none>"
    return [_name(pod), f"{s.ready}/{s.total}", s.reason, restarts, _age(pod, now),
            pod_ip, _spec(pod).get("nodeName") or "<none>",
            status.get("nominatedNodeName") or "<none>", _readiness_gates(pod)]


def _pod_conditions(pod: _Obj) -> list[dict[str, str]]:
    """Row conditions mark finished pods, as the real server does."""
    phase = _status(pod).get("phase")
    if phase == "Succeeded":
        message = "The pod has completed successfully."
    elif phase == "Failed":
        message = "The pod failed."
    else:
        return []
    return [{"type": "Completed", "status": "True", "reason": phase, "message": message}]


# --- Service, Endpoints, EndpointSlice ------------------------------------------------------

_SERVICE_COLUMNS = (
    _NAME,
    _col("Type", _DOCS["ServiceSpec.type"]),
    _col("Cluster-IP", _DOCS["ServiceSpec.clusterIP"]),
    _col("External-IP", _DOCS["ServiceSpec.externalIPs"]),
    _col("Port(s)", _DOCS["ServiceSpec.ports"]),
    _AGE,
    _col("Selector", _DOCS["ServiceSpec.selector"], priority=1),
)


def _service_external_ip(svc: _Obj, svc_type: str) -> str:
    spec = _spec(svc)
    external_ips = list(spec.get("externalIPs") or [])
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external_ips) or "<none>"
    if svc_type == "LoadBalancer":
        return ",".join(_load_balancer(_status(svc)) + external_ips) or "<pending>"
    if svc_type == "ExternalName":
        return str(spec.get("externalName", ""))
    return "<unknown>"


def _service_ports(ports: list[Mapping[str, Any]]) -> str:
    pieces = []
    for p in ports:
        protocol = p.get("protocol") or "TCP"
        node_port = p.get("nodePort") or 0
        pieces.append(f"{p.get('port')}:{node_port}/{protocol}" if node_port > 0
                      else f"{p.get('port')}/{protocol}")
    return ",".join(pieces) or "<none>"


def _service_cells(svc: _Obj, now: datetime) -> _Cells:
    spec = _spec(svc)
    # Stored Services are defaulted; the fallbacks only cover objects that were not.
    svc_type = spec.get("type") or "ClusterIP"
    cluster_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [_name(svc), svc_type, cluster_ips[0] if cluster_ips else "<none>",
            _service_external_ip(svc, svc_type), _service_ports(spec.get("ports") or []),
            _age(svc, now), _format_labels(spec.get("selector"))]


_ENDPOINTS_COLUMNS = (_NAME, _col("Endpoints", _DOCS["Endpoints.subsets"]), _AGE)


def _endpoints_addresses(ep: _Obj) -> str:
    """formatEndpoints: `ip:port` for every address and port, three shown at most."""
    subsets = ep.get("subsets") or []
    if not subsets:
        return "<none>"
    items: list[str] = []
    for subset in subsets:
        ips = [a.get("ip", "") for a in subset.get("addresses") or []]
        ports = subset.get("ports") or []
        if not ports:  # a headless Service may have no ports at all
            items.extend(ips)
        for port in ports:
            items.extend(_join_host_port(ip, port.get("port", 0)) for ip in ips)
    return _with_more(items, empty="")


def _endpoints_cells(ep: _Obj, now: datetime) -> _Cells:
    return [_name(ep), _endpoints_addresses(ep), _age(ep, now)]


_ENDPOINT_SLICE_COLUMNS = (
    _NAME,
    _col("AddressType", _DOCS["EndpointSlice.addressType"]),
    _col("Ports", _DOCS["EndpointSlice.ports"]),
    _col("Endpoints", _DOCS["EndpointSlice.endpoints"]),
    _AGE,
)


def _endpoint_slice_cells(es: _Obj, now: datetime) -> _Cells:
    ports = [str(p["port"]) if p.get("port") is not None
             else p["name"] if p.get("name") is not None else "*"
             for p in es.get("ports") or []]
    addresses = [a for e in es.get("endpoints") or [] for a in e.get("addresses") or []]
    return [_name(es), es.get("addressType", ""), _with_more(ports), _with_more(addresses),
            _age(es, now)]


# --- Deployment, ReplicaSet -----------------------------------------------------------------

_DEPLOYMENT_COLUMNS = (
    _NAME,
    _col("Ready", "Number of the pod with ready state"),
    _col("Up-to-date", _DOCS["DeploymentStatus.updatedReplicas"]),
    _col("Available", _DOCS["DeploymentStatus.availableReplicas"]),
    _AGE,
    _col("Containers", _CONTAINERS_DOC, priority=1),
    _col("Images", _IMAGES_DOC, priority=1),
    _col("Selector", _DOCS["DeploymentSpec.selector"], priority=1),
)


def _desired_replicas(obj: _Obj) -> int:
    replicas = _spec(obj).get("replicas")
    return 1 if replicas is None else int(replicas)  # apps/v1 defaults replicas to 1


def _deployment_cells(d: _Obj, now: datetime) -> _Cells:
    status = _status(d)
    names, images = _containers(_template_spec(d))
    return [_name(d), f"{status.get('readyReplicas', 0)}/{_desired_replicas(d)}",
            status.get("updatedReplicas", 0), status.get("availableReplicas", 0), _age(d, now),
            names, images, format_label_selector(_spec(d).get("selector"))]


_REPLICA_SET_COLUMNS = (
    _NAME,
    _col("Desired", _DOCS["ReplicaSetSpec.replicas"], type_="integer"),
    _col("Current", _DOCS["ReplicaSetStatus.replicas"], type_="integer"),
    _col("Ready", _DOCS["ReplicaSetStatus.readyReplicas"], type_="integer"),
    _AGE,
    _col("Containers", _CONTAINERS_DOC, priority=1),
    _col("Images", _IMAGES_DOC, priority=1),
    _col("Selector", _DOCS["ReplicaSetSpec.selector"], priority=1),
)


def _replica_set_cells(rs: _Obj, now: datetime) -> _Cells:
    status = _status(rs)
    names, images = _containers(_template_spec(rs))
    # metav1.FormatLabelSelector: unlike a Deployment's, an empty selector reads `<none>`.
    selector = format_label_selector(_spec(rs).get("selector")) or "<none>"
    return [_name(rs), _desired_replicas(rs), status.get("replicas", 0),
            status.get("readyReplicas", 0), _age(rs, now), names, images, selector]


# --- Node, Namespace ------------------------------------------------------------------------

_NODE_COLUMNS = (
    _NAME,
    _col("Status", "The status of the node"),
    _col("Roles", "The roles of the node"),
    _AGE,
    _col("Version", _DOCS["NodeSystemInfo.kubeletVersion"]),
    _col("Internal-IP", _DOCS["NodeStatus.addresses"], priority=1),
    _col("External-IP", _DOCS["NodeStatus.addresses"], priority=1),
    _col("OS-Image", _DOCS["NodeSystemInfo.osImage"], priority=1),
    _col("Kernel-Version", _DOCS["NodeSystemInfo.kernelVersion"], priority=1),
    _col("Container-Runtime", _DOCS["NodeSystemInfo.containerRuntimeVersion"], priority=1),
)

_ROLE_PREFIX = "node-role.kubernetes.io/"


def _node_roles(node: _Obj) -> str:
    roles = set()
    for key, value in (_meta(node).get("labels") or {}).items():
        if key.startswith(_ROLE_PREFIX) and key[len(_ROLE_PREFIX):]:
            roles.add(key[len(_ROLE_PREFIX):])
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return ",".join(sorted(roles)) or "<none>"


def _node_address(node: _Obj, type_: str) -> str:
    return next((a.get("address", "") for a in _status(node).get("addresses") or []
                 if a.get("type") == type_), "<none>")


def _node_cells(node: _Obj, now: datetime) -> _Cells:
    status = _status(node)
    # The last Ready condition wins, as it does in the map printNode builds.
    ready = [c for c in status.get("conditions") or [] if c.get("type") == "Ready"]
    states = ["Unknown" if not ready else
              "Ready" if ready[-1].get("status") == "True" else "NotReady"]
    if _spec(node).get("unschedulable"):
        states.append("SchedulingDisabled")
    info = status.get("nodeInfo") or {}
    return [_name(node), ",".join(states), _node_roles(node), _age(node, now),
            info.get("kubeletVersion", ""), _node_address(node, "InternalIP"),
            _node_address(node, "ExternalIP"), info.get("osImage") or "<unknown>",
            info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>"]


_NAMESPACE_COLUMNS = (_NAME, _col("Status", "The status of the namespace"), _AGE)


def _namespace_cells(ns: _Obj, now: datetime) -> _Cells:
    return [_name(ns), _status(ns).get("phase", ""), _age(ns, now)]


# --- ConfigMap, Secret, ServiceAccount, Lease -----------------------------------------------

_CONFIG_MAP_COLUMNS = (_NAME, _col("Data", _DOCS["ConfigMap.data"]), _AGE)


def _config_map_cells(cm: _Obj, now: datetime) -> _Cells:
    return [_name(cm), len(cm.get("data") or {}) + len(cm.get("binaryData") or {}), _age(cm, now)]


_SECRET_COLUMNS = (
    _NAME, _col("Type", _DOCS["Secret.type"]), _col("Data", _DOCS["Secret.data"]), _AGE,
)


def _secret_cells(secret: _Obj, now: datetime) -> _Cells:
    return [_name(secret), secret.get("type", ""), len(secret.get("data") or {}),
            _age(secret, now)]


_SERVICE_ACCOUNT_COLUMNS = (_NAME, _col("Secrets", _DOCS["ServiceAccount.secrets"]), _AGE)


def _service_account_cells(sa: _Obj, now: datetime) -> _Cells:
    return [_name(sa), len(sa.get("secrets") or []), _age(sa, now)]


_LEASE_COLUMNS = (_NAME, _col("Holder", _DOCS["LeaseSpec.holderIdentity"]), _AGE)


def _lease_cells(lease: _Obj, now: datetime) -> _Cells:
    return [_name(lease), _spec(lease).get("holderIdentity") or "", _age(lease, now)]


# --- Event ----------------------------------------------------------------------------------

_EVENT_COLUMNS = (
    _col("Last Seen", _DOCS["Event.lastTimestamp"]),
    _col("Type", _DOCS["Event.type"]),
    _col("Reason", _DOCS["Event.reason"]),
    _col("Object", _DOCS["Event.involvedObject"]),
    _col("Subobject", _DOCS["ObjectReference.fieldPath"], priority=1),
    _col("Source", _DOCS["Event.source"], priority=1),
    _col("Message", _DOCS["Event.message"]),
    _col("First Seen", _DOCS["Event.firstTimestamp"], priority=1),
    _col("Count", _DOCS["Event.count"], priority=1),
    _col("Name", _DOCS["ObjectMeta.name"], priority=1, format_="name"),
)


def _event_source(event: _Obj) -> str:
    """`component, host`, falling back to the reporting controller and instance."""
    source = event.get("source") or {}
    component = source.get("component") or event.get("reportingComponent") or ""
    host = source.get("host") or event.get("reportingInstance") or ""
    return f"{component}, {host}" if host else component


def _event_cells(event: _Obj, now: datetime) -> _Cells:
    # Events written through events.k8s.io carry eventTime and series instead of timestamps.
    first = _since(event.get("firstTimestamp") or event.get("eventTime"), now)
    last = _since(event["lastTimestamp"], now) if event.get("lastTimestamp") else first
    count = event.get("count") or 1
    series = event.get("series")
    if series is not None:
        last = _since(series.get("lastObservedTime"), now)
        count = series.get("count", 0)
    involved = event.get("involvedObject") or {}
    kind = str(involved.get("kind", "")).lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    return [last, event.get("type", ""), event.get("reason", ""), target,
            involved.get("fieldPath", ""), _event_source(event),
            str(event.get("message", "")).strip(), first, count, _name(event)]


# --- Ingress, IngressClass ------------------------------------------------------------------

_INGRESS_COLUMNS = (
    _NAME,
    _col("Class", "The name of the IngressClass resource that should be used for additional "
                  "configuration"),
    _col("Hosts", "Hosts that incoming requests are matched against before the ingress rule"),
    _col("Address", "Address is a list containing ingress points for the load-balancer"),
    _col("Ports", "Ports of TLS configurations that open"),
    _AGE,
)


def _ingress_hosts(rules: list[Mapping[str, Any]]) -> str:
    """formatHosts: up to three hosts, `*` when no rule names one."""
    hosts: list[str] = []
    more = False
    for rule in rules:
        if len(hosts) == 3:
            more = True
            break
        if rule.get("host"):
            hosts.append(rule["host"])
    if not hosts:
        return "*"
    # Kubernetes counts the rules past the third, whether they name a host or not.
    return ",".join(hosts) + (f" + {len(rules) - 3} more..." if more else "")


def _ingress_cells(ing: _Obj, now: datetime) -> _Cells:
    spec = _spec(ing)
    return [_name(ing), spec.get("ingressClassName") or "<none>",
            _ingress_hosts(spec.get("rules") or []), ",".join(_load_balancer(_status(ing))),
            "80, 443" if spec.get("tls") else "80", _age(ing, now)]


_INGRESS_CLASS_COLUMNS = (
    _NAME,
    _col("Controller", "Controller that is responsible for handling this class"),
    _col("Parameters", "A reference to a resource with additional parameters"),
    _AGE,
)


def _ingress_class_cells(ic: _Obj, now: datetime) -> _Cells:
    spec = _spec(ic)
    params = spec.get("parameters")
    shown = "<none>"
    if params is not None:
        group = f".{params['apiGroup']}" if params.get("apiGroup") is not None else ""
        shown = f"{params.get('kind', '')}{group}/{params.get('name', '')}"
    return [_name(ic), spec.get("controller", ""), shown, _age(ic, now)]


# --- the table ------------------------------------------------------------------------------

def _default_cells(obj: _Obj, now: datetime) -> _Cells:
    return [_name(obj), _age(obj, now)]


@dataclass(frozen=True)
class _Printer:
    columns: tuple[dict[str, Any], ...]
    cells: Callable[[_Obj, datetime], _Cells]
    conditions: Callable[[_Obj], list[dict[str, str]]] | None = None


_PRINTERS: dict[str, _Printer] = {
    "Pod": _Printer(_POD_COLUMNS, _pod_cells, _pod_conditions),
    "Service": _Printer(_SERVICE_COLUMNS, _service_cells),
    "Endpoints": _Printer(_ENDPOINTS_COLUMNS, _endpoints_cells),
    "EndpointSlice": _Printer(_ENDPOINT_SLICE_COLUMNS, _endpoint_slice_cells),
    "Deployment": _Printer(_DEPLOYMENT_COLUMNS, _deployment_cells),
    "ReplicaSet": _Printer(_REPLICA_SET_COLUMNS, _replica_set_cells),
    "Node": _Printer(_NODE_COLUMNS, _node_cells),
    "Namespace": _Printer(_NAMESPACE_COLUMNS, _namespace_cells),
    "ConfigMap": _Printer(_CONFIG_MAP_COLUMNS, _config_map_cells),
    "Secret": _Printer(_SECRET_COLUMNS, _secret_cells),
    "ServiceAccount": _Printer(_SERVICE_ACCOUNT_COLUMNS, _service_account_cells),
    "Event": _Printer(_EVENT_COLUMNS, _event_cells),
    "Ingress": _Printer(_INGRESS_COLUMNS, _ingress_cells),
    "IngressClass": _Printer(_INGRESS_CLASS_COLUMNS, _ingress_class_cells),
    "Lease": _Printer(_LEASE_COLUMNS, _lease_cells),
}
_DEFAULT_PRINTER = _Printer((_NAME, _AGE), _default_cells)

_INCLUDE_OBJECT = ("None", "Metadata", "Object")


def _row_object(obj: _Obj, include_object: str) -> dict[str, Any] | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return dict(obj)
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": dict(_meta(obj))}


def to_table(kind: str, objects: list[dict[str, Any]], *, include_object: str = "Metadata",
             now: datetime | None = None, resource_version: str = "") -> dict[str, Any]:
    """A meta.k8s.io/v1 Table of `objects` (all of one `kind`), as the real server renders it.

    `include_object` is the request's includeObject: `None` leaves `row.object` out,
    `Metadata` (the default, also for "") gives a PartialObjectMetadata, `Object` the object
    itself. Any other value is a 400, as it is in Kubernetes.
    """
    include = include_object or "Metadata"
    if include not in _INCLUDE_OBJECT:
        raise bad_request(f'unrecognized includeObject value: "{include_object}"')
    printer = _PRINTERS.get(kind, _DEFAULT_PRINTER)
    moment = now or datetime.now(UTC)
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": printer.cells(obj, moment)}
        conditions = printer.conditions(obj) if printer.conditions else []
        if conditions:
            row["conditions"] = conditions
        row_object = _row_object(obj, include)
        if row_object is not None:
            row["object"] = row_object
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        # ListMeta drops an empty resourceVersion (omitempty), so does this.
        "metadata": {"resourceVersion": resource_version} if resource_version else {},
        "columnDefinitions": [dict(c) for c in printer.columns],
        "rows": rows,
    }
