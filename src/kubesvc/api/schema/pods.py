"""core/v1 Pod: PodSpec (containers, volumes, scheduling, DNS, security), PodStatus and the
PodTemplateSpec that Deployments and ReplicaSets stamp pods from."""

from __future__ import annotations

from kubesvc.api.schema.containers import (
    APP_ARMOR_PROFILE,
    CONTAINER,
    RESOURCE_REQUIREMENTS,
    SE_LINUX_OPTIONS,
    SECCOMP_PROFILE,
    WINDOWS_SECURITY_CONTEXT_OPTIONS,
)
from kubesvc.api.schema.dsl import (
    BOOL,
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
from kubesvc.api.schema.meta import LABEL_SELECTOR, OBJECT_META, QUANTITY, TIME, resource
from kubesvc.api.schema.volumes import VOLUME

SUPPLEMENTAL_GROUPS_POLICY = enum("Merge", "Strict")
POD_FS_GROUP_CHANGE_POLICY = enum("OnRootMismatch", "Always")
NODE_SELECTOR_OPERATOR = enum("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
TOLERATION_OPERATOR = enum("Exists", "Equal", "Lt", "Gt")
TAINT_EFFECT = enum("NoSchedule", "PreferNoSchedule", "NoExecute")
UNSATISFIABLE_CONSTRAINT_ACTION = enum("DoNotSchedule", "ScheduleAnyway")
NODE_INCLUSION_POLICY = enum("Ignore", "Honor")
RESTART_POLICY = enum("Always", "OnFailure", "Never")
DNS_POLICY = enum("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PREEMPTION_POLICY = enum("PreemptLowerPriority", "Never")
POD_PHASE = enum("Pending", "Running", "Succeeded", "Failed", "Unknown")
POD_QOS_CLASS = enum("Guaranteed", "Burstable", "BestEffort")

EPHEMERAL_CONTAINER = model(
    "io.k8s.api.core.v1.EphemeralContainer",
    "An EphemeralContainer is a temporary container that you may add to an existing Pod for "
    "user-initiated activities such as debugging.",
    *CONTAINER.props,
    prop("targetContainerName", STRING, "If set, the name of the container from PodSpec that this "
         "ephemeral container targets."),
)

SYSCTL = model(
    "io.k8s.api.core.v1.Sysctl",
    "Sysctl defines a kernel parameter to be set.",
    prop("name", STRING, "Name of a property to set.", required=True),
    prop("value", STRING, "Value of a property to set.", required=True),
)

POD_SECURITY_CONTEXT = model(
    "io.k8s.api.core.v1.PodSecurityContext",
    "PodSecurityContext holds pod-level security attributes and common container settings.",
    prop("seLinuxOptions", SE_LINUX_OPTIONS, "The SELinux context to be applied to all "
         "containers."),
    prop("windowsOptions", WINDOWS_SECURITY_CONTEXT_OPTIONS, "The Windows specific settings "
         "applied to all containers."),
    prop("runAsUser", INT64, "The UID to run the entrypoint of the container process."),
    prop("runAsGroup", INT64, "The GID to run the entrypoint of the container process."),
    prop("runAsNonRoot", BOOL, "Indicates that the container must run as a non-root user."),
    prop("supplementalGroups", array(INT64, list_type="atomic"), "A list of groups applied to the "
         "first process run in each container, in addition to the container's primary GID and "
         "fsGroup (if specified)."),
    prop("supplementalGroupsPolicy", SUPPLEMENTAL_GROUPS_POLICY, "Defines how supplemental groups "
         "of the first container processes are calculated."),
    prop("fsGroup", INT64, "A special supplemental group that applies to all containers in a pod."),
    prop("sysctls", array(SYSCTL, list_type="atomic"), "Sysctls hold a list of namespaced sysctls "
         "used for the pod."),
    prop("fsGroupChangePolicy", POD_FS_GROUP_CHANGE_POLICY, "fsGroupChangePolicy defines behavior "
         "of changing ownership and permission of the volume before being exposed inside Pod."),
    prop("seccompProfile", SECCOMP_PROFILE, "The seccomp options to use by the containers in this "
         "pod."),
    prop("appArmorProfile", APP_ARMOR_PROFILE, "appArmorProfile is the AppArmor options to use by "
         "the containers in this pod."),
    prop("seLinuxChangePolicy", STRING, "seLinuxChangePolicy defines how the container's SELinux "
         "label is applied to all volumes used by the Pod."),
)

LOCAL_OBJECT_REFERENCE = model(
    "io.k8s.api.core.v1.LocalObjectReference",
    "LocalObjectReference contains enough information to let you locate the referenced object "
    "inside the same namespace.",
    prop("name", STRING, "Name of the referent."),
)

NODE_SELECTOR_REQUIREMENT = model(
    "io.k8s.api.core.v1.NodeSelectorRequirement",
    "A node selector requirement is a selector that contains values, a key, and an operator that "
    "relates the key and values.",
    prop("key", STRING, "The label key that the selector applies to.", required=True),
    prop("operator", NODE_SELECTOR_OPERATOR, "Represents a key's relationship to a set of values.",
         required=True),
    prop("values", STRINGS, "An array of string values."),
)

NODE_SELECTOR_TERM = model(
    "io.k8s.api.core.v1.NodeSelectorTerm",
    "A null or empty node selector term matches no objects.",
    prop("matchExpressions", array(NODE_SELECTOR_REQUIREMENT, list_type="atomic"), "A list of "
         "node selector requirements by node's labels."),
    prop("matchFields", array(NODE_SELECTOR_REQUIREMENT, list_type="atomic"), "A list of node "
         "selector requirements by node's fields."),
)

NODE_SELECTOR = model(
    "io.k8s.api.core.v1.NodeSelector",
    "A node selector represents the union of the results of one or more label queries over a set "
    "of nodes; that is, it represents the OR of the selectors represented by the node selector "
    "terms.",
    prop("nodeSelectorTerms", array(NODE_SELECTOR_TERM, list_type="atomic"), "Required.",
         required=True),
)

PREFERRED_SCHEDULING_TERM = model(
    "io.k8s.api.core.v1.PreferredSchedulingTerm",
    "An empty preferred scheduling term matches all objects with implicit weight 0 (i.e. it's a "
    "no-op).",
    prop("weight", INT32, "Weight associated with matching the corresponding nodeSelectorTerm, in "
         "the range 1-100.", required=True),
    prop("preference", NODE_SELECTOR_TERM, "A node selector term, associated with the "
         "corresponding weight.", required=True),
)

NODE_AFFINITY = model(
    "io.k8s.api.core.v1.NodeAffinity",
    "Node affinity is a group of node affinity scheduling rules.",
    prop("requiredDuringSchedulingIgnoredDuringExecution", NODE_SELECTOR, "If the affinity "
         "requirements specified by this field are not met at scheduling time, the pod will not "
         "be scheduled onto the node."),
    prop("preferredDuringSchedulingIgnoredDuringExecution",
         array(PREFERRED_SCHEDULING_TERM, list_type="atomic"),
         "The scheduler will prefer to schedule pods to nodes that satisfy the affinity "
         "expressions specified by this field, but it may choose a node that violates one or more "
         "of the expressions."),
)

POD_AFFINITY_TERM = model(
    "io.k8s.api.core.v1.PodAffinityTerm",
    "Defines a set of pods (namely those matching the labelSelector relative to the given "
    "namespace(s)) that this pod should be co-located (affinity) or not co-located (anti-affinity) "
    "with, where co-located is defined as running on a node whose value of the label with key "
    "<topologyKey> matches that of any node on which a pod of the set of pods is running.",
    prop("labelSelector", LABEL_SELECTOR, "A label query over a set of resources, in this case "
         "pods."),
    prop("namespaces", STRINGS, "namespaces specifies a static list of namespace names that the "
         "term applies to."),
    prop("topologyKey", STRING, "This pod should be co-located (affinity) or not co-located "
         "(anti-affinity) with the pods matching the labelSelector in the specified namespaces, "
         "where co-located is defined as running on a node whose value of the label with key "
         "topologyKey matches that of any node on which any of the selected pods is running.",
         required=True),
    prop("namespaceSelector", LABEL_SELECTOR, "A label query over the set of namespaces that the "
         "term applies to."),
    prop("matchLabelKeys", STRINGS, "MatchLabelKeys is a set of pod label keys to select which "
         "pods will be taken into consideration."),
    prop("mismatchLabelKeys", STRINGS, "MismatchLabelKeys is a set of pod label keys to select "
         "which pods will be taken into consideration."),
)

WEIGHTED_POD_AFFINITY_TERM = model(
    "io.k8s.api.core.v1.WeightedPodAffinityTerm",
    "The weights of all of the matched WeightedPodAffinityTerm fields are added per-node to find "
    "the most preferred node(s).",
    prop("weight", INT32, "weight associated with matching the corresponding podAffinityTerm, in "
         "the range 1-100.", required=True),
    prop("podAffinityTerm", POD_AFFINITY_TERM, "Required.", required=True),
)

POD_AFFINITY = model(
    "io.k8s.api.core.v1.PodAffinity",
    "Pod affinity is a group of inter pod affinity scheduling rules.",
    prop("requiredDuringSchedulingIgnoredDuringExecution",
         array(POD_AFFINITY_TERM, list_type="atomic"),
         "If the affinity requirements specified by this field are not met at scheduling time, "
         "the pod will not be scheduled onto the node."),
    prop("preferredDuringSchedulingIgnoredDuringExecution",
         array(WEIGHTED_POD_AFFINITY_TERM, list_type="atomic"),
         "The scheduler will prefer to schedule pods to nodes that satisfy the affinity "
         "expressions specified by this field, but it may choose a node that violates one or more "
         "of the expressions."),
)

POD_ANTI_AFFINITY = model(
    "io.k8s.api.core.v1.PodAntiAffinity",
    "Pod anti affinity is a group of inter pod anti affinity scheduling rules.",
    prop("requiredDuringSchedulingIgnoredDuringExecution",
         array(POD_AFFINITY_TERM, list_type="atomic"),
         "If the anti-affinity requirements specified by this field are not met at scheduling "
         "time, the pod will not be scheduled onto the node."),
    prop("preferredDuringSchedulingIgnoredDuringExecution",
         array(WEIGHTED_POD_AFFINITY_TERM, list_type="atomic"),
         "The scheduler will prefer to schedule pods to nodes that satisfy the anti-affinity "
         "expressions specified by this field, but it may choose a node that violates one or more "
         "of the expressions."),
)

AFFINITY = model(
    "io.k8s.api.core.v1.Affinity",
    "Affinity is a group of affinity scheduling rules.",
    prop("nodeAffinity", NODE_AFFINITY, "Describes node affinity scheduling rules for the pod."),
    prop("podAffinity", POD_AFFINITY, "Describes pod affinity scheduling rules (e.g. co-locate "
         "this pod in the same node, zone, etc. as some other pod(s))."),
    prop("podAntiAffinity", POD_ANTI_AFFINITY, "Describes pod anti-affinity scheduling rules "
         "(e.g. avoid putting this pod in the same node, zone, etc. as some other pod(s))."),
)

TOLERATION = model(
    "io.k8s.api.core.v1.Toleration",
    "The pod this Toleration is attached to tolerates any taint that matches the triple "
    "<key,value,effect> using the matching operator <operator>.",
    prop("key", STRING, "Key is the taint key that the toleration applies to."),
    prop("operator", TOLERATION_OPERATOR, "Operator represents a key's relationship to the value."),
    prop("value", STRING, "Value is the taint value the toleration matches to."),
    prop("effect", TAINT_EFFECT, "Effect indicates the taint effect to match."),
    prop("tolerationSeconds", INT64, "TolerationSeconds represents the period of time the "
         "toleration (which must be of effect NoExecute, otherwise this field is ignored) "
         "tolerates the taint."),
)

HOST_ALIAS = model(
    "io.k8s.api.core.v1.HostAlias",
    "HostAlias holds the mapping between IP and hostnames that will be injected as an entry in the "
    "pod's hosts file.",
    prop("ip", STRING, "IP address of the host file entry.", required=True),
    prop("hostnames", STRINGS, "Hostnames for the above IP address."),
)

POD_DNS_CONFIG_OPTION = model(
    "io.k8s.api.core.v1.PodDNSConfigOption",
    "PodDNSConfigOption defines DNS resolver options of a pod.",
    prop("name", STRING, "Name is this DNS resolver option's name."),
    prop("value", STRING, "Value is this DNS resolver option's value."),
)

POD_DNS_CONFIG = model(
    "io.k8s.api.core.v1.PodDNSConfig",
    "PodDNSConfig defines the DNS parameters of a pod in addition to those generated from "
    "DNSPolicy.",
    prop("nameservers", STRINGS, "A list of DNS name server IP addresses."),
    prop("searches", STRINGS, "A list of DNS search domains for host-name lookup."),
    prop("options", array(POD_DNS_CONFIG_OPTION, list_type="atomic"), "A list of DNS resolver "
         "options."),
)

POD_READINESS_GATE = model(
    "io.k8s.api.core.v1.PodReadinessGate",
    "PodReadinessGate contains the reference to a pod condition.",
    prop("conditionType", STRING, "ConditionType refers to a condition in the pod's condition "
         "list with matching type.", required=True),
)

TOPOLOGY_SPREAD_CONSTRAINT = model(
    "io.k8s.api.core.v1.TopologySpreadConstraint",
    "TopologySpreadConstraint specifies how to spread matching pods among the given topology.",
    prop("maxSkew", INT32, "MaxSkew describes the degree to which pods may be unevenly "
         "distributed.", required=True),
    prop("topologyKey", STRING, "TopologyKey is the key of node labels.", required=True),
    prop("whenUnsatisfiable", UNSATISFIABLE_CONSTRAINT_ACTION, "WhenUnsatisfiable indicates how "
         "to deal with a pod if it doesn't satisfy the spread constraint. - DoNotSchedule "
         "(default) tells the scheduler not to schedule it. - ScheduleAnyway tells the scheduler "
         "to schedule the pod in any location, but giving higher precedence to topologies that "
         "would help reduce the skew.", required=True),
    prop("labelSelector", LABEL_SELECTOR, "LabelSelector is used to find matching pods."),
    prop("minDomains", INT32, "MinDomains indicates a minimum number of eligible domains."),
    prop("nodeAffinityPolicy", NODE_INCLUSION_POLICY, "NodeAffinityPolicy indicates how we will "
         "treat Pod's nodeAffinity/nodeSelector when calculating pod topology spread skew."),
    prop("nodeTaintsPolicy", NODE_INCLUSION_POLICY, "NodeTaintsPolicy indicates how we will treat "
         "node taints when calculating pod topology spread skew."),
    prop("matchLabelKeys", STRINGS, "MatchLabelKeys is a set of pod label keys to select the pods "
         "over which spreading will be calculated."),
)

POD_OS = model(
    "io.k8s.api.core.v1.PodOS",
    "PodOS defines the OS parameters of a pod.",
    prop("name", STRING, "Name is the name of the operating system.", required=True),
)

POD_SCHEDULING_GATE = model(
    "io.k8s.api.core.v1.PodSchedulingGate",
    "PodSchedulingGate is associated to a Pod to guard its scheduling.",
    prop("name", STRING, "Name of the scheduling gate.", required=True),
)

POD_SPEC = model(
    "io.k8s.api.core.v1.PodSpec",
    "PodSpec is a description of a pod.",
    prop("volumes", array(VOLUME, merge="name", strategy="merge,retainKeys"), "List of volumes "
         "that can be mounted by containers belonging to the pod."),
    prop("initContainers", array(CONTAINER, merge="name"), "List of initialization containers "
         "belonging to the pod."),
    prop("containers", array(CONTAINER, merge="name"), "List of containers belonging to the pod.",
         required=True),
    prop("ephemeralContainers", array(EPHEMERAL_CONTAINER, merge="name"), "List of ephemeral "
         "containers run in this pod."),
    prop("restartPolicy", RESTART_POLICY, "Restart policy for all containers within the pod."),
    prop("terminationGracePeriodSeconds", INT64, "Optional duration in seconds the pod needs to "
         "terminate gracefully."),
    prop("activeDeadlineSeconds", INT64, "Optional duration in seconds the pod may be active on "
         "the node relative to StartTime before the system will actively try to mark it failed "
         "and kill associated containers."),
    prop("dnsPolicy", DNS_POLICY, "Set DNS policy for the pod."),
    prop("nodeSelector", map_of(), "NodeSelector is a selector which must be true for the pod to "
         "fit on a node."),
    prop("serviceAccountName", STRING, "ServiceAccountName is the name of the ServiceAccount to "
         "use to run this pod."),
    prop("serviceAccount", STRING, "DeprecatedServiceAccount is a deprecated alias for "
         "ServiceAccountName."),
    prop("automountServiceAccountToken", BOOL, "AutomountServiceAccountToken indicates whether a "
         "service account token should be automatically mounted."),
    prop("nodeName", STRING, "NodeName indicates in which node this pod is scheduled."),
    prop("hostNetwork", BOOL, "Host networking requested for this pod."),
    prop("hostPID", BOOL, "Use the host's pid namespace."),
    prop("hostIPC", BOOL, "Use the host's ipc namespace."),
    prop("shareProcessNamespace", BOOL, "Share a single process namespace between all of the "
         "containers in a pod."),
    prop("securityContext", POD_SECURITY_CONTEXT, "SecurityContext holds pod-level security "
         "attributes and common container settings."),
    prop("imagePullSecrets", array(LOCAL_OBJECT_REFERENCE, merge="name"), "ImagePullSecrets is an "
         "optional list of references to secrets in the same namespace to use for pulling any of "
         "the images used by this PodSpec."),
    prop("hostname", STRING, "Specifies the hostname of the Pod If not specified, the pod's "
         "hostname will be set to a system-defined value."),
    prop("subdomain", STRING, "If specified, the fully qualified Pod hostname will be "
         "\"<hostname>.<subdomain>.<pod namespace>.svc.<cluster domain>\"."),
    prop("affinity", AFFINITY, "If specified, the pod's scheduling constraints."),
    prop("schedulerName", STRING, "If specified, the pod will be dispatched by specified "
         "scheduler."),
    prop("tolerations", array(TOLERATION, list_type="atomic"), "If specified, the pod's "
         "tolerations."),
    prop("hostAliases", array(HOST_ALIAS, merge="ip"), "HostAliases is an optional list of hosts "
         "and IPs that will be injected into the pod's hosts file if specified."),
    prop("priorityClassName", STRING, "If specified, indicates the pod's priority. "
         "\"system-node-critical\" and \"system-cluster-critical\" are two special keywords which "
         "indicate the highest priorities with the former being the highest priority."),
    prop("priority", INT32, "The priority value."),
    prop("dnsConfig", POD_DNS_CONFIG, "Specifies the DNS parameters of a pod."),
    prop("readinessGates", array(POD_READINESS_GATE, list_type="atomic"), "If specified, all "
         "readiness gates will be evaluated for pod readiness."),
    prop("runtimeClassName", STRING, "RuntimeClassName refers to a RuntimeClass object in the "
         "node.k8s.io group, which should be used to run this pod."),
    prop("enableServiceLinks", BOOL, "EnableServiceLinks indicates whether information about "
         "services should be injected into pod's environment variables, matching the syntax of "
         "Docker links."),
    prop("preemptionPolicy", PREEMPTION_POLICY, "PreemptionPolicy is the Policy for preempting "
         "pods with lower priority."),
    prop("overhead", map_of(QUANTITY), "Overhead represents the resource overhead associated with "
         "running a pod for a given RuntimeClass."),
    prop("topologySpreadConstraints",
         array(TOPOLOGY_SPREAD_CONSTRAINT, merge="topologyKey",
               keys=("topologyKey", "whenUnsatisfiable")),
         "TopologySpreadConstraints describes how a group of pods ought to spread across topology "
         "domains."),
    prop("setHostnameAsFQDN", BOOL, "If true the pod's hostname will be configured as the pod's "
         "FQDN, rather than the leaf name (the default)."),
    prop("os", POD_OS, "Specifies the OS of the containers in the pod."),
    prop("hostUsers", BOOL, "Use the host's user namespace."),
    prop("schedulingGates", array(POD_SCHEDULING_GATE, merge="name"), "SchedulingGates is an "
         "opaque list of values that if specified will block scheduling the pod."),
    prop("resourceClaims", array(FREE, merge="name", strategy="merge,retainKeys"), "ResourceClaims "
         "defines which ResourceClaims must be allocated and reserved before the Pod is allowed "
         "to start."),
    prop("resources", RESOURCE_REQUIREMENTS, "Resources is the total amount of CPU and Memory "
         "resources required by all containers in the pod."),
    prop("hostnameOverride", STRING, "HostnameOverride specifies an explicit override for the "
         "pod's hostname as perceived by the pod."),
    prop("schedulingGroup", FREE, "SchedulingGroup provides a reference to the immediate "
         "scheduling runtime grouping object that this Pod belongs to."),
    prop("evictionResponders", array(FREE, merge="name"), "evictionResponders reference "
         "responders that react to Evictions based on EvictionRequests."),
)

POD_CONDITION = model(
    "io.k8s.api.core.v1.PodCondition",
    "PodCondition contains details for the current condition of this pod.",
    prop("type", STRING, "Type is the type of the condition.", required=True),
    prop("observedGeneration", INT64, "If set, this represents the .metadata.generation that the "
         "pod condition was set based upon."),
    prop("status", STRING, "Status is the status of the condition.", required=True),
    prop("lastProbeTime", TIME, "Last time we probed the condition."),
    prop("lastTransitionTime", TIME, "Last time the condition transitioned from one status to "
         "another."),
    prop("reason", STRING, "Unique, one-word, CamelCase reason for the condition's last "
         "transition."),
    prop("message", STRING, "Human-readable message indicating details about last transition."),
)

HOST_IP = model(
    "io.k8s.api.core.v1.HostIP",
    "HostIP represents a single IP address allocated to the host.",
    prop("ip", STRING, "IP is the IP address assigned to the host.", required=True),
)

POD_IP = model(
    "io.k8s.api.core.v1.PodIP",
    "PodIP represents a single IP address allocated to the pod.",
    prop("ip", STRING, "IP is the IP address assigned to the pod.", required=True),
)

CONTAINER_STATE_WAITING = model(
    "io.k8s.api.core.v1.ContainerStateWaiting",
    "ContainerStateWaiting is a waiting state of a container.",
    prop("reason", STRING, "(brief) reason the container is not yet running."),
    prop("message", STRING, "Message regarding why the container is not yet running."),
)

CONTAINER_STATE_RUNNING = model(
    "io.k8s.api.core.v1.ContainerStateRunning",
    "ContainerStateRunning is a running state of a container.",
    prop("startedAt", TIME, "Time at which the container was last (re-)started."),
)

CONTAINER_STATE_TERMINATED = model(
    "io.k8s.api.core.v1.ContainerStateTerminated",
    "ContainerStateTerminated is a terminated state of a container.",
    prop("exitCode", INT32, "Exit status from the last termination of the container.",
         required=True),
    prop("signal", INT32, "Signal from the last termination of the container."),
    prop("reason", STRING, "(brief) reason from the last termination of the container."),
    prop("message", STRING, "Message regarding the last termination of the container."),
    prop("startedAt", TIME, "Time at which previous execution of the container started."),
    prop("finishedAt", TIME, "Time at which the container last terminated."),
    prop("containerID", STRING, "Container's ID in the format '<type>://<container_id>'."),
)

CONTAINER_STATE = model(
    "io.k8s.api.core.v1.ContainerState",
    "ContainerState holds a possible state of container.",
    prop("waiting", CONTAINER_STATE_WAITING, "Details about a waiting container."),
    prop("running", CONTAINER_STATE_RUNNING, "Details about a running container."),
    prop("terminated", CONTAINER_STATE_TERMINATED, "Details about a terminated container."),
)

IMAGE_VOLUME_STATUS = model(
    "io.k8s.api.core.v1.ImageVolumeStatus",
    "ImageVolumeStatus represents the image-based volume status.",
    prop("imageRef", STRING, "ImageRef is the digest of the image used for this volume."),
)

VOLUME_STATUS = model(
    "io.k8s.api.core.v1.VolumeStatus",
    "VolumeStatus represents the status of a mounted volume.",
    prop("image", IMAGE_VOLUME_STATUS, "image represents an OCI object (a container image or "
         "artifact) pulled and mounted on the kubelet's host machine."),
)

VOLUME_MOUNT_STATUS = model(
    "io.k8s.api.core.v1.VolumeMountStatus",
    "VolumeMountStatus shows status of volume mounts.",
    prop("name", STRING, "Name corresponds to the name of the original VolumeMount.",
         required=True),
    prop("mountPath", STRING, "MountPath corresponds to the original VolumeMount.", required=True),
    prop("readOnly", BOOL, "ReadOnly corresponds to the original VolumeMount."),
    prop("recursiveReadOnly", STRING, "RecursiveReadOnly must be set to Disabled, Enabled, or "
         "unspecified (for non-readonly mounts)."),
    prop("volumeStatus", VOLUME_STATUS, "volumeStatus represents volume-type-specific status "
         "about the mounted volume."),
)

LINUX_CONTAINER_USER = model(
    "io.k8s.api.core.v1.LinuxContainerUser",
    "LinuxContainerUser represents user identity information in Linux containers.",
    prop("uid", INT64, "UID is the primary uid initially attached to the first process in the "
         "container.", required=True),
    prop("gid", INT64, "GID is the primary gid initially attached to the first process in the "
         "container.", required=True),
    prop("supplementalGroups", array(INT64, list_type="atomic"), "SupplementalGroups are the "
         "supplemental groups initially attached to the first process in the container."),
)

CONTAINER_USER = model(
    "io.k8s.api.core.v1.ContainerUser",
    "ContainerUser represents user identity information.",
    prop("linux", LINUX_CONTAINER_USER, "Linux holds user identity information initially attached "
         "to the first process of the containers in Linux."),
)

CONTAINER_STATUS = model(
    "io.k8s.api.core.v1.ContainerStatus",
    "ContainerStatus contains details for the current status of this container.",
    prop("name", STRING, "Name is a DNS_LABEL representing the unique name of the container.",
         required=True),
    prop("state", CONTAINER_STATE, "State holds details about the container's current condition."),
    prop("lastState", CONTAINER_STATE, "LastTerminationState holds the last termination state of "
         "the container to help debug container crashes and restarts."),
    prop("ready", BOOL, "Ready specifies whether the container is currently passing its readiness "
         "check.", required=True),
    prop("restartCount", INT32, "RestartCount holds the number of times the container has been "
         "restarted.", required=True),
    prop("image", STRING, "Image is the name of container image that the container is running.",
         required=True),
    prop("imageID", STRING, "ImageID is the image ID of the container's image.", required=True),
    prop("containerID", STRING, "ContainerID is the ID of the container in the format "
         "'<type>://<container_id>'."),
    prop("started", BOOL, "Started indicates whether the container has finished its postStart "
         "lifecycle hook and passed its startup probe."),
    prop("allocatedResources", map_of(QUANTITY), "AllocatedResources represents the compute "
         "resources allocated for this container by the node."),
    prop("resources", RESOURCE_REQUIREMENTS, "Resources represents the compute resource requests "
         "and limits that have been successfully enacted on the running container after it has "
         "been started or has been successfully resized."),
    prop("volumeMounts", array(VOLUME_MOUNT_STATUS, merge="mountPath"), "Status of volume mounts."),
    prop("user", CONTAINER_USER, "User represents user identity information initially attached to "
         "the first process of the container."),
    prop("allocatedResourcesStatus", array(FREE, merge="name"), "AllocatedResourcesStatus "
         "represents the status of various resources allocated for this Pod."),
    prop("stopSignal", STRING, "StopSignal reports the effective stop signal for this container."),
)

POD_STATUS = model(
    "io.k8s.api.core.v1.PodStatus",
    "PodStatus represents information about the status of a pod.",
    prop("observedGeneration", INT64, "If set, this represents the .metadata.generation that the "
         "pod status was set based upon."),
    prop("phase", POD_PHASE, "The phase of a Pod is a simple, high-level summary of where the Pod "
         "is in its lifecycle."),
    prop("conditions", array(POD_CONDITION, merge="type"), "Current service state of pod."),
    prop("message", STRING, "A human readable message indicating details about why the pod is in "
         "this condition."),
    prop("reason", STRING, "A brief CamelCase message indicating details about why the pod is in "
         "this state. e.g. 'Evicted'."),
    prop("nominatedNodeName", STRING, "nominatedNodeName is set only when this pod preempts other "
         "pods on the node, but it cannot be scheduled right away as preemption victims receive "
         "their graceful termination periods."),
    prop("hostIP", STRING, "hostIP holds the IP address of the host to which the pod is assigned."),
    prop("hostIPs", array(HOST_IP, merge="ip", list_type="atomic"), "hostIPs holds the IP "
         "addresses allocated to the host."),
    prop("podIP", STRING, "podIP address allocated to the pod."),
    prop("podIPs", array(POD_IP, merge="ip"), "podIPs holds the IP addresses allocated to the "
         "pod."),
    prop("startTime", TIME, "RFC 3339 date and time at which the object was acknowledged by the "
         "Kubelet."),
    prop("initContainerStatuses", array(CONTAINER_STATUS, list_type="atomic"), "Statuses of init "
         "containers in this pod."),
    prop("containerStatuses", array(CONTAINER_STATUS, list_type="atomic"), "Statuses of "
         "containers in this pod."),
    prop("qosClass", POD_QOS_CLASS, "The Quality of Service (QOS) classification assigned to the "
         "pod based on resource requirements See PodQOSClass type for available QOS classes."),
    prop("ephemeralContainerStatuses", array(CONTAINER_STATUS, list_type="atomic"), "Statuses for "
         "any ephemeral containers that have run in this pod."),
    prop("resize", STRING, "Status of resources resize desired for pod's containers."),
    prop("resourceClaimStatuses", array(FREE, merge="name", strategy="merge,retainKeys"), "Status "
         "of resource claims."),
    prop("extendedResourceClaimStatus", FREE, "Status of extended resource claim backed by DRA."),
    prop("allocatedResources", map_of(QUANTITY), "AllocatedResources is the total requests "
         "allocated for this pod by the node."),
    prop("resources", RESOURCE_REQUIREMENTS, "Resources represents the compute resource requests "
         "and limits that have been applied at the pod level if pod-level requests or limits are "
         "set in PodSpec.Resources."),
    prop("nodeAllocatableResourceClaimStatuses", array(FREE, merge="resourceClaimName"),
         "NodeAllocatableResourceClaimStatuses contains the status of node-allocatable resources "
         "that were allocated for this pod through DRA claims."),
    prop("volumeHealth", array(FREE, keys=("name",)), "volumeHealth contains node-reported health "
         "for each volume the pod is using."),
)

POD = resource(
    "v1",
    "io.k8s.api.core.v1.Pod",
    "Pod is a collection of containers that can run on a host.",
    prop("spec", POD_SPEC, "Specification of the desired behavior of the pod."),
    prop("status", POD_STATUS, "Most recently observed status of the pod."),
)

POD_TEMPLATE_SPEC = model(
    "io.k8s.api.core.v1.PodTemplateSpec",
    "PodTemplateSpec describes the data a pod should have when created from a template.",
    prop("metadata", OBJECT_META, "Standard object's metadata."),
    prop("spec", POD_SPEC, "Specification of the desired behavior of the pod."),
)
