"""meta/v1: what every object carries (ObjectMeta), lists, Status, DeleteOptions, WatchEvent,
and the named scalar types the kinds share (Time, Quantity, IntOrString)."""

from __future__ import annotations

from kubesvc.api.resources import GROUP_VERSIONS
from kubesvc.api.schema.dsl import (
    BOOL,
    INT32,
    INT64,
    STRING,
    STRINGS,
    GroupVersionKind,
    Model,
    Opaque,
    Prop,
    array,
    map_of,
    model,
    prop,
)

META = "io.k8s.apimachinery.pkg.apis.meta.v1"

TIME = Opaque(
    f"{META}.Time",
    "Time is a wrapper around time.Time which supports correct marshaling to YAML and JSON: an "
    "RFC 3339 date and time in UTC.",
    {"type": "string", "format": "date-time"})
MICRO_TIME = Opaque(
    f"{META}.MicroTime",
    "MicroTime is version of Time with microsecond level precision.",
    {"type": "string", "format": "date-time"})
QUANTITY = Opaque(
    "io.k8s.apimachinery.pkg.api.resource.Quantity",
    "Quantity is a fixed-point representation of a number, such as 500m (0.5) or 1Gi "
    "(1024*1024*1024), written as a string or a number.",
    {"oneOf": [{"type": "string"}, {"type": "number"}]})
INT_OR_STRING = Opaque(
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
    "IntOrString is a type that can hold an int32 or a string, such as a port number or a port "
    "name.",
    {"format": "int-or-string", "oneOf": [{"type": "integer"}, {"type": "string"}],
     "x-kubernetes-int-or-string": True})
FIELDS_V1 = Opaque(
    f"{META}.FieldsV1",
    "FieldsV1 stores a set of fields in a data structure like a Trie, in JSON format.",
    {"type": "object"})
RAW_EXTENSION = Opaque(
    "io.k8s.apimachinery.pkg.runtime.RawExtension",
    "RawExtension holds an embedded object of any kind, with its own apiVersion and kind.",
    {"type": "object"})
PATCH = Opaque(
    f"{META}.Patch",
    "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.",
    {"type": "object"})

TYPE_META = (
    prop("apiVersion", STRING, "APIVersion defines the versioned schema of this representation "
         "of an object."),
    prop("kind", STRING, "Kind is a string value representing the REST resource this object "
         "represents."),
)

OWNER_REFERENCE = model(
    f"{META}.OwnerReference",
    "OwnerReference contains enough information to let you identify an owning object.",
    prop("apiVersion", STRING, "API version of the referent.", required=True),
    prop("kind", STRING, "Kind of the referent.", required=True),
    prop("name", STRING, "Name of the referent.", required=True),
    prop("uid", STRING, "UID of the referent.", required=True),
    prop("controller", BOOL, "If true, this reference points to the managing controller."),
    prop("blockOwnerDeletion", BOOL, "If true, AND if the owner has the \"foregroundDeletion\" "
         "finalizer, then the owner cannot be deleted from the key-value store until this "
         "reference is removed."),
)

MANAGED_FIELDS_ENTRY = model(
    f"{META}.ManagedFieldsEntry",
    "ManagedFieldsEntry is a workflow-id, a FieldSet and the group version of the resource that "
    "the fieldset applies to.",
    prop("manager", STRING, "Manager is an identifier of the workflow managing these fields."),
    prop("operation", STRING, "Operation is the type of operation which lead to this "
         "ManagedFieldsEntry being created: Apply or Update."),
    prop("apiVersion", STRING, "APIVersion defines the version of this resource that this field "
         "set applies to."),
    prop("time", TIME, "Time is the timestamp of when the ManagedFields entry was added."),
    prop("fieldsType", STRING, "FieldsType is the discriminator for the different fields format "
         "and version: FieldsV1."),
    prop("fieldsV1", FIELDS_V1, "FieldsV1 holds the first JSON version format as described in the "
         "\"FieldsV1\" type."),
    prop("subresource", STRING, "Subresource is the name of the subresource used to update that "
         "object, or empty string if the object was updated through the main resource."),
)

OBJECT_META = model(
    f"{META}.ObjectMeta",
    "ObjectMeta is metadata that all persisted resources must have, which includes all objects "
    "users must create.",
    prop("name", STRING, "Name must be unique within a namespace."),
    prop("generateName", STRING, "GenerateName is an optional prefix, used by the server, to "
         "generate a unique name ONLY IF the Name field has not been provided."),
    prop("namespace", STRING, "Namespace defines the space within which each name must be unique."),
    prop("selfLink", STRING, "Deprecated: selfLink is a legacy read-only field that is no longer "
         "populated by the system."),
    prop("uid", STRING, "UID is the unique in time and space value for this object."),
    prop("resourceVersion", STRING, "An opaque value that represents the internal version of this "
         "object that can be used by clients to determine when objects have changed."),
    prop("generation", INT64, "A sequence number representing a specific generation of the desired "
         "state."),
    prop("creationTimestamp", TIME, "CreationTimestamp is a timestamp representing the server time "
         "when this object was created."),
    prop("deletionTimestamp", TIME, "DeletionTimestamp is RFC 3339 date and time at which this "
         "resource will be deleted."),
    prop("deletionGracePeriodSeconds", INT64, "Number of seconds allowed for this object to "
         "gracefully terminate before it will be removed from the system."),
    prop("labels", map_of(), "Map of string keys and values that can be used to organize and "
         "categorize (scope and select) objects."),
    prop("annotations", map_of(), "Annotations is an unstructured key value map stored with a "
         "resource that may be set by external tools to store and retrieve arbitrary metadata."),
    prop("ownerReferences", array(OWNER_REFERENCE, merge="uid"), "List of objects depended by this "
         "object."),
    prop("finalizers", array(STRING, strategy="merge", list_type="set"), "Must be empty before the "
         "object is deleted from the registry."),
    prop("managedFields", array(MANAGED_FIELDS_ENTRY, list_type="atomic"), "ManagedFields maps "
         "workflow-id and version to the set of fields that are managed by that workflow."),
)

LABEL_SELECTOR_REQUIREMENT = model(
    f"{META}.LabelSelectorRequirement",
    "A label selector requirement is a selector that contains values, a key, and an operator "
    "that relates the key and values.",
    prop("key", STRING, "key is the label key that the selector applies to.", required=True),
    prop("operator", STRING, "operator represents a key's relationship to a set of values: In, "
         "NotIn, Exists and DoesNotExist.", required=True),
    prop("values", STRINGS, "values is an array of string values."),
)

LABEL_SELECTOR = model(
    f"{META}.LabelSelector",
    "A label selector is a label query over a set of resources.",
    prop("matchLabels", map_of(), "matchLabels is a map of {key,value} pairs."),
    prop("matchExpressions", array(LABEL_SELECTOR_REQUIREMENT, list_type="atomic"),
         "matchExpressions is a list of label selector requirements."),
)

CONDITION = model(
    f"{META}.Condition",
    "Condition contains details for one aspect of the current state of this API Resource.",
    prop("type", STRING, "type of condition in CamelCase or in foo.example.com/CamelCase.",
         required=True),
    prop("status", STRING, "status of the condition, one of True, False, Unknown.", required=True),
    prop("observedGeneration", INT64, "observedGeneration represents the .metadata.generation that "
         "the condition was set based upon."),
    prop("lastTransitionTime", TIME, "lastTransitionTime is the last time the condition "
         "transitioned from one status to another.", required=True),
    prop("reason", STRING, "reason contains a programmatic identifier indicating the reason for "
         "the condition's last transition.", required=True),
    prop("message", STRING, "message is a human readable message indicating details about the "
         "transition.", required=True),
)

SHARD_INFO = model(
    f"{META}.ShardInfo",
    "ShardInfo describes the shard selector that was applied to produce a list response.",
    prop("selector", STRING, "selector is the shard selector string from the request, echoed back "
         "so clients can verify which shard they received.", required=True),
)

LIST_META = model(
    f"{META}.ListMeta",
    "ListMeta describes metadata that synthetic resources must have, including lists and "
    "various status objects.",
    prop("selfLink", STRING, "Deprecated: selfLink is a legacy read-only field that is no longer "
         "populated by the system."),
    prop("resourceVersion", STRING, "String that identifies the server's internal version of this "
         "object that can be used by clients to determine when objects have changed."),
    prop("continue", STRING, "continue may be set if the user set a limit on the number of items "
         "returned, and indicates that the server has more data available."),
    prop("remainingItemCount", INT64, "remainingItemCount is the number of subsequent items in the "
         "list which are not included in this list response."),
    prop("shardInfo", SHARD_INFO, "shardInfo is set when the list is a filtered subset of the full "
         "collection, as selected by a shard selector on the request."),
)

STATUS_CAUSE = model(
    f"{META}.StatusCause",
    "StatusCause provides more information about an api.Status failure, including cases when "
    "multiple errors are encountered.",
    prop("reason", STRING, "A machine-readable description of the cause of the error."),
    prop("message", STRING, "A human-readable description of the cause of the error."),
    prop("field", STRING, "The field of the resource that has caused this error, as named by its "
         "JSON serialization."),
)

STATUS_DETAILS = model(
    f"{META}.StatusDetails",
    "StatusDetails is a set of additional properties that MAY be set by the server to provide "
    "additional information about a response.",
    prop("name", STRING, "The name attribute of the resource associated with the status "
         "StatusReason (when there is a single name which can be described)."),
    prop("group", STRING, "The group attribute of the resource associated with the status "
         "StatusReason."),
    prop("kind", STRING, "The kind attribute of the resource associated with the status "
         "StatusReason."),
    prop("uid", STRING, "UID of the resource."),
    prop("causes", array(STATUS_CAUSE, list_type="atomic"), "The Causes array includes more "
         "details associated with the StatusReason failure."),
    prop("retryAfterSeconds", INT32, "If specified, the time in seconds before the operation "
         "should be retried."),
)


def _in_every_group_version(kind: str) -> tuple[GroupVersionKind, ...]:
    """Kubernetes registers the option and event kinds in every group/version it serves."""
    return tuple(GroupVersionKind(group, version, kind)
                 for group, versions in GROUP_VERSIONS.items() for version in versions)


STATUS = model(
    f"{META}.Status",
    "Status is a return value for calls that don't return other objects.",
    *TYPE_META,
    prop("metadata", LIST_META, "Standard list metadata."),
    prop("status", STRING, "Status of the operation: \"Success\" or \"Failure\"."),
    prop("message", STRING, "A human-readable description of the status of this operation."),
    prop("reason", STRING, "A machine-readable description of why this operation is in the "
         "\"Failure\" status."),
    prop("details", STATUS_DETAILS, "Extended data associated with the reason."),
    prop("code", INT32, "Suggested HTTP return code for this status, 0 if not set."),
    kinds=(GroupVersionKind("", "v1", "Status"),),
)

PRECONDITIONS = model(
    f"{META}.Preconditions",
    "Preconditions must be fulfilled before an operation (update, delete, etc.) is carried out.",
    prop("uid", STRING, "Specifies the target UID."),
    prop("resourceVersion", STRING, "Specifies the target ResourceVersion."),
)

DELETE_OPTIONS = model(
    f"{META}.DeleteOptions",
    "DeleteOptions may be provided when deleting an API object.",
    *TYPE_META,
    prop("gracePeriodSeconds", INT64, "The duration in seconds before the object should be "
         "deleted."),
    prop("preconditions", PRECONDITIONS, "Must be fulfilled before a deletion is carried out."),
    prop("orphanDependents", BOOL, "Deprecated: please use the PropagationPolicy, this field will "
         "be deprecated in 1.7."),
    prop("propagationPolicy", STRING, "Whether and how garbage collection will be performed: "
         "Orphan, Background or Foreground."),
    prop("dryRun", STRINGS, "When present, indicates that modifications should not be persisted."),
    prop("ignoreStoreReadErrorWithClusterBreakingPotential", BOOL, "if set to true, it will "
         "trigger an unsafe deletion of the resource in case the normal deletion flow fails with "
         "a corrupt object error."),
    kinds=_in_every_group_version("DeleteOptions"),
)

WATCH_EVENT = model(
    f"{META}.WatchEvent",
    "Event represents a single event to a watched resource.",
    prop("type", STRING, "ADDED, MODIFIED, DELETED, BOOKMARK or ERROR.", required=True),
    prop("object", RAW_EXTENSION, "The object that changed: the whole object for ADDED and "
         "MODIFIED, its last state for DELETED, a Status for ERROR and an object with only "
         "metadata.resourceVersion for BOOKMARK.", required=True),
    kinds=_in_every_group_version("WatchEvent"),
)


def resource(api_version: str, name: str, description: str, *props: Prop) -> Model:
    """A kind stored and served by the API: apiVersion, kind and metadata, then its own fields."""
    group, _, version = api_version.rpartition("/")
    gvk = GroupVersionKind(group, version, name.rpartition(".")[2])
    return model(name, description, *TYPE_META,
                 prop("metadata", OBJECT_META, "Standard object's metadata."), *props, kinds=(gvk,))


def list_of(item: Model) -> Model:
    """`PodList` for `Pod`: what a list request answers."""
    (gvk,) = item.kinds
    list_kind = GroupVersionKind(gvk.group, gvk.version, f"{gvk.kind}List")
    return model(f"{item.name}List", f"{list_kind.kind} is a list of {gvk.kind} objects.",
                 *TYPE_META,
                 prop("metadata", LIST_META, "Standard list metadata."),
                 prop("items", array(item), f"List of {gvk.kind} objects.", required=True),
                 kinds=(list_kind,))
