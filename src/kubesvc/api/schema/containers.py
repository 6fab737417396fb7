"""core/v1 Container: image, command, ports, environment, resources, probes, lifecycle hooks and
security context."""

from __future__ import annotations

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
from kubesvc.api.schema.meta import INT_OR_STRING, QUANTITY

PROTOCOL = enum("TCP", "UDP", "SCTP")
MOUNT_PROPAGATION_MODE = enum("None", "HostToContainer", "Bidirectional")
URI_SCHEME = enum("HTTP", "HTTPS")
HTTP_PROTOCOL = enum("HTTP1", "HTTP2")
GRPC_PROBE_MODE = enum("Plaintext", "TLS")
SECCOMP_PROFILE_TYPE = enum("Unconfined", "RuntimeDefault", "Localhost")
APP_ARMOR_PROFILE_TYPE = enum("Unconfined", "RuntimeDefault", "Localhost")
PROC_MOUNT_TYPE = enum("Default", "Unmasked")
TERMINATION_MESSAGE_POLICY = enum("File", "FallbackToLogsOnError")
PULL_POLICY = enum("Always", "Never", "IfNotPresent")

CONTAINER_PORT = model(
    "io.k8s.api.core.v1.ContainerPort",
    "ContainerPort represents a network port in a single container.",
    prop("name", STRING, "If specified, this must be an IANA_SVC_NAME and unique within the pod."),
    prop("hostPort", INT32, "Number of port to expose on the host."),
    prop("containerPort", INT32, "Number of port to expose on the pod's IP address.",
         required=True),
    prop("protocol", PROTOCOL, "Protocol for port."),
    prop("hostIP", STRING, "What host IP to bind the external port to."),
)

CONFIG_MAP_ENV_SOURCE = model(
    "io.k8s.api.core.v1.ConfigMapEnvSource",
    "ConfigMapEnvSource selects a ConfigMap to populate the environment variables with.",
    prop("name", STRING, "Name of the referent."),
    prop("optional", BOOL, "Specify whether the ConfigMap must be defined."),
)

SECRET_ENV_SOURCE = model(
    "io.k8s.api.core.v1.SecretEnvSource",
    "SecretEnvSource selects a Secret to populate the environment variables with.",
    prop("name", STRING, "Name of the referent."),
    prop("optional", BOOL, "Specify whether the Secret must be defined."),
)

ENV_FROM_SOURCE = model(
    "io.k8s.api.core.v1.EnvFromSource",
    "EnvFromSource represents the source of a set of ConfigMaps or Secrets.",
    prop("prefix", STRING, "Optional text to prepend to the name of each environment variable."),
    prop("configMapRef", CONFIG_MAP_ENV_SOURCE, "The ConfigMap to select from."),
    prop("secretRef", SECRET_ENV_SOURCE, "The Secret to select from."),
)

OBJECT_FIELD_SELECTOR = model(
    "io.k8s.api.core.v1.ObjectFieldSelector",
    "ObjectFieldSelector selects an APIVersioned field of an object.",
    prop("apiVersion", STRING, "Version of the schema the FieldPath is written in terms of, "
         "defaults to \"v1\"."),
    prop("fieldPath", STRING, "Path of the field to select in the specified API version.",
         required=True),
)

RESOURCE_FIELD_SELECTOR = model(
    "io.k8s.api.core.v1.ResourceFieldSelector",
    "ResourceFieldSelector represents container resources (cpu, memory) and their output format.",
    prop("containerName", STRING, "Container name: required for volumes, optional for env vars."),
    prop("resource", STRING, "Required: resource to select.", required=True),
    prop("divisor", QUANTITY, "Specifies the output format of the exposed resources, defaults to "
         "\"1\"."),
)

CONFIG_MAP_KEY_SELECTOR = model(
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "Selects a key from a ConfigMap.",
    prop("name", STRING, "Name of the referent."),
    prop("key", STRING, "The key to select from the ConfigMap's Data field.", required=True),
    prop("optional", BOOL, "Specify whether the ConfigMap or its key must be defined."),
)

SECRET_KEY_SELECTOR = model(
    "io.k8s.api.core.v1.SecretKeySelector",
    "SecretKeySelector selects a key of a Secret.",
    prop("name", STRING, "Name of the referent."),
    prop("key", STRING, "The key of the secret to select from.", required=True),
    prop("optional", BOOL, "Specify whether the Secret or its key must be defined."),
)

ENV_VAR_SOURCE = model(
    "io.k8s.api.core.v1.EnvVarSource",
    "EnvVarSource represents a source for the value of an EnvVar.",
    prop("fieldRef", OBJECT_FIELD_SELECTOR, "Selects a field of the pod: supports metadata.name, "
         "metadata.namespace, `metadata.labels['<KEY>']`, `metadata.annotations['<KEY>']`, "
         "spec.nodeName, spec.serviceAccountName, status.hostIP, status.podIP, status.podIPs."),
    prop("resourceFieldRef", RESOURCE_FIELD_SELECTOR, "Selects a resource of the container: only "
         "resources limits and requests (limits.cpu, limits.memory, limits.ephemeral-storage, "
         "requests.cpu, requests.memory and requests.ephemeral-storage) are currently supported."),
    prop("configMapKeyRef", CONFIG_MAP_KEY_SELECTOR, "Selects a key of a ConfigMap."),
    prop("secretKeyRef", SECRET_KEY_SELECTOR, "Selects a key of a secret in the pod's namespace."),
    prop("fileKeyRef", FREE, "FileKeyRef selects a key of the env file."),
)

ENV_VAR = model(
    "io.k8s.api.core.v1.EnvVar",
    "EnvVar represents an environment variable present in a Container.",
    prop("name", STRING, "Name of the environment variable.", required=True),
    prop("value", STRING, "Variable references $(VAR_NAME) are expanded using the previously "
         "defined environment variables in the container and any service environment variables."),
    prop("valueFrom", ENV_VAR_SOURCE, "Source for the environment variable's value."),
)

RESOURCE_CLAIM = model(
    "io.k8s.api.core.v1.ResourceClaim",
    "ResourceClaim references one entry in PodSpec.ResourceClaims.",
    prop("name", STRING, "Name must match the name of one entry in pod.spec.resourceClaims of the "
         "Pod where this field is used.", required=True),
    prop("request", STRING, "Request is the name chosen for a request in the referenced claim."),
)

RESOURCE_REQUIREMENTS = model(
    "io.k8s.api.core.v1.ResourceRequirements",
    "ResourceRequirements describes the compute resource requirements.",
    prop("limits", map_of(QUANTITY), "Limits describes the maximum amount of compute resources "
         "allowed."),
    prop("requests", map_of(QUANTITY), "Requests describes the minimum amount of compute "
         "resources required."),
    prop("claims", array(RESOURCE_CLAIM, keys=("name",)), "Claims lists the names of resources, "
         "defined in spec.resourceClaims, that are used by this container."),
)

CONTAINER_RESIZE_POLICY = model(
    "io.k8s.api.core.v1.ContainerResizePolicy",
    "ContainerResizePolicy represents resource resize policy for the container.",
    prop("resourceName", STRING, "Name of the resource to which this resource resize policy "
         "applies.", required=True),
    prop("restartPolicy", STRING, "Restart policy to apply when specified resource is resized.",
         required=True),
)

VOLUME_MOUNT = model(
    "io.k8s.api.core.v1.VolumeMount",
    "VolumeMount describes a mounting of a Volume within a container.",
    prop("name", STRING, "This must match the Name of a Volume.", required=True),
    prop("readOnly", BOOL, "Mounted read-only if true, read-write otherwise (false or "
         "unspecified)."),
    prop("recursiveReadOnly", STRING, "RecursiveReadOnly specifies whether read-only mounts "
         "should be handled recursively."),
    prop("mountPath", STRING, "Path within the container at which the volume should be mounted.",
         required=True),
    prop("subPath", STRING, "Path within the volume from which the container's volume should be "
         "mounted."),
    prop("mountPropagation", MOUNT_PROPAGATION_MODE, "mountPropagation determines how mounts are "
         "propagated from the host to container and the other way around."),
    prop("subPathExpr", STRING, "Expanded path within the volume from which the container's "
         "volume should be mounted."),
    prop("bindMountOptions", array(STRING, list_type="set"), "bindMountOptions is the list of "
         "additional bind mount options to apply when mounting this volume into the container."),
)

VOLUME_DEVICE = model(
    "io.k8s.api.core.v1.VolumeDevice",
    "volumeDevice describes a mapping of a raw block device within a container.",
    prop("name", STRING, "name must match the name of a persistentVolumeClaim in the pod.",
         required=True),
    prop("devicePath", STRING, "devicePath is the path inside of the container that the device "
         "will be mapped to.", required=True),
)

EXEC_ACTION = model(
    "io.k8s.api.core.v1.ExecAction",
    "ExecAction describes a \"run in container\" action.",
    prop("command", STRINGS, "Command is the command line to execute inside the container, the "
         "working directory for the command is root ('/') in the container's filesystem."),
)

HTTP_HEADER = model(
    "io.k8s.api.core.v1.HTTPHeader",
    "HTTPHeader describes a custom header to be used in HTTP probes.",
    prop("name", STRING, "The header field name.", required=True),
    prop("value", STRING, "The header field value.", required=True),
)

HTTP_GET_ACTION = model(
    "io.k8s.api.core.v1.HTTPGetAction",
    "HTTPGetAction describes an action based on HTTP Get requests.",
    prop("path", STRING, "Path to access on the HTTP server."),
    prop("port", INT_OR_STRING, "Name or number of the port to access on the container.",
         required=True),
    prop("host", STRING, "Host name to connect to, defaults to the pod IP. You probably want to "
         "set \"Host\" in httpHeaders instead."),
    prop("scheme", URI_SCHEME, "Scheme to use for connecting to the host."),
    prop("httpHeaders", array(HTTP_HEADER, list_type="atomic"), "Custom headers to set in the "
         "request."),
    prop("protocol", HTTP_PROTOCOL, "Protocol selects the wire protocol for the probe connection."),
)

TCP_SOCKET_ACTION = model(
    "io.k8s.api.core.v1.TCPSocketAction",
    "TCPSocketAction describes an action based on opening a socket.",
    prop("port", INT_OR_STRING, "Number or name of the port to access on the container.",
         required=True),
    prop("host", STRING, "Optional: Host name to connect to, defaults to the pod IP."),
)

GRPC_ACTION = model(
    "io.k8s.api.core.v1.GRPCAction",
    "GRPCAction specifies an action involving a GRPC service.",
    prop("port", INT32, "Port number of the gRPC service.", required=True),
    prop("service", STRING, "Service is the name of the service to place in the gRPC "
         "HealthCheckRequest (see "
         "https://github.com/grpc/grpc/blob/master/doc/health-checking.md)."),
    prop("mode", GRPC_PROBE_MODE, "mode specifies the connection mode for the gRPC health probe."),
)

PROBE = model(
    "io.k8s.api.core.v1.Probe",
    "Probe describes a health check to be performed against a container to determine whether it is "
    "alive or ready to receive traffic.",
    prop("exec", EXEC_ACTION, "Exec specifies a command to execute in the container."),
    prop("httpGet", HTTP_GET_ACTION, "HTTPGet specifies an HTTP GET request to perform."),
    prop("tcpSocket", TCP_SOCKET_ACTION, "TCPSocket specifies a connection to a TCP port."),
    prop("grpc", GRPC_ACTION, "GRPC specifies a GRPC HealthCheckRequest."),
    prop("initialDelaySeconds", INT32, "Number of seconds after the container has started before "
         "liveness probes are initiated."),
    prop("timeoutSeconds", INT32, "Number of seconds after which the probe times out."),
    prop("periodSeconds", INT32, "How often (in seconds) to perform the probe."),
    prop("successThreshold", INT32, "Minimum consecutive successes for the probe to be considered "
         "successful after having failed."),
    prop("failureThreshold", INT32, "Minimum consecutive failures for the probe to be considered "
         "failed after having succeeded."),
    prop("terminationGracePeriodSeconds", INT64, "Optional duration in seconds the pod needs to "
         "terminate gracefully upon probe failure."),
)

SLEEP_ACTION = model(
    "io.k8s.api.core.v1.SleepAction",
    "SleepAction describes a \"sleep\" action.",
    prop("seconds", INT64, "Seconds is the number of seconds to sleep.", required=True),
)

LIFECYCLE_HANDLER = model(
    "io.k8s.api.core.v1.LifecycleHandler",
    "LifecycleHandler defines a specific action that should be taken in a lifecycle hook.",
    prop("exec", EXEC_ACTION, "Exec specifies a command to execute in the container."),
    prop("httpGet", HTTP_GET_ACTION, "HTTPGet specifies an HTTP GET request to perform."),
    prop("tcpSocket", TCP_SOCKET_ACTION, "Deprecated."),
    prop("sleep", SLEEP_ACTION, "Sleep represents a duration that the container should sleep."),
)

LIFECYCLE = model(
    "io.k8s.api.core.v1.Lifecycle",
    "Lifecycle describes actions that the management system should take in response to container "
    "lifecycle events.",
    prop("postStart", LIFECYCLE_HANDLER, "PostStart is called immediately after a container is "
         "created."),
    prop("preStop", LIFECYCLE_HANDLER, "PreStop is called immediately before a container is "
         "terminated due to an API request or management event such as liveness/startup probe "
         "failure, preemption, resource contention, etc."),
    prop("stopSignal", STRING, "StopSignal defines which signal will be sent to a container when "
         "it is being stopped."),
)

CAPABILITIES = model(
    "io.k8s.api.core.v1.Capabilities",
    "Adds and removes POSIX capabilities from running containers.",
    prop("add", STRINGS, "Added capabilities."),
    prop("drop", STRINGS, "Removed capabilities."),
)

SE_LINUX_OPTIONS = model(
    "io.k8s.api.core.v1.SELinuxOptions",
    "SELinuxOptions are the labels to be applied to the container.",
    prop("user", STRING, "User is a SELinux user label that applies to the container."),
    prop("role", STRING, "Role is a SELinux role label that applies to the container."),
    prop("type", STRING, "Type is a SELinux type label that applies to the container."),
    prop("level", STRING, "Level is SELinux level label that applies to the container."),
)

WINDOWS_SECURITY_CONTEXT_OPTIONS = model(
    "io.k8s.api.core.v1.WindowsSecurityContextOptions",
    "WindowsSecurityContextOptions contain Windows-specific options and credentials.",
    prop("gmsaCredentialSpecName", STRING, "GMSACredentialSpecName is the name of the GMSA "
         "credential spec to use."),
    prop("gmsaCredentialSpec", STRING, "GMSACredentialSpec is where the GMSA admission webhook "
         "(https://github.com/kubernetes-sigs/windows-gmsa) inlines the contents of the GMSA "
         "credential spec named by the GMSACredentialSpecName field."),
    prop("runAsUserName", STRING, "The UserName in Windows to run the entrypoint of the container "
         "process."),
    prop("hostProcess", BOOL, "HostProcess determines if a container should be run as a 'Host "
         "Process' container."),
)

SECCOMP_PROFILE = model(
    "io.k8s.api.core.v1.SeccompProfile",
    "SeccompProfile defines a pod/container's seccomp profile settings.",
    prop("type", SECCOMP_PROFILE_TYPE, "type indicates which kind of seccomp profile will be "
         "applied.", required=True),
    prop("localhostProfile", STRING, "localhostProfile indicates a profile defined in a file on "
         "the node should be used."),
)

APP_ARMOR_PROFILE = model(
    "io.k8s.api.core.v1.AppArmorProfile",
    "AppArmorProfile defines a pod or container's AppArmor settings.",
    prop("type", APP_ARMOR_PROFILE_TYPE, "type indicates which kind of AppArmor profile will be "
         "applied.", required=True),
    prop("localhostProfile", STRING, "localhostProfile indicates a profile loaded on the node "
         "that should be used."),
)

SECURITY_CONTEXT = model(
    "io.k8s.api.core.v1.SecurityContext",
    "SecurityContext holds security configuration that will be applied to a container.",
    prop("capabilities", CAPABILITIES, "The capabilities to add/drop when running containers."),
    prop("privileged", BOOL, "Run container in privileged mode."),
    prop("seLinuxOptions", SE_LINUX_OPTIONS, "The SELinux context to be applied to the container."),
    prop("windowsOptions", WINDOWS_SECURITY_CONTEXT_OPTIONS, "The Windows specific settings "
         "applied to all containers."),
    prop("runAsUser", INT64, "The UID to run the entrypoint of the container process."),
    prop("runAsGroup", INT64, "The GID to run the entrypoint of the container process."),
    prop("runAsNonRoot", BOOL, "Indicates that the container must run as a non-root user."),
    prop("readOnlyRootFilesystem", BOOL, "Whether this container has a read-only root filesystem."),
    prop("allowPrivilegeEscalation", BOOL, "AllowPrivilegeEscalation controls whether a process "
         "can gain more privileges than its parent process."),
    prop("procMount", PROC_MOUNT_TYPE, "procMount denotes the type of proc mount to use for the "
         "containers."),
    prop("seccompProfile", SECCOMP_PROFILE, "The seccomp options to use by this container."),
    prop("appArmorProfile", APP_ARMOR_PROFILE, "appArmorProfile is the AppArmor options to use by "
         "this container."),
)

CONTAINER = model(
    "io.k8s.api.core.v1.Container",
    "A single application container that you want to run within a pod.",
    prop("name", STRING, "Name of the container specified as a DNS_LABEL, unique within the pod.",
         required=True),
    prop("image", STRING, "Container image name."),
    prop("command", STRINGS, "Entrypoint array."),
    prop("args", STRINGS, "Arguments to the entrypoint."),
    prop("workingDir", STRING, "Container's working directory."),
    prop("ports", array(CONTAINER_PORT, merge="containerPort", keys=("containerPort", "protocol")),
         "List of ports to expose from the container."),
    prop("envFrom", array(ENV_FROM_SOURCE, list_type="atomic"), "List of sources to populate "
         "environment variables in the container."),
    prop("env", array(ENV_VAR, merge="name"), "List of environment variables to set in the "
         "container."),
    prop("resources", RESOURCE_REQUIREMENTS, "Compute Resources required by this container."),
    prop("resizePolicy", array(CONTAINER_RESIZE_POLICY, list_type="atomic"), "Resources resize "
         "policy for the container."),
    prop("restartPolicy", STRING, "RestartPolicy defines the restart behavior of individual "
         "containers in a pod."),
    prop("restartPolicyRules", array(FREE, list_type="atomic"), "Represents a list of rules to be "
         "checked to determine if the container should be restarted on exit."),
    prop("volumeMounts", array(VOLUME_MOUNT, merge="mountPath"), "Pod volumes to mount into the "
         "container's filesystem."),
    prop("volumeDevices", array(VOLUME_DEVICE, merge="devicePath"), "volumeDevices is the list of "
         "block devices to be used by the container."),
    prop("livenessProbe", PROBE, "Periodic probe of container liveness."),
    prop("readinessProbe", PROBE, "Periodic probe of container service readiness."),
    prop("startupProbe", PROBE, "StartupProbe indicates that the Pod has successfully "
         "initialized."),
    prop("lifecycle", LIFECYCLE, "Actions that the management system should take in response to "
         "container lifecycle events."),
    prop("terminationMessagePath", STRING, "Optional: Path at which the file to which the "
         "container's termination message will be written is mounted into the container's "
         "filesystem."),
    prop("terminationMessagePolicy", TERMINATION_MESSAGE_POLICY, "Indicate how the termination "
         "message should be populated."),
    prop("imagePullPolicy", PULL_POLICY, "Image pull policy."),
    prop("securityContext", SECURITY_CONTEXT, "SecurityContext defines the security options the "
         "container should be run with."),
    prop("stdin", BOOL, "Whether this container should allocate a buffer for stdin in the "
         "container runtime."),
    prop("stdinOnce", BOOL, "Whether the container runtime should close the stdin channel after "
         "it has been opened by a single attach."),
    prop("tty", BOOL, "Whether this container should allocate a TTY for itself, also requires "
         "'stdin' to be true."),
)
