"""core/v1 Volume: the volume sources a pod can mount.

The sources backed by cloud and storage vendors' plugins are free-form here: kubesvc cannot
mount them, but a manifest that names one must still pass strict validation."""

from __future__ import annotations

from kubesvc.api.schema.containers import OBJECT_FIELD_SELECTOR, RESOURCE_FIELD_SELECTOR
from kubesvc.api.schema.dsl import BOOL, FREE, INT32, INT64, STRING, array, enum, model, prop
from kubesvc.api.schema.meta import QUANTITY

HOST_PATH_TYPE = enum("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket",
                      "CharDevice", "BlockDevice")

HOST_PATH_VOLUME_SOURCE = model(
    "io.k8s.api.core.v1.HostPathVolumeSource",
    "Represents a host path mapped into a pod.",
    prop("path", STRING, "path of the directory on the host.", required=True),
    prop("type", HOST_PATH_TYPE, "type for HostPath Volume; defaults to \"\" (no checks)."),
)

EMPTY_DIR_VOLUME_SOURCE = model(
    "io.k8s.api.core.v1.EmptyDirVolumeSource",
    "Represents an empty directory for a pod.",
    prop("medium", STRING, "medium represents what type of storage medium should back this "
         "directory."),
    prop("sizeLimit", QUANTITY, "sizeLimit is the total amount of local storage required for this "
         "EmptyDir volume."),
    prop("mode", INT32, "mode specifies the permission bits for the emptyDir directory, in "
         "numeric notation (e.g., 0755, 01777)."),
)

KEY_TO_PATH = model(
    "io.k8s.api.core.v1.KeyToPath",
    "Maps a string key to a path within a volume.",
    prop("key", STRING, "key is the key to project.", required=True),
    prop("path", STRING, "path is the relative path of the file to map the key to.", required=True),
    prop("mode", INT32, "mode is Optional: mode bits used to set permissions on this file."),
    prop("user", INT64, "user is Optional: The owner UID of the created file."),
)

SECRET_VOLUME_SOURCE = model(
    "io.k8s.api.core.v1.SecretVolumeSource",
    "Adapts a Secret into a volume.",
    prop("secretName", STRING, "secretName is the name of the secret in the pod's namespace to "
         "use."),
    prop("items", array(KEY_TO_PATH, list_type="atomic"), "items: if unspecified, each key-value "
         "pair in the Data field of the referenced Secret will be projected into the volume as a "
         "file whose name is the key and content is the value."),
    prop("defaultMode", INT32, "defaultMode is Optional: mode bits used to set permissions on "
         "created files by default."),
    prop("optional", BOOL, "optional field specify whether the Secret or its keys must be "
         "defined."),
    prop("defaultUser", INT64, "defaultUser is Optional: The owner UID of the created files by "
         "default."),
)

NFS_VOLUME_SOURCE = model(
    "io.k8s.api.core.v1.NFSVolumeSource",
    "Represents an NFS mount that lasts the lifetime of a pod.",
    prop("server", STRING, "server is the hostname or IP address of the NFS server.",
         required=True),
    prop("path", STRING, "path that is exported by the NFS server.", required=True),
    prop("readOnly", BOOL, "readOnly here will force the NFS export to be mounted with read-only "
         "permissions."),
)

PERSISTENT_VOLUME_CLAIM_VOLUME_SOURCE = model(
    "io.k8s.api.core.v1.PersistentVolumeClaimVolumeSource",
    "PersistentVolumeClaimVolumeSource references the user's PVC in the same namespace.",
    prop("claimName", STRING, "claimName is the name of a PersistentVolumeClaim in the same "
         "namespace as the pod using this volume.", required=True),
    prop("readOnly", BOOL, "readOnly Will force the ReadOnly setting in VolumeMounts."),
)

DOWNWARD_API_VOLUME_FILE = model(
    "io.k8s.api.core.v1.DownwardAPIVolumeFile",
    "DownwardAPIVolumeFile represents information to create the file containing the pod field.",
    prop("path", STRING, "Required: Path is the relative path name of the file to be created.",
         required=True),
    prop("fieldRef", OBJECT_FIELD_SELECTOR, "Required: Selects a field of the pod: only "
         "annotations, labels, name, namespace and uid are supported."),
    prop("resourceFieldRef", RESOURCE_FIELD_SELECTOR, "Selects a resource of the container: only "
         "resources limits and requests (limits.cpu, limits.memory, requests.cpu and "
         "requests.memory) are currently supported."),
    prop("mode", INT32, "Optional: mode bits used to set permissions on this file, must be an "
         "octal value between 0000 and 0777 or a decimal value between 0 and 511."),
    prop("user", INT64, "user is Optional: The owner UID of the created file."),
)

DOWNWARD_API_VOLUME_SOURCE = model(
    "io.k8s.api.core.v1.DownwardAPIVolumeSource",
    "DownwardAPIVolumeSource represents a volume containing downward API info.",
    prop("items", array(DOWNWARD_API_VOLUME_FILE, list_type="atomic"), "Items is a list of "
         "downward API volume file."),
    prop("defaultMode", INT32, "Optional: mode bits to use on created files by default."),
    prop("defaultUser", INT64, "defaultUser is Optional: The owner UID of the created files by "
         "default."),
)

CONFIG_MAP_VOLUME_SOURCE = model(
    "io.k8s.api.core.v1.ConfigMapVolumeSource",
    "Adapts a ConfigMap into a volume.",
    prop("name", STRING, "Name of the referent."),
    prop("items", array(KEY_TO_PATH, list_type="atomic"), "items: if unspecified, each key-value "
         "pair in the Data field of the referenced ConfigMap will be projected into the volume as "
         "a file whose name is the key and content is the value."),
    prop("defaultMode", INT32, "defaultMode is optional: mode bits used to set permissions on "
         "created files by default."),
    prop("optional", BOOL, "optional specify whether the ConfigMap or its keys must be defined."),
    prop("defaultUser", INT64, "defaultUser is Optional: The owner UID of the created files by "
         "default."),
)

SECRET_PROJECTION = model(
    "io.k8s.api.core.v1.SecretProjection",
    "Adapts a secret into a projected volume.",
    prop("name", STRING, "Name of the referent."),
    prop("items", array(KEY_TO_PATH, list_type="atomic"), "items: if unspecified, each key-value "
         "pair in the Data field of the referenced Secret will be projected into the volume as a "
         "file whose name is the key and content is the value."),
    prop("optional", BOOL, "optional field specify whether the Secret or its key must be defined."),
)

DOWNWARD_API_PROJECTION = model(
    "io.k8s.api.core.v1.DownwardAPIProjection",
    "Represents downward API info for projecting into a projected volume.",
    prop("items", array(DOWNWARD_API_VOLUME_FILE, list_type="atomic"), "Items is a list of "
         "DownwardAPIVolume file."),
)

CONFIG_MAP_PROJECTION = model(
    "io.k8s.api.core.v1.ConfigMapProjection",
    "Adapts a ConfigMap into a projected volume.",
    prop("name", STRING, "Name of the referent."),
    prop("items", array(KEY_TO_PATH, list_type="atomic"), "items: if unspecified, each key-value "
         "pair in the Data field of the referenced ConfigMap will be projected into the volume as "
         "a file whose name is the key and content is the value."),
    prop("optional", BOOL, "optional specify whether the ConfigMap or its keys must be defined."),
)

SERVICE_ACCOUNT_TOKEN_PROJECTION = model(
    "io.k8s.api.core.v1.ServiceAccountTokenProjection",
    "ServiceAccountTokenProjection represents a projected service account token volume.",
    prop("audience", STRING, "audience is the intended audience of the token."),
    prop("expirationSeconds", INT64, "expirationSeconds is the requested duration of validity of "
         "the service account token."),
    prop("path", STRING, "path is the path relative to the mount point of the file to project the "
         "token into.", required=True),
    prop("user", INT64, "user is Optional: The owner UID of the created file."),
)

VOLUME_PROJECTION = model(
    "io.k8s.api.core.v1.VolumeProjection",
    "Projection that may be projected along with other supported volume types.",
    prop("secret", SECRET_PROJECTION, "secret information about the secret data to project."),
    prop("downwardAPI", DOWNWARD_API_PROJECTION, "downwardAPI information about the downwardAPI "
         "data to project."),
    prop("configMap", CONFIG_MAP_PROJECTION, "configMap information about the configMap data to "
         "project."),
    prop("serviceAccountToken", SERVICE_ACCOUNT_TOKEN_PROJECTION, "serviceAccountToken is "
         "information about the serviceAccountToken data to project."),
    prop("clusterTrustBundle", FREE, "ClusterTrustBundle allows a pod to access the "
         "`.spec.trustBundle` field of ClusterTrustBundle objects in an auto-updating file."),
    prop("podCertificate", FREE, "Projects an auto-rotating credential bundle (private key and "
         "certificate chain) that the pod can use either as a TLS client or server."),
)

PROJECTED_VOLUME_SOURCE = model(
    "io.k8s.api.core.v1.ProjectedVolumeSource",
    "Represents a projected volume source.",
    prop("sources", array(VOLUME_PROJECTION, list_type="atomic"), "sources is the list of volume "
         "projections."),
    prop("defaultMode", INT32, "defaultMode are the mode bits used to set permissions on created "
         "files by default."),
    prop("defaultUser", INT64, "defaultUser is Optional: The owner UID of the created files by "
         "default."),
)

VOLUME = model(
    "io.k8s.api.core.v1.Volume",
    "Volume represents a named volume in a pod that may be accessed by any container in the pod.",
    prop("name", STRING, "name of the volume.", required=True),
    prop("hostPath", HOST_PATH_VOLUME_SOURCE, "hostPath represents a pre-existing file or "
         "directory on the host machine that is directly exposed to the container."),
    prop("emptyDir", EMPTY_DIR_VOLUME_SOURCE, "emptyDir represents a temporary directory that "
         "shares a pod's lifetime."),
    prop("gcePersistentDisk", FREE, "gcePersistentDisk represents a GCE Disk resource that is "
         "attached to a kubelet's host machine and then exposed to the pod."),
    prop("awsElasticBlockStore", FREE, "awsElasticBlockStore represents an AWS Disk resource that "
         "is attached to a kubelet's host machine and then exposed to the pod."),
    prop("gitRepo", FREE, "gitRepo represents a git repository at a particular revision."),
    prop("secret", SECRET_VOLUME_SOURCE, "secret represents a secret that should populate this "
         "volume."),
    prop("nfs", NFS_VOLUME_SOURCE, "nfs represents an NFS mount on the host that shares a pod's "
         "lifetime."),
    prop("iscsi", FREE, "iscsi represents an ISCSI Disk resource that is attached to a kubelet's "
         "host machine and then exposed to the pod."),
    prop("glusterfs", FREE, "glusterfs represents a Glusterfs mount on the host that shares a "
         "pod's lifetime."),
    prop("persistentVolumeClaim", PERSISTENT_VOLUME_CLAIM_VOLUME_SOURCE, "persistentVolumeClaim "
         "represents a reference to a PersistentVolumeClaim in the same namespace."),
    prop("rbd", FREE, "rbd represents a Rados Block Device mount on the host that shares a pod's "
         "lifetime."),
    prop("flexVolume", FREE, "flexVolume represents a generic volume resource that is "
         "provisioned/attached using an exec based plugin."),
    prop("cinder", FREE, "cinder represents a cinder volume attached and mounted on kubelets host "
         "machine."),
    prop("cephfs", FREE, "cephFS represents a Ceph FS mount on the host that shares a pod's "
         "lifetime."),
    prop("flocker", FREE, "flocker represents a Flocker volume attached to a kubelet's host "
         "machine."),
    prop("downwardAPI", DOWNWARD_API_VOLUME_SOURCE, "downwardAPI represents downward API about "
         "the pod that should populate this volume."),
    prop("fc", FREE, "fc represents a Fibre Channel resource that is attached to a kubelet's host "
         "machine and then exposed to the pod."),
    prop("azureFile", FREE, "azureFile represents an Azure File Service mount on the host and "
         "bind mount to the pod."),
    prop("configMap", CONFIG_MAP_VOLUME_SOURCE, "configMap represents a configMap that should "
         "populate this volume."),
    prop("vsphereVolume", FREE, "vsphereVolume represents a vSphere volume attached and mounted "
         "on kubelets host machine."),
    prop("quobyte", FREE, "quobyte represents a Quobyte mount on the host that shares a pod's "
         "lifetime."),
    prop("azureDisk", FREE, "azureDisk represents an Azure Data Disk mount on the host and bind "
         "mount to the pod."),
    prop("photonPersistentDisk", FREE, "photonPersistentDisk represents a PhotonController "
         "persistent disk attached and mounted on kubelets host machine."),
    prop("projected", PROJECTED_VOLUME_SOURCE, "projected items for all in one resources secrets, "
         "configmaps, and downward API."),
    prop("portworxVolume", FREE, "portworxVolume represents a portworx volume attached and "
         "mounted on kubelets host machine."),
    prop("scaleIO", FREE, "scaleIO represents a ScaleIO persistent volume attached and mounted on "
         "Kubernetes nodes."),
    prop("storageos", FREE, "storageOS represents a StorageOS volume attached and mounted on "
         "Kubernetes nodes."),
    prop("csi", FREE, "csi (Container Storage Interface) represents ephemeral storage that is "
         "handled by certain external CSI drivers."),
    prop("ephemeral", FREE, "ephemeral represents a volume that is handled by a cluster storage "
         "driver."),
    prop("image", FREE, "image represents an OCI object (a container image or artifact) pulled "
         "and mounted on the kubelet's host machine."),
)
