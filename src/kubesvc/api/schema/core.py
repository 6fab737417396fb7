"""core/v1 kinds other than Pod: Namespace, Service, Endpoints, ConfigMap, Secret, Event, Node,
ServiceAccount and the Binding a pod is scheduled with."""

from __future__ import annotations

from kubesvc.api.schema.containers import PROTOCOL
from kubesvc.api.schema.dsl import (
    BOOL,
    BYTES,
    FREE,
    INT32,
    INT64,
    STRING,
    STRINGS,
    array,
    enum,
    map_of,
    model,
    prop,
)
from kubesvc.api.schema.meta import CONDITION, INT_OR_STRING, MICRO_TIME, QUANTITY, TIME, resource
from kubesvc.api.schema.pods import LOCAL_OBJECT_REFERENCE, TAINT_EFFECT

NAMESPACE_PHASE = enum("Active", "Terminating")
SERVICE_TYPE = enum("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
SERVICE_AFFINITY = enum("ClientIP", "None")
SERVICE_EXTERNAL_TRAFFIC_POLICY = enum("Cluster", "Local")
IP_FAMILY = enum("IPv4", "IPv6", "")
IP_FAMILY_POLICY = enum("SingleStack", "PreferDualStack", "RequireDualStack")
SERVICE_INTERNAL_TRAFFIC_POLICY = enum("Cluster", "Local")
NODE_PHASE = enum("Pending", "Running", "Terminated")

NAMESPACE_SPEC = model(
    "io.k8s.api.core.v1.NamespaceSpec",
    "NamespaceSpec describes the attributes on a Namespace.",
    prop("finalizers", STRINGS, "Finalizers is an opaque list of values that must be empty to "
         "permanently remove object from storage."),
)

NAMESPACE_CONDITION = model(
    "io.k8s.api.core.v1.NamespaceCondition",
    "NamespaceCondition contains details about state of namespace.",
    prop("type", STRING, "Type of namespace controller condition.", required=True),
    prop("status", STRING, "Status of the condition, one of True, False, Unknown.", required=True),
    prop("lastTransitionTime", TIME, "Last time the condition transitioned from one status to "
         "another."),
    prop("reason", STRING, "Unique, one-word, CamelCase reason for the condition's last "
         "transition."),
    prop("message", STRING, "Human-readable message indicating details about last transition."),
)

NAMESPACE_STATUS = model(
    "io.k8s.api.core.v1.NamespaceStatus",
    "NamespaceStatus is information about the current status of a Namespace.",
    prop("phase", NAMESPACE_PHASE, "Phase is the current lifecycle phase of the namespace."),
    prop("conditions", array(NAMESPACE_CONDITION, merge="type"), "Represents the latest available "
         "observations of a namespace's current state."),
)

NAMESPACE = resource(
    "v1",
    "io.k8s.api.core.v1.Namespace",
    "Namespace provides a scope for Names.",
    prop("spec", NAMESPACE_SPEC, "Spec defines the behavior of the Namespace."),
    prop("status", NAMESPACE_STATUS, "Status describes the current status of a Namespace."),
)

SERVICE_PORT = model(
    "io.k8s.api.core.v1.ServicePort",
    "ServicePort contains information on service's port.",
    prop("name", STRING, "The name of this port within the service."),
    prop("protocol", PROTOCOL, "The IP protocol for this port."),
    prop("appProtocol", STRING, "The application protocol for this port."),
    prop("port", INT32, "The port that will be exposed by this service.", required=True),
    prop("targetPort", INT_OR_STRING, "Number or name of the port to access on the pods targeted "
         "by the service."),
    prop("nodePort", INT32, "The port on each node on which this service is exposed when type is "
         "NodePort or LoadBalancer."),
)

CLIENT_IP_CONFIG = model(
    "io.k8s.api.core.v1.ClientIPConfig",
    "ClientIPConfig represents the configurations of Client IP based session affinity.",
    prop("timeoutSeconds", INT32, "timeoutSeconds specifies the seconds of ClientIP type session "
         "sticky time."),
)

SESSION_AFFINITY_CONFIG = model(
    "io.k8s.api.core.v1.SessionAffinityConfig",
    "SessionAffinityConfig represents the configurations of session affinity.",
    prop("clientIP", CLIENT_IP_CONFIG, "clientIP contains the configurations of Client IP based "
         "session affinity."),
)

SERVICE_SPEC = model(
    "io.k8s.api.core.v1.ServiceSpec",
    "ServiceSpec describes the attributes that a user creates on a service.",
    prop("ports", array(SERVICE_PORT, merge="port", keys=("port", "protocol")), "The list of "
         "ports that are exposed by this service."),
    prop("selector", map_of(), "Route service traffic to pods with label keys and values matching "
         "this selector."),
    prop("clusterIP", STRING, "clusterIP is the IP address of the service and is usually assigned "
         "randomly."),
    prop("clusterIPs", STRINGS, "ClusterIPs is a list of IP addresses assigned to this service, "
         "and are usually assigned randomly."),
    prop("type", SERVICE_TYPE, "type determines how the Service is exposed."),
    prop("externalIPs", STRINGS, "externalIPs is a list of IP addresses for which nodes in the "
         "cluster will also accept traffic for this service."),
    prop("sessionAffinity", SERVICE_AFFINITY, "Supports \"ClientIP\" and \"None\"."),
    prop("loadBalancerIP", STRING, "Only applies to Service Type: LoadBalancer."),
    prop("loadBalancerSourceRanges", STRINGS, "If specified and supported by the platform, this "
         "will restrict traffic through the cloud-provider load-balancer will be restricted to "
         "the specified client IPs."),
    prop("externalName", STRING, "externalName is the external reference that discovery "
         "mechanisms will return as an alias for this service (e.g. a DNS CNAME record)."),
    prop("externalTrafficPolicy", SERVICE_EXTERNAL_TRAFFIC_POLICY, "externalTrafficPolicy "
         "describes how nodes distribute service traffic they receive on one of the Service's "
         "\"externally-facing\" addresses (NodePorts, ExternalIPs, and LoadBalancer IPs)."),
    prop("healthCheckNodePort", INT32, "healthCheckNodePort specifies the healthcheck nodePort "
         "for the service."),
    prop("publishNotReadyAddresses", BOOL, "publishNotReadyAddresses indicates that any agent "
         "which deals with endpoints for this Service should disregard any indications of "
         "ready/not-ready."),
    prop("sessionAffinityConfig", SESSION_AFFINITY_CONFIG, "sessionAffinityConfig contains the "
         "configurations of session affinity."),
    prop("ipFamilies", array(IP_FAMILY, list_type="atomic"), "IPFamilies is a list of IP families "
         "(IPv4, IPv6) assigned to this service."),
    prop("ipFamilyPolicy", IP_FAMILY_POLICY, "IPFamilyPolicy represents the dual-stack-ness "
         "requested or required by this Service."),
    prop("allocateLoadBalancerNodePorts", BOOL, "allocateLoadBalancerNodePorts defines if "
         "NodePorts will be automatically allocated for services with type LoadBalancer."),
    prop("loadBalancerClass", STRING, "loadBalancerClass is the class of the load balancer "
         "implementation this Service belongs to."),
    prop("internalTrafficPolicy", SERVICE_INTERNAL_TRAFFIC_POLICY, "InternalTrafficPolicy "
         "describes how nodes distribute service traffic they receive on the ClusterIP. If set to "
         "\"Local\", the proxy will assume that pods only want to talk to endpoints of the "
         "service on the same node as the pod, dropping the traffic if there are no local "
         "endpoints."),
    prop("trafficDistribution", STRING, "TrafficDistribution offers a way to express preferences "
         "for how traffic is distributed to Service endpoints."),
)

PORT_STATUS = model(
    "io.k8s.api.core.v1.PortStatus",
    "PortStatus represents the error condition of a service port.",
    prop("port", INT32, "Port is the port number of the service port of which status is recorded "
         "here.", required=True),
    prop("protocol", PROTOCOL, "Protocol is the protocol of the service port of which status is "
         "recorded here: TCP, UDP or SCTP.", required=True),
    prop("error", STRING, "Error records the problem with the service port, as a CamelCase name "
         "(foo.example.com/CamelCase for cloud providers' own)."),
)

LOAD_BALANCER_INGRESS = model(
    "io.k8s.api.core.v1.LoadBalancerIngress",
    "LoadBalancerIngress represents the status of a load-balancer ingress point: traffic intended "
    "for the service should be sent to an ingress point.",
    prop("ip", STRING, "IP is set for load-balancer ingress points that are IP based (typically "
         "GCE or OpenStack load-balancers)."),
    prop("hostname", STRING, "Hostname is set for load-balancer ingress points that are DNS based "
         "(typically AWS load-balancers)."),
    prop("ipMode", STRING, "IPMode specifies how the load-balancer IP behaves, and may only be "
         "specified when the ip field is specified."),
    prop("ports", array(PORT_STATUS, list_type="atomic"), "Ports is a list of records of service "
         "ports; if used, every port defined in the service should have an entry in it."),
)

LOAD_BALANCER_STATUS = model(
    "io.k8s.api.core.v1.LoadBalancerStatus",
    "LoadBalancerStatus represents the status of a load-balancer.",
    prop("ingress", array(LOAD_BALANCER_INGRESS, list_type="atomic"), "Ingress is a list "
         "containing ingress points for the load-balancer."),
)

SERVICE_STATUS = model(
    "io.k8s.api.core.v1.ServiceStatus",
    "ServiceStatus represents the current status of a service.",
    prop("loadBalancer", LOAD_BALANCER_STATUS, "LoadBalancer contains the current status of the "
         "load-balancer, if one is present."),
    prop("conditions", array(CONDITION, merge="type"), "Current service state."),
)

SERVICE = resource(
    "v1",
    "io.k8s.api.core.v1.Service",
    "Service is a named abstraction of software service (for example, mysql) consisting of local "
    "port (for example 3306) that the proxy listens on, and the selector that determines which "
    "pods will answer requests sent through the proxy.",
    prop("spec", SERVICE_SPEC, "Spec defines the behavior of a service."),
    prop("status", SERVICE_STATUS, "Most recently observed status of the service."),
)

OBJECT_REFERENCE = model(
    "io.k8s.api.core.v1.ObjectReference",
    "ObjectReference contains enough information to let you inspect or modify the referred object.",
    prop("kind", STRING, "Kind of the referent."),
    prop("namespace", STRING, "Namespace of the referent."),
    prop("name", STRING, "Name of the referent."),
    prop("uid", STRING, "UID of the referent."),
    prop("apiVersion", STRING, "API version of the referent."),
    prop("resourceVersion", STRING, "Specific resourceVersion to which this reference is made, if "
         "any."),
    prop("fieldPath", STRING, "If referring to a piece of an object instead of an entire object, "
         "a JSON/Go field access statement such as spec.containers{name}."),
)

TYPED_LOCAL_OBJECT_REFERENCE = model(
    "io.k8s.api.core.v1.TypedLocalObjectReference",
    "TypedLocalObjectReference contains enough information to let you locate the typed referenced "
    "object inside the same namespace.",
    prop("apiGroup", STRING, "APIGroup is the group for the resource being referenced; without "
         "it, Kind must be in the core API group."),
    prop("kind", STRING, "Kind is the type of resource being referenced.", required=True),
    prop("name", STRING, "Name is the name of resource being referenced.", required=True),
)

ENDPOINT_ADDRESS = model(
    "io.k8s.api.core.v1.EndpointAddress",
    "EndpointAddress is a tuple that describes single IP address.",
    prop("ip", STRING, "The IP of this endpoint.", required=True),
    prop("hostname", STRING, "The Hostname of this endpoint."),
    prop("nodeName", STRING, "Optional: Node hosting this endpoint."),
    prop("targetRef", OBJECT_REFERENCE, "Reference to object providing the endpoint."),
)

ENDPOINT_PORT = model(
    "io.k8s.api.core.v1.EndpointPort",
    "EndpointPort is a tuple that describes a single port.",
    prop("name", STRING, "The name of this port."),
    prop("port", INT32, "The port number of the endpoint.", required=True),
    prop("protocol", PROTOCOL, "The IP protocol for this port."),
    prop("appProtocol", STRING, "The application protocol for this port."),
)

ENDPOINT_SUBSET = model(
    "io.k8s.api.core.v1.EndpointSubset",
    "EndpointSubset is a group of addresses with a common set of ports.",
    prop("addresses", array(ENDPOINT_ADDRESS, list_type="atomic"), "IP addresses which offer the "
         "related ports that are marked as ready."),
    prop("notReadyAddresses", array(ENDPOINT_ADDRESS, list_type="atomic"), "IP addresses which "
         "offer the related ports but are not currently marked as ready because they have not yet "
         "finished starting, have recently failed a readiness check, or have recently failed a "
         "liveness check."),
    prop("ports", array(ENDPOINT_PORT, list_type="atomic"), "Port numbers available on the "
         "related IP addresses."),
)

ENDPOINTS = resource(
    "v1",
    "io.k8s.api.core.v1.Endpoints",
    "Endpoints is a collection of endpoints that implement the actual service.",
    prop("subsets", array(ENDPOINT_SUBSET, list_type="atomic"), "The set of all endpoints is the "
         "union of all subsets."),
)

CONFIG_MAP = resource(
    "v1",
    "io.k8s.api.core.v1.ConfigMap",
    "ConfigMap holds configuration data for pods to consume.",
    prop("immutable", BOOL, "Immutable, if set to true, ensures that data stored in the ConfigMap "
         "cannot be updated (only object metadata can be modified)."),
    prop("data", map_of(), "Data contains the configuration data."),
    prop("binaryData", map_of(BYTES), "BinaryData contains the binary data."),
)

SECRET = resource(
    "v1",
    "io.k8s.api.core.v1.Secret",
    "Secret holds secret data of a certain type.",
    prop("immutable", BOOL, "Immutable, if set to true, ensures that data stored in the Secret "
         "cannot be updated (only object metadata can be modified)."),
    prop("data", map_of(BYTES), "Data contains the secret data."),
    prop("stringData", map_of(), "stringData allows specifying non-binary secret data in string "
         "form."),
    prop("type", STRING, "Used to facilitate programmatic handling of secret data."),
)

EVENT_SOURCE = model(
    "io.k8s.api.core.v1.EventSource",
    "EventSource contains information for an event.",
    prop("component", STRING, "Component from which the event is generated."),
    prop("host", STRING, "Node name on which the event is generated."),
)

EVENT_SERIES = model(
    "io.k8s.api.core.v1.EventSeries",
    "EventSeries contain information on series of events, i.e. thing that was/is happening "
    "continuously for some time.",
    prop("count", INT32, "Number of occurrences in this series up to the last heartbeat time."),
    prop("lastObservedTime", MICRO_TIME, "Time of the last occurrence observed."),
)

EVENT = resource(
    "v1",
    "io.k8s.api.core.v1.Event",
    "Event is a report of an event somewhere in the cluster.",
    prop("involvedObject", OBJECT_REFERENCE, "The object that this event is about.", required=True),
    prop("reason", STRING, "This should be a short, machine understandable string that gives the "
         "reason for the transition into the object's current status."),
    prop("message", STRING, "A human-readable description of the status of this operation."),
    prop("source", EVENT_SOURCE, "The component reporting this event."),
    prop("firstTimestamp", TIME, "The time at which the event was first recorded."),
    prop("lastTimestamp", TIME, "The time at which the most recent occurrence of this event was "
         "recorded."),
    prop("count", INT32, "The number of times this event has occurred."),
    prop("type", STRING, "Type of this event (Normal, Warning), new types could be added in the "
         "future."),
    prop("eventTime", MICRO_TIME, "Time when this Event was first observed."),
    prop("series", EVENT_SERIES, "Data about the Event series this event represents or nil if "
         "it's a singleton Event."),
    prop("action", STRING, "What action was taken/failed regarding to the Regarding object."),
    prop("related", OBJECT_REFERENCE, "Optional secondary object for more complex actions."),
    prop("reportingComponent", STRING, "Name of the controller that emitted this Event, e.g. "
         "`kubernetes.io/kubelet`."),
    prop("reportingInstance", STRING, "ID of the controller instance, e.g. `kubelet-xyzf`."),
)

TAINT = model(
    "io.k8s.api.core.v1.Taint",
    "The node this Taint is attached to has the \"effect\" on any pod that does not tolerate the "
    "Taint.",
    prop("key", STRING, "Required.", required=True),
    prop("value", STRING, "The taint value corresponding to the taint key."),
    prop("effect", TAINT_EFFECT, "Required.", required=True),
    prop("timeAdded", TIME, "TimeAdded represents the time at which the taint was added."),
)

NODE_POD_PREEMPTION_POLICY = model(
    "io.k8s.api.core.v1.NodePodPreemptionPolicy",
    "NodePodPreemptionPolicy defines the node-level policies governing preemption for pods on this "
    "node.",
    prop("disableResizePreemption", array(STRING, list_type="set"), "DisableResizePreemption "
         "lists the owners (e.g., autoscalers, operators, administrators) that have requested to "
         "disable scheduler and Kubelet preemption for in-place pod resize on this node."),
)

NODE_SPEC = model(
    "io.k8s.api.core.v1.NodeSpec",
    "NodeSpec describes the attributes that a node is created with.",
    prop("podCIDR", STRING, "PodCIDR represents the pod IP range assigned to the node."),
    prop("podCIDRs", array(STRING, strategy="merge", list_type="set"), "podCIDRs represents the "
         "IP ranges assigned to the node for usage by Pods on that node."),
    prop("providerID", STRING, "ID of the node assigned by the cloud provider in the format: "
         "<ProviderName>://<ProviderSpecificNodeID>."),
    prop("unschedulable", BOOL, "Unschedulable controls node schedulability of new pods."),
    prop("taints", array(TAINT, list_type="atomic"), "If specified, the node's taints."),
    prop("configSource", FREE, "Deprecated: Previously used to specify the source of the node's "
         "configuration for the DynamicKubeletConfig feature."),
    prop("externalID", STRING, "Deprecated."),
    prop("podPreemptionPolicy", NODE_POD_PREEMPTION_POLICY, "PodPreemptionPolicy controls the "
         "node-level preemption behaviors for pods on this node."),
)

NODE_CONDITION = model(
    "io.k8s.api.core.v1.NodeCondition",
    "NodeCondition contains condition information for a node.",
    prop("type", STRING, "Type of node condition.", required=True),
    prop("status", STRING, "Status of the condition, one of True, False, Unknown.", required=True),
    prop("lastHeartbeatTime", TIME, "Last time we got an update on a given condition."),
    prop("lastTransitionTime", TIME, "Last time the condition transit from one status to another."),
    prop("reason", STRING, "(brief) reason for the condition's last transition."),
    prop("message", STRING, "Human readable message indicating details about last transition."),
)

NODE_ADDRESS = model(
    "io.k8s.api.core.v1.NodeAddress",
    "NodeAddress contains information for the node's address.",
    prop("type", STRING, "Node address type, one of Hostname, ExternalIP or InternalIP.",
         required=True),
    prop("address", STRING, "The node address.", required=True),
)

DAEMON_ENDPOINT = model(
    "io.k8s.api.core.v1.DaemonEndpoint",
    "DaemonEndpoint contains information about a single Daemon endpoint.",
    prop("Port", INT32, "Port number of the given endpoint.", required=True),
)

NODE_DAEMON_ENDPOINTS = model(
    "io.k8s.api.core.v1.NodeDaemonEndpoints",
    "NodeDaemonEndpoints lists ports opened by daemons running on the Node.",
    prop("kubeletEndpoint", DAEMON_ENDPOINT, "Endpoint on which Kubelet is listening."),
)

NODE_SWAP_STATUS = model(
    "io.k8s.api.core.v1.NodeSwapStatus",
    "NodeSwapStatus represents swap memory information.",
    prop("capacity", INT64, "Total amount of swap memory in bytes."),
)

NODE_SYSTEM_INFO = model(
    "io.k8s.api.core.v1.NodeSystemInfo",
    "NodeSystemInfo is a set of ids/uuids to uniquely identify the node.",
    prop("machineID", STRING, "MachineID reported by the node.", required=True),
    prop("systemUUID", STRING, "SystemUUID reported by the node.", required=True),
    prop("bootID", STRING, "Boot ID reported by the node.", required=True),
    prop("kernelVersion", STRING, "Kernel Version reported by the node from 'uname -r' (e.g. "
         "3.16.0-0.bpo.4-amd64).", required=True),
    prop("osImage", STRING, "OS Image reported by the node from /etc/os-release.", required=True),
    prop("containerRuntimeVersion", STRING, "ContainerRuntime Version reported by the node "
         "through runtime remote API (e.g. containerd://1.4.2).", required=True),
    prop("kubeletVersion", STRING, "Kubelet Version reported by the node.", required=True),
    prop("kubeProxyVersion", STRING, "Deprecated: KubeProxy Version reported by the node.",
         required=True),
    prop("operatingSystem", STRING, "The Operating System reported by the node.", required=True),
    prop("architecture", STRING, "The Architecture reported by the node.", required=True),
    prop("swap", NODE_SWAP_STATUS, "Swap Info reported by the node."),
)

CONTAINER_IMAGE = model(
    "io.k8s.api.core.v1.ContainerImage",
    "Describe a container image.",
    prop("names", STRINGS, "Names by which this image is known."),
    prop("sizeBytes", INT64, "The size of the image in bytes."),
)

ATTACHED_VOLUME = model(
    "io.k8s.api.core.v1.AttachedVolume",
    "AttachedVolume describes a volume attached to a node.",
    prop("name", STRING, "Name of the attached volume.", required=True),
    prop("devicePath", STRING, "DevicePath represents the device path where the volume should be "
         "available.", required=True),
)

NODE_RUNTIME_HANDLER_FEATURES = model(
    "io.k8s.api.core.v1.NodeRuntimeHandlerFeatures",
    "NodeRuntimeHandlerFeatures is a set of features implemented by the runtime handler.",
    prop("recursiveReadOnlyMounts", BOOL, "RecursiveReadOnlyMounts is set to true if the runtime "
         "handler supports RecursiveReadOnlyMounts."),
    prop("userNamespaces", BOOL, "UserNamespaces is set to true if the runtime handler supports "
         "UserNamespaces, including for volumes."),
)

NODE_RUNTIME_HANDLER = model(
    "io.k8s.api.core.v1.NodeRuntimeHandler",
    "NodeRuntimeHandler is a set of runtime handler information.",
    prop("name", STRING, "Runtime handler name."),
    prop("features", NODE_RUNTIME_HANDLER_FEATURES, "Supported features."),
)

NODE_FEATURES = model(
    "io.k8s.api.core.v1.NodeFeatures",
    "NodeFeatures describes the set of features implemented by the CRI implementation.",
    prop("supplementalGroupsPolicy", BOOL, "SupplementalGroupsPolicy is set to true if the "
         "runtime supports SupplementalGroupsPolicy and ContainerUser."),
)

NODE_STATUS = model(
    "io.k8s.api.core.v1.NodeStatus",
    "NodeStatus is information about the current status of a node.",
    prop("capacity", map_of(QUANTITY), "Capacity represents the total resources of a node."),
    prop("allocatable", map_of(QUANTITY), "Allocatable represents the resources of a node that "
         "are available for scheduling."),
    prop("phase", NODE_PHASE, "NodePhase is the recently observed lifecycle phase of the node."),
    prop("conditions", array(NODE_CONDITION, merge="type"), "Conditions is an array of current "
         "observed node conditions."),
    prop("addresses", array(NODE_ADDRESS, merge="type"), "List of addresses reachable to the "
         "node."),
    prop("daemonEndpoints", NODE_DAEMON_ENDPOINTS, "Endpoints of daemons running on the Node."),
    prop("nodeInfo", NODE_SYSTEM_INFO, "Set of ids/uuids to uniquely identify the node."),
    prop("images", array(CONTAINER_IMAGE, list_type="atomic"), "List of container images on this "
         "node."),
    prop("volumesInUse", STRINGS, "List of attachable volumes in use (mounted) by the node."),
    prop("volumesAttached", array(ATTACHED_VOLUME, list_type="atomic"), "List of volumes that are "
         "attached to the node."),
    prop("config", FREE, "Status of the config assigned to the node via the dynamic Kubelet "
         "config feature."),
    prop("runtimeHandlers", array(NODE_RUNTIME_HANDLER, list_type="atomic"), "The available "
         "runtime handlers."),
    prop("features", NODE_FEATURES, "Features describes the set of features implemented by the "
         "CRI implementation."),
    prop("declaredFeatures", STRINGS, "DeclaredFeatures represents the features related to "
         "feature gates that are declared by the node."),
)

NODE = resource(
    "v1",
    "io.k8s.api.core.v1.Node",
    "Node is a worker node in Kubernetes.",
    prop("spec", NODE_SPEC, "Spec defines the behavior of a node."),
    prop("status", NODE_STATUS, "Most recently observed status of the node."),
)

SERVICE_ACCOUNT = resource(
    "v1",
    "io.k8s.api.core.v1.ServiceAccount",
    "ServiceAccount binds together a name, understood by users, for an identity; a principal that "
    "can be authenticated and authorized; and a set of secrets.",
    prop("secrets", array(OBJECT_REFERENCE, merge="name"), "Secrets is a list of the secrets in "
         "the same namespace that pods running using this ServiceAccount are allowed to use."),
    prop("imagePullSecrets", array(LOCAL_OBJECT_REFERENCE, list_type="atomic"), "ImagePullSecrets "
         "is a list of references to secrets in the same namespace to use for pulling any images "
         "in pods that reference this ServiceAccount."),
    prop("automountServiceAccountToken", BOOL, "AutomountServiceAccountToken indicates whether "
         "pods running as this service account should have an API token automatically mounted."),
)

BINDING = resource(
    "v1",
    "io.k8s.api.core.v1.Binding",
    "Binding ties one object to another; for example, a pod is bound to a node by a scheduler.",
    prop("target", OBJECT_REFERENCE, "The target object that you want to bind to the standard "
         "object.", required=True),
)
