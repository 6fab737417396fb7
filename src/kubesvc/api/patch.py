"""PATCH bodies applied to stored objects, the way kube-apiserver applies them.

`apply_patch(original, body, content_type)` is the only entry point. It knows four media types:

- `application/json-patch+json`: RFC 6902, applied with the `jsonpatch` library one operation at
  a time so a failure names the operation that failed.
- `application/merge-patch+json`: RFC 7386 (`null` deletes a key, anything else replaces).
- `application/strategic-merge-patch+json`: Kubernetes' strategic merge patch. Lists carrying a
  `patchStrategy:"merge"` struct tag in k8s.io/api are merged by their `patchMergeKey` (or as
  sets, for lists of scalars); every other list is replaced. The directives `$patch`,
  `$setElementOrder/<list>`, `$deleteFromPrimitiveList/<list>` and `$retainKeys` and `null`
  deletion follow k8s.io/apimachinery/pkg/util/strategicpatch, which `kubectl apply` relies on.
- `application/apply-patch+yaml`: server-side apply without field managers: the applied
  configuration is strategically merged onto the stored object, so fields it leaves out are kept.

Status codes and messages follow staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go:
an undecodable body is 400 BadRequest, a JSON patch that does not apply is 422 Invalid, a patched
document that is no longer an object is 422 Invalid. Where Kubernetes answers a malformed
strategic merge patch with a bare 500 (a list item without its merge key, say), this module
answers 400 BadRequest with the same message.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonpatch
import jsonpointer
import yaml

from kubesvc.api.errors import ApiError, Cause, bad_request, invalid, unsupported_media_type

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, APPLY_PATCH, STRATEGIC_MERGE_PATCH)

# kube-apiserver refuses JSON patches with more operations than this (413).
MAX_JSON_PATCH_OPERATIONS = 10000


def apply_patch(original: dict[str, Any], body: bytes, content_type: str) -> dict[str, Any]:
    """Return a new object: `original` with the PATCH `body` of media type `content_type` applied.

    `original` is never modified. Every failure is an `ApiError`: 415 for an unknown media type,
    400 for a body that cannot be decoded or is malformed, 413 for an oversized JSON patch, 422 for
    a JSON patch that does not apply or a result that is not an object.
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in PATCH_TYPES:
        raise unsupported_media_type(content_type)
    data = body.encode() if isinstance(body, str) else bytes(body)
    try:
        if media_type == JSON_PATCH:
            return _apply_json_patch(original, data)
        if media_type == MERGE_PATCH:
            return _apply_merge_patch(original, data)
        if media_type == STRATEGIC_MERGE_PATCH:
            return _apply_strategic_merge_patch(original, data)
        return _apply_apply_patch(original, data)
    except RecursionError:
        raise bad_request("the patch is nested too deeply to be applied") from None


# --------------------------------------------------------------------------------------------
# Decoding

def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _decode_json(body: bytes) -> Any:
    if not body.strip():
        raise bad_request("error decoding patch: the request body is empty")
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise bad_request(f"error decoding patch: {exc}") from None


class _YamlLoader(yaml.SafeLoader):
    """YAML 1.1 like sigs.k8s.io/yaml, but timestamps stay strings (as they do in JSON), and
    mapping keys become strings as they are read (so `1` and `true` stay two keys)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        return {_yaml_key(self.construct_object(key_node, deep=deep)):
                self.construct_object(value_node, deep=deep)
                for key_node, value_node in node.value}


_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _decode_yaml(body: bytes) -> Any:
    try:
        loaded = yaml.load(body, Loader=_YamlLoader)  # a SafeLoader: plain data only
    except yaml.YAMLError as exc:
        message = " ".join(str(exc).split())
        raise bad_request(f"error decoding YAML: {message}") from None
    except ValueError as exc:  # undecodable bytes
        raise bad_request(f"error decoding YAML: {exc}") from None
    # Aliases are shared in what PyYAML returns; copy them out, but only up to a budget so
    # that a "billion laughs" body cannot expand into gigabytes.
    budget = [10 * len(body) + 10_000]
    return _jsonable(loaded, budget)


def _jsonable(value: Any, budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise bad_request("error decoding YAML: the document is too large once its aliases "
                          "are expanded")
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise bad_request(f"error decoding YAML: json: unsupported value: {value}")
        return value
    if isinstance(value, list):
        return [_jsonable(item, budget) for item in value]
    if isinstance(value, dict):
        return {_yaml_key(key): _jsonable(item, budget) for key, item in value.items()}
    raise bad_request(f"error decoding YAML: a value of YAML type {type(value).__name__} "
                      "cannot be represented in JSON")


def _yaml_key(key: Any) -> str:
    # sigs.k8s.io/yaml turns non-string keys into their textual form.
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    if isinstance(key, int | float):
        return str(key)
    raise bad_request(f"error decoding YAML: a mapping key of YAML type {type(key).__name__} "
                      "cannot be represented in JSON")


# --------------------------------------------------------------------------------------------
# Messages in Go's words

def _json_type(value: Any) -> str:
    """The JSON type name Go's encoding/json uses in its errors."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _go_type(value: Any) -> str:
    """reflect.TypeOf(value) of a decoded JSON value, as strategicpatch's errors print it."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]interface {}"
    return "map[string]interface {}"


def _go_format(value: Any) -> str:
    """fmt's %v of a decoded JSON value: `map[a:1 b:[x y]]`."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        items = " ".join(f"{key}:{_go_format(value[key])}" for key in sorted(value))
        return f"map[{items}]"
    if isinstance(value, list):
        return "[" + " ".join(_go_format(item) for item in value) + "]"
    return str(value)


def _shorten(text: str, limit: int = 256) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _unprocessable(detail: str) -> ApiError:
    """422 Invalid worded as patch.go's NewGenericServerResponse words it.

    Kubernetes drops the detail; it is kept here as a cause on the field `patch`, which kubectl
    prints as `The request is invalid: patch: testing value /spec/replicas failed: test failed`.
    """
    return ApiError(422, "Invalid",
                    "the server rejected our request due to an error in our request",
                    causes=[Cause("patch", detail)])


def _invalid_result(original: Mapping[str, Any], result: Any, detail: str) -> ApiError:
    """422 Invalid for a patched document that cannot be the object (field `patch`)."""
    kind = str(original.get("kind") or "")
    api_version = str(original.get("apiVersion") or "")
    group = api_version.rpartition("/")[0]
    metadata = original.get("metadata")
    name = str(metadata.get("name") or "") if isinstance(metadata, dict) else ""
    shown = _shorten(json.dumps(result, separators=(",", ":")))
    return invalid(kind, group, name,
                   [Cause("patch", f"Invalid value: {json.dumps(shown)}: {detail}")])


def _check_type_meta(original: Mapping[str, Any], result: Any, *, strict: bool) -> None:
    """The patched object keeps the original's apiVersion and kind.

    Missing ones are put back (decoding into the typed object would default them). A different
    value is an error for JSON and merge patches (`strict`), and is ignored for strategic merge
    patches, whose result Kubernetes converts back to the served type whatever the patch said.
    """
    if not isinstance(result, dict):
        raise _invalid_result(original, result,
                              f"the patched document is a JSON {_json_type(result)}, "
                              "not an object")
    for key in ("apiVersion", "kind"):
        want = original.get(key)
        if not want:
            continue
        got = result.get(key)
        if got in (None, ""):
            result[key] = want
        elif got != want:
            if strict:
                raise _invalid_result(original, result,
                                      f"{key} cannot be changed from {want!r} to {got!r}")
            result[key] = want


# --------------------------------------------------------------------------------------------
# application/json-patch+json

_JSON_PATCH_OPS = ("add", "remove", "replace", "move", "copy", "test")
_MISSING = object()


def _apply_json_patch(original: dict[str, Any], body: bytes) -> dict[str, Any]:
    operations = _decode_json(body)
    if not isinstance(operations, list):
        raise bad_request("a JSON patch must be a JSON array of operations, not a JSON "
                          f"{_json_type(operations)}")
    for index, operation in enumerate(operations):
        if not isinstance(operation, dict):
            raise bad_request(f"JSON patch operation {index} must be a JSON object, not a JSON "
                              f"{_json_type(operation)}")
    if len(operations) > MAX_JSON_PATCH_OPERATIONS:
        raise ApiError(413, "RequestEntityTooLarge",
                       f"The allowed maximum operations in a JSON patch is "
                       f"{MAX_JSON_PATCH_OPERATIONS}, got {len(operations)}")
    document: Any = copy.deepcopy(original)
    for operation in operations:
        document = _apply_json_patch_operation(document, operation)
    _check_type_meta(original, document, strict=True)
    result: dict[str, Any] = document
    return result


def _resolves(document: Any, pointer: str) -> bool:
    try:
        return jsonpointer.resolve_pointer(document, pointer, _MISSING) is not _MISSING
    except (jsonpointer.JsonPointerException, TypeError, KeyError, IndexError, ValueError):
        return False


def _apply_json_patch_operation(document: Any, operation: dict[str, Any]) -> Any:
    """One RFC 6902 operation; failures worded like evanphx/json-patch's, as 422."""
    kind = operation.get("op")
    if not isinstance(kind, str) or kind not in _JSON_PATCH_OPS:
        raise _unprocessable(f"Unexpected kind: {kind if isinstance(kind, str) else 'unknown'}")
    path = operation.get("path")
    if not isinstance(path, str):
        raise _unprocessable(f"{kind} operation failed to decode path: missing value")
    if kind in ("move", "copy"):
        source = operation.get("from")
        if not isinstance(source, str):
            raise _unprocessable(f"{kind} operation failed to decode from: missing value")
        if not _resolves(document, source):
            raise _unprocessable(f'{kind} operation does not apply: doc is missing from path: '
                                 f'"{source}": missing value')
    if kind in ("add", "replace", "test") and "value" not in operation:
        raise _unprocessable(f'{kind} operation does not contain a "value" member')
    if kind == "test" and not _resolves(document, path):
        raise _unprocessable(f'test operation does not apply: is missing path: "{path}"')
    try:
        return jsonpatch.JsonPatch([operation]).apply(document, in_place=True)
    except jsonpatch.JsonPatchTestFailed:
        raise _unprocessable(f"testing value {path} failed: test failed") from None
    except (jsonpatch.JsonPatchConflict, jsonpointer.JsonPointerException, KeyError, IndexError,
            TypeError) as exc:
        if (isinstance(exc, jsonpatch.JsonPatchPathNotFound | jsonpointer.JsonPointerException
                       | KeyError | IndexError | TypeError)):
            raise _unprocessable(f'{kind} operation does not apply: doc is missing path: '
                                 f'"{path}": missing value') from None
        raise _unprocessable(f'{kind} operation does not apply to path "{path}": '
                             f"{_shorten(str(exc))}") from None
    except jsonpatch.JsonPatchException as exc:
        raise _unprocessable(f"{kind} operation is invalid: {_shorten(str(exc))}") from None


# --------------------------------------------------------------------------------------------
# application/merge-patch+json

def _apply_merge_patch(original: dict[str, Any], body: bytes) -> dict[str, Any]:
    patch = _decode_json(body)
    if isinstance(patch, list):
        # evanphx/json-patch returns the array as the document, which then fails to decode.
        raise _invalid_result(original, patch, "the patched document is a JSON array, "
                                               "not an object")
    if not isinstance(patch, dict):
        raise bad_request("Invalid JSON Patch: a merge patch must be a JSON object, not a JSON "
                          f"{_json_type(patch)}")
    result = _merge_patch(copy.deepcopy(original), patch)
    _check_type_meta(original, result, strict=True)
    merged: dict[str, Any] = result
    return merged


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 MergePatch(target, patch); `patch` is freshly decoded and may be reused."""
    if not isinstance(patch, dict):
        return patch
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = _merge_patch(target.get(key), value)
    return target


# --------------------------------------------------------------------------------------------
# Patch strategies of the served kinds (struct tags of k8s.io/api and k8s.io/apimachinery)

@dataclass(frozen=True)
class _Meta:
    """How one field is patched: `strategy` "merge" (or "replace", or "" for the default:
    maps merge, lists are replaced), the list's `merge_key` ("" for a list of scalars), and the
    fields below it (of the struct, or of the list's element struct)."""

    strategy: str = ""
    merge_key: str = ""
    fields: Mapping[str, _Meta] | None = None

    def field(self, name: str) -> _Meta:
        return self.fields.get(name, _NO_META) if self.fields else _NO_META


_NO_META = _Meta()

Fields = dict[str, _Meta]


def _struct(fields: Fields) -> _Meta:
    return _Meta(fields=fields)


def _merge_by(key: str, element: Fields | None = None) -> _Meta:
    """patchStrategy:"merge" patchMergeKey:"<key>" ("merge,retainKeys" too: $retainKeys is a
    directive the server honours wherever it appears, so the strategy is just "merge")."""
    return _Meta("merge", key, element)


_MERGED_SET = _Meta("merge")  # patchStrategy:"merge" on a list of scalars

OBJECT_META: Fields = {
    "ownerReferences": _merge_by("uid"),
    "finalizers": _MERGED_SET,
}

CONTAINER: Fields = {  # Container, and EphemeralContainerCommon inlined in EphemeralContainer
    "ports": _merge_by("containerPort"),
    "env": _merge_by("name"),
    "volumeMounts": _merge_by("mountPath"),
    "volumeDevices": _merge_by("devicePath"),
}

POD_SPEC: Fields = {
    "volumes": _merge_by("name"),  # merge,retainKeys
    "initContainers": _merge_by("name", CONTAINER),
    "containers": _merge_by("name", CONTAINER),
    "ephemeralContainers": _merge_by("name", CONTAINER),
    "imagePullSecrets": _merge_by("name"),
    "hostAliases": _merge_by("ip"),
    "topologySpreadConstraints": _merge_by("topologyKey"),
    "schedulingGates": _merge_by("name"),
    "resourceClaims": _merge_by("name"),  # merge,retainKeys
    "evictionResponders": _merge_by("name"),
    # tolerations, readinessGates, containers[].resizePolicy, ... carry no strategy: replaced.
}

POD_STATUS: Fields = {
    "conditions": _merge_by("type"),
    "hostIPs": _merge_by("ip"),
    "podIPs": _merge_by("ip"),
    "resourceClaimStatuses": _merge_by("name"),  # merge,retainKeys
    "nodeAllocatableResourceClaimStatuses": _merge_by("resourceClaimName", {
        "mapping": _merge_by("name"),
        "overhead": _merge_by("name"),
    }),
    # containerStatuses and friends are atomic, so their inner strategies never apply.
}

POD_TEMPLATE_SPEC: Fields = {"metadata": _struct(OBJECT_META), "spec": _struct(POD_SPEC)}

_CONDITIONS_BY_TYPE: Fields = {"conditions": _merge_by("type")}


def _kind_schema(spec: Fields | None = None, status: Fields | None = None,
                 **top: _Meta) -> _Meta:
    fields: Fields = {"metadata": _struct(OBJECT_META), **top}
    if spec is not None:
        fields["spec"] = _struct(spec)
    if status is not None:
        fields["status"] = _struct(status)
    return _struct(fields)


_METADATA_ONLY = _kind_schema()

# (API group, kind) -> schema. Every kind in kubesvc.api.resources.RESOURCES has a row.
SCHEMAS: dict[tuple[str, str], _Meta] = {
    ("", "Pod"): _kind_schema(spec=POD_SPEC, status=POD_STATUS),
    ("", "Service"): _kind_schema(spec={"ports": _merge_by("port")}, status=_CONDITIONS_BY_TYPE),
    ("", "Endpoints"): _METADATA_ONLY,  # subsets are atomic
    ("", "ConfigMap"): _METADATA_ONLY,
    ("", "Secret"): _METADATA_ONLY,
    ("", "Event"): _METADATA_ONLY,
    ("", "Node"): _kind_schema(spec={"podCIDRs": _MERGED_SET},
                               status={"conditions": _merge_by("type"),
                                       "addresses": _merge_by("type")}),
    ("", "Namespace"): _kind_schema(status=_CONDITIONS_BY_TYPE),  # spec.finalizers: atomic
    ("", "ServiceAccount"): _kind_schema(secrets=_merge_by("name")),  # imagePullSecrets: atomic
    # spec.strategy is "retainKeys" only, which needs nothing beyond the $retainKeys directive.
    ("apps", "Deployment"): _kind_schema(spec={"template": _struct(POD_TEMPLATE_SPEC)},
                                         status=_CONDITIONS_BY_TYPE),
    ("apps", "ReplicaSet"): _kind_schema(spec={"template": _struct(POD_TEMPLATE_SPEC)},
                                         status=_CONDITIONS_BY_TYPE),
    ("discovery.k8s.io", "EndpointSlice"): _METADATA_ONLY,  # endpoints and ports are atomic
    ("networking.k8s.io", "Ingress"): _METADATA_ONLY,  # v1 and v1beta1 alike
    ("extensions", "Ingress"): _METADATA_ONLY,
    ("networking.k8s.io", "IngressClass"): _METADATA_ONLY,
    ("coordination.k8s.io", "Lease"): _METADATA_ONLY,
}


def _schema_for(obj: Mapping[str, Any]) -> _Meta | None:
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return None
    return SCHEMAS.get((api_version.rpartition("/")[0], kind))


# --------------------------------------------------------------------------------------------
# application/strategic-merge-patch+json

def _apply_strategic_merge_patch(original: dict[str, Any], body: bytes) -> dict[str, Any]:
    patch = _decode_json(body)
    if patch is None:  # Go decodes `null` into a nil map: nothing to do
        patch = {}
    if not isinstance(patch, dict):
        raise bad_request("a strategic merge patch must be a JSON object, not a JSON "
                          f"{_json_type(patch)}")
    schema = _schema_for(original)
    if schema is None:
        raise ApiError(415, "UnsupportedMediaType",
                       "the body of the request was in an unknown format - accepted media types "
                       f"include: {JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH} (there is no "
                       f"strategic merge patch for kind {original.get('kind')!r} of "
                       f"{original.get('apiVersion')!r})")
    return _strategic_merge(original, patch, schema)


def _strategic_merge(original: dict[str, Any], patch: dict[str, Any],
                     schema: _Meta) -> dict[str, Any]:
    try:
        result = _merge_map(copy.deepcopy(original), patch, schema)
    except _PatchError as exc:
        if exc.unprocessable:
            raise _unprocessable(exc.message) from None
        raise bad_request(exc.message) from None
    _strip_directives(result)
    _check_type_meta(original, result, strict=False)
    return result


class _PatchError(Exception):
    """A malformed strategic merge patch: 400, or 422 for what Kubernetes answers with 422."""

    def __init__(self, message: str, *, unprocessable: bool = False) -> None:
        message = _shorten(message, 1024)  # some quote whole lists of the patch
        super().__init__(message)
        self.message = message
        self.unprocessable = unprocessable


# The mergepatch package's sentinel errors, worded as there.
_ERR_PRIMITIVE_LIST = "invalid patch format of primitive list"
_ERR_RETAIN_KEYS = "invalid patch format of retainKeys"
_ERR_SET_ELEMENT_ORDER = "invalid patch format of setElementOrder list"
_ERR_LIST_OF_LISTS = "lists of lists are not supported"

_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_SET_ELEMENT_ORDER = "$setElementOrder"
_DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList"


def _no_merge_key(item: Mapping[str, Any], merge_key: str) -> _PatchError:
    return _PatchError(f"map: {_go_format(item)} does not contain declared merge key: "
                       f"{merge_key}")


def _bad_arg_type(expected: str, actual: Any) -> _PatchError:
    return _PatchError(f"expected a {expected}, but received a {_go_type(actual)}")


def _same(left: Any, right: Any) -> bool:
    """Go's == on decoded JSON values, which never takes true for 1."""
    return bool(left == right) and isinstance(left, bool) == isinstance(right, bool)


def _is_directive_key(key: str) -> bool:
    return key in (_DIRECTIVE, _RETAIN_KEYS) or key.startswith(
        (_SET_ELEMENT_ORDER, _DELETE_FROM_PRIMITIVE_LIST))


def _strip_directives(value: Any) -> None:
    """Drop directive keys left in the result, as decoding into the typed object drops them."""
    if isinstance(value, dict):
        for key in [key for key in value if _is_directive_key(key)]:
            del value[key]
        for item in value.values():
            _strip_directives(item)
    elif isinstance(value, list):
        for item in value:
            _strip_directives(item)


def _discard_nulls(value: Any) -> Any:
    """discardNullValuesFromPatch: drop null members of every map inside `value`."""
    if isinstance(value, dict):
        for key in [key for key, item in value.items() if item is None]:
            del value[key]
        for item in value.values():
            _discard_nulls(item)
    elif isinstance(value, list):
        for item in value:
            _discard_nulls(item)
    return value


def _remove_directives(value: Any) -> tuple[Any, bool]:
    """removeDirectives: maps carrying `$patch` vanish; returns (value, keep)."""
    if isinstance(value, dict):
        if _DIRECTIVE in value:
            return None, False
        for key in list(value):
            item, keep = _remove_directives(value[key])
            if keep:
                value[key] = item
            else:
                del value[key]
        return value, True
    if isinstance(value, list):
        kept = []
        for item in value:
            new, keep = _remove_directives(item)
            if keep:
                kept.append(new)
        return kept, True
    return value, True


def _new_value(value: Any) -> tuple[Any, bool]:
    """A patch value that has nothing to merge with: nulls and `$patch` maps removed."""
    return _remove_directives(_discard_nulls(value))


def _extract_key(key: str, prefix: str) -> str:
    head, slash, rest = key.partition("/")
    if not slash or head != prefix:
        raise _PatchError(_ERR_PRIMITIVE_LIST if prefix == _DELETE_FROM_PRIMITIVE_LIST
                          else _ERR_SET_ELEMENT_ORDER)
    return rest


def _merge_map(original: dict[str, Any], patch: dict[str, Any], schema: _Meta) -> dict[str, Any]:
    """mergeMap, with MergeParallelList and IgnoreUnmatchedNulls as the server sets them."""
    if _DIRECTIVE in patch:
        directive = patch[_DIRECTIVE]
        if directive == "replace":
            del patch[_DIRECTIVE]
            result: dict[str, Any] = _discard_nulls(patch)
            return result
        if directive == "delete":
            return {}
        if directive != "merge":  # "merge" is the default for maps: drop it and merge
            raise _PatchError(f"unknown patch type: {_go_format(directive)} in map: "
                              f"{_go_format(patch)}")
        del patch[_DIRECTIVE]

    _apply_retain_keys(original, patch)
    _merge_ordered_lists(original, patch, schema)

    # Go ranges over the patch in random order; take the deletion lists after the additions.
    keys = sorted(patch, key=lambda key: key.startswith(_DELETE_FROM_PRIMITIVE_LIST))
    for patch_key in keys:
        patch_value = patch[patch_key]
        key = patch_key
        is_delete_list = patch_key.startswith(_DELETE_FROM_PRIMITIVE_LIST)
        if is_delete_list:
            key = _extract_key(patch_key, _DELETE_FROM_PRIMITIVE_LIST)

        if patch_value is None:
            original.pop(key, None)
            continue
        if key not in original or _kind_of(original[key]) != _kind_of(patch_value):
            if not is_delete_list:
                value, keep = _new_value(patch_value)
                if keep:
                    original[key] = value
                else:
                    original.pop(key, None)
            continue

        original_value = original[key]
        meta = schema.field(key)
        if isinstance(original_value, dict):
            if meta.strategy == "replace":
                original[key] = _discard_nulls(patch_value)
            else:
                original[key] = _merge_map(original_value, patch_value, meta)
        elif isinstance(original_value, list):
            original[key] = _merge_list_field(original_value, patch_value, meta, is_delete_list)
        else:
            value, keep = _remove_directives(patch_value)
            if keep:
                original[key] = value
            else:
                del original[key]
    return original


def _kind_of(value: Any) -> str:
    """reflect.TypeOf for the type check of mergeMap (numbers are one kind here)."""
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "string"


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    """$retainKeys: clear every key of `original` not listed; the patch must stay inside it."""
    if _RETAIN_KEYS not in patch:
        return
    retain = patch.pop(_RETAIN_KEYS)
    if not isinstance(retain, list) or not all(isinstance(key, str) for key in retain):
        raise _PatchError(_ERR_RETAIN_KEYS)
    kept = set(retain)
    for key, value in patch.items():
        if value is None or key.startswith((_DELETE_FROM_PRIMITIVE_LIST, _SET_ELEMENT_ORDER)):
            continue
        if key not in kept:
            raise _PatchError(_ERR_RETAIN_KEYS)
    for key in [key for key in original if key not in kept]:
        del original[key]


def _merge_ordered_lists(original: dict[str, Any], patch: dict[str, Any], schema: _Meta) -> None:
    """mergePatchIntoOriginal: merge each list that has a $setElementOrder, in that order."""
    for directive_key in [key for key in patch if key.startswith(_SET_ELEMENT_ORDER)]:
        order = patch.pop(directive_key)
        if not isinstance(order, list):
            raise _bad_arg_type("[]interface {}", order)
        key = _extract_key(directive_key, _SET_ELEMENT_ORDER)
        found_original = key in original
        found_patch = key in patch
        original_list: list[Any] = []
        patch_list: list[Any] = []
        if found_original:
            if not isinstance(original[key], list):
                raise _bad_arg_type("[]interface {}", original[key])
            original_list = original[key]
        if found_patch:
            if not isinstance(patch[key], list):
                raise _bad_arg_type("[]interface {}", patch[key])
            patch_list = patch[key]
        meta = schema.field(key)
        merge_key = meta.merge_key
        _validate_element_order(patch_list, order, merge_key)

        server_order = list(original_list)
        if found_original and found_patch and merge_key and meta.strategy == "merge":
            server_order = _server_order_after_merge(original_list, patch_list, merge_key)
        if found_original and not found_patch:
            merged = original_list
        elif found_patch and not found_original:
            merged = _new_value(patch_list)[0]
        elif found_original and found_patch:
            merged = _merge_list_field(original_list, patch_list, meta, False)
        else:
            continue
        patch.pop(key, None)

        kind = _element_kind(server_order, patch_list, allow_empty=True)
        if kind is None or meta.strategy != "merge":
            # Nothing to order, or a list the server does not merge (kubectl never orders one).
            original[key] = merged
            continue
        if merge_key:
            patch_items, server_only = _partition_maps(merged, order, merge_key)
        else:
            patch_items, server_only = _partition_scalars(merged, order)
        original[key] = _normalize_element_order(patch_items, server_only, order, server_order,
                                                 merge_key, kind)


def _hash_key(value: Any) -> tuple[str, Any] | None:
    """A dict key that equals another exactly when `_same` does; None for maps and lists."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    if value is None:
        return ("null", None)
    return None


class _Positions:
    """Where items first appear in a list: by merge key for lists of maps, else by value.

    With `maps_only`, every item must be a map and only maps that have the merge key count
    (findMapInSliceBasedOnKeyValue); otherwise a map without it counts as a null key (index()).
    Lookups are by hash, so merging long lists stays linear.
    """

    def __init__(self, items: list[Any], merge_key: str, *, maps_only: bool = False) -> None:
        self._merge_key = merge_key
        self._maps_only = maps_only
        self._first: dict[tuple[str, Any], int] = {}
        self._unhashable: list[tuple[int, Any]] = []
        self._size = 0
        for item in items:
            self.add(item)

    def _value(self, item: Any) -> Any:
        if not self._merge_key:
            return item
        return item.get(self._merge_key) if isinstance(item, dict) else None

    def add(self, item: Any) -> None:
        index = self._size
        self._size += 1
        if self._maps_only:
            if not isinstance(item, dict):
                raise _PatchError(f"value for key {index} is not a map")
            if self._merge_key not in item:
                return
        value = self._value(item)
        key = _hash_key(value)
        if key is None:
            self._unhashable.append((index, value))
        else:
            self._first.setdefault(key, index)

    def of_value(self, value: Any) -> int:
        """The first position of an item whose key (or value) is `value`, or -1."""
        key = _hash_key(value)
        if key is not None:
            return self._first.get(key, -1)
        return next((index for index, other in self._unhashable if _same(value, other)), -1)

    def of(self, item: Any) -> int:
        return self.of_value(self._value(item))


def _server_order_after_merge(original: list[Any], patch: list[Any],
                              merge_key: str) -> list[Any]:
    """The live order mergePatchIntoOriginal really sorts server-only items by.

    Go merges the list in place: items deleted with `$patch: delete` shift the rest left, and
    the first items the patch appends land in the slots that freed, inside the slice Go later
    reads as the live order. So an appended item can count as "live" and sort server-only items
    before it. Kubernetes' own test cases expect that order; this reproduces it for a live list
    whose capacity is its length.
    """
    if any(isinstance(item, dict) and item.get(_DIRECTIVE) == "replace" for item in patch):
        return list(original)
    deleted = _Positions([item for item in patch
                          if isinstance(item, dict) and item.get(_DIRECTIVE) == "delete"],
                         merge_key)
    survivors = [item for item in original
                 if not (isinstance(item, dict) and deleted.of(item) >= 0)]
    present = _Positions(survivors, merge_key)
    appended: list[Any] = []
    for item in patch:
        if not isinstance(item, dict) or item.get(_DIRECTIVE) not in (None, "merge"):
            continue
        if present.of(item) < 0:
            appended.append(item)
            present.add(item)
    return survivors + appended[:len(original) - len(survivors)]


def _validate_element_order(patch_list: list[Any], order: list[Any], merge_key: str) -> None:
    """validatePatchWithSetOrderList: the patch list's items appear in `order`, in that order."""
    if not order or not patch_list:
        return
    items = _without_deletions(patch_list) if merge_key else patch_list
    patch_index = order_index = 0
    while patch_index < len(items) and order_index < len(order):
        item = items[patch_index]
        if isinstance(item, dict) and _DIRECTIVE in item:
            patch_index += 1
            continue
        if _merge_key_equal(item, order[order_index], merge_key):
            patch_index += 1
        order_index += 1
    if patch_index < len(items) and order_index >= len(order):
        raise _PatchError(f"The order in patch list:\n{_go_format(patch_list)}\n doesn't match "
                          f"{_SET_ELEMENT_ORDER} list:\n{_go_format(order)}\n")


def _merge_key_equal(left: Any, right: Any, merge_key: str) -> bool:
    if not merge_key:
        return _same(left, right)
    for item in (left, right):
        if not isinstance(item, dict):
            raise _bad_arg_type("map[string]interface {}", item)
        if merge_key not in item:
            raise _no_merge_key(item, merge_key)
    return _same(left[merge_key], right[merge_key])


def _without_deletions(items: list[Any]) -> list[Any]:
    kept = []
    for item in items:
        if not isinstance(item, dict):
            raise _bad_arg_type("map[string]interface {}", item)
        if item.get(_DIRECTIVE) != "delete":
            kept.append(item)
    return kept


def _merge_list_field(original: list[Any], patch: list[Any], meta: _Meta,
                      is_delete_list: bool) -> list[Any]:
    """mergeSliceHandler: merge lists with the merge strategy; replace the others."""
    if meta.strategy == "merge" or is_delete_list:
        return _merge_list(original, patch, meta, is_delete_list)
    replaced: list[Any] = _discard_nulls(patch)
    return replaced


def _element_kind(original: list[Any], patch: list[Any], *,
                  allow_empty: bool = False) -> str | None:
    """sliceElementType: the one kind of every element of both lists."""
    kind: str | None = None
    for item in (*original, *patch):
        item_kind = _kind_of(item)
        if kind is None:
            if item_kind == "list":
                raise _PatchError(_ERR_LIST_OF_LISTS, unprocessable=True)
            kind = item_kind
        elif item_kind != kind:
            raise _PatchError("list element types are not identical: "
                              f"{_go_format([original, patch])}")
    if kind is None and not allow_empty:
        raise _PatchError("no elements in any of the given slices")
    return kind


def _merge_list(original: list[Any], patch: list[Any], meta: _Meta,
                is_delete_list: bool) -> list[Any]:
    """mergeSlice."""
    if not original and not patch:
        return original
    kind = _element_kind(original, patch)
    merge_key = meta.merge_key
    if kind != "map":
        if is_delete_list:
            gone = _Positions(patch, "")
            return [item for item in original if gone.of(item) < 0]
        merged = _dedup_scalars(original + patch)
    else:
        if not merge_key:
            raise _PatchError("cannot merge lists without merge key for struct")
        original, patch = _merge_special_elements(original, patch, merge_key)
        merged = _merge_plain_elements(list(original), patch, merge_key, meta)

    if merge_key:
        patch_items, server_only = _partition_maps(merged, patch, merge_key)
    else:
        patch_items, server_only = _partition_scalars(merged, patch)
    return _normalize_element_order(patch_items, server_only, patch, original, merge_key,
                                    kind or "")


def _dedup_scalars(items: list[Any]) -> list[Any]:
    unique: list[Any] = []
    seen = _Positions([], "")
    for item in items:
        if seen.of(item) < 0:
            unique.append(item)
            seen.add(item)
    return unique


def _merge_special_elements(original: list[Any], patch: list[Any],
                            merge_key: str) -> tuple[list[Any], list[Any]]:
    """mergeSliceWithSpecialElements: apply `$patch: delete|replace` items of the patch."""
    plain: list[Any] = []
    deleted: list[Any] = []
    replace = False
    for item in patch:
        if _DIRECTIVE not in item:
            plain.append(item)
            continue
        directive = item[_DIRECTIVE]
        if directive == "delete":
            if merge_key not in item:
                raise _no_merge_key(item, merge_key)
            deleted.append(item)
        elif directive == "replace":
            replace = True  # keep going, to prune the other directive items
        elif directive == "merge":  # the default for merge lists: an ordinary item
            del item[_DIRECTIVE]
            plain.append(item)
        else:
            raise _PatchError(f"unknown patch type: {_go_format(directive)} in map: "
                              f"{_go_format(item)}")
    if replace:
        return [_discard_nulls(item) for item in plain], []
    if deleted:
        gone = _Positions(deleted, merge_key)
        original = [kept for kept in original
                    if not (isinstance(kept, dict) and merge_key in kept
                            and gone.of_value(kept[merge_key]) >= 0)]
    return original, plain


def _merge_plain_elements(original: list[Any], patch: list[Any], merge_key: str,
                          meta: _Meta) -> list[Any]:
    """mergeSliceWithoutSpecialElements: merge items with the same key, append the others."""
    positions = _Positions(original, merge_key, maps_only=True)
    for item in patch:
        if merge_key not in item:
            raise _no_merge_key(item, merge_key)
        index = positions.of_value(item[merge_key])
        if index >= 0:
            original[index] = _merge_map(original[index], item, meta)
        else:
            original.append(_discard_nulls(item))
            positions.add(item)
    return original


def _partition_scalars(merged: list[Any], present: list[Any]) -> tuple[list[Any], list[Any]]:
    in_patch: list[Any] = []
    server_only: list[Any] = []
    positions = _Positions(present, "")
    for item in merged:
        if positions.of(item) >= 0:
            in_patch.append(item)
        else:
            server_only.append(item)
    return in_patch, server_only


def _partition_maps(merged: list[Any], present: list[Any],
                    merge_key: str) -> tuple[list[Any], list[Any]]:
    in_patch: list[Any] = []
    server_only: list[Any] = []
    positions: _Positions | None = None
    for item in merged:
        if not isinstance(item, dict):
            raise _bad_arg_type("map[string]interface {}", item)
        if merge_key not in item:
            raise _no_merge_key(item, merge_key)
        if positions is None:
            positions = _Positions(present, merge_key, maps_only=True)
        if positions.of_value(item[merge_key]) >= 0:
            in_patch.append(item)
        else:
            server_only.append(item)
    return in_patch, server_only


def _normalize_element_order(patch_items: list[Any], server_only: list[Any],
                             patch_order: list[Any], server_order: list[Any],
                             merge_key: str, kind: str) -> list[Any]:
    """normalizeElementOrder: patch items in patch order, server-only items in server order,
    interleaved by their places in the live list."""
    patch_items = _sort_by(patch_items, patch_order, merge_key, kind)
    server_only = _sort_by(server_only, server_order, merge_key, kind)
    return _merge_sorted(server_only, patch_items, server_order, merge_key, kind)


def _sort_by(items: list[Any], order: list[Any], merge_key: str, kind: str) -> list[Any]:
    deletions: list[Any] = []
    if kind == "map":
        for item in (*items, *order):
            if not isinstance(item, dict):
                raise _bad_arg_type("map[string]interface {}", item)
            if merge_key not in item:
                raise _no_merge_key(item, merge_key)
        deletions = [item for item in items if item.get(_DIRECTIVE) == "delete"]
        items = [item for item in items if item.get(_DIRECTIVE) != "delete"]

    positions = _Positions(order, merge_key if kind == "map" else "")

    def place(item: Any) -> int:
        index = positions.of(item)
        return index if index >= 0 else len(order)

    return sorted(items, key=place) + deletions


def _merge_sorted(left: list[Any], right: list[Any], server_order: list[Any],
                  merge_key: str, kind: str) -> list[Any]:
    """mergeSortedSlice: insert the server-only items (left) among the patch items (right)."""
    positions = _Positions(server_order, merge_key if kind == "map" else "")
    merged: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            merged.append(right[j])
            j += 1
        elif j >= len(right):
            merged.append(left[i])
            i += 1
        else:
            left_index = positions.of(left[i])
            right_index = positions.of(right[j])
            if left_index >= 0 and right_index >= 0 and left_index < right_index:
                merged.append(left[i])
                i += 1
            else:
                merged.append(right[j])
                j += 1
    return merged


# --------------------------------------------------------------------------------------------
# application/apply-patch+yaml

def _apply_apply_patch(original: dict[str, Any], body: bytes) -> dict[str, Any]:
    applied = _decode_yaml(body)
    if applied is None:
        applied = {}
    if not isinstance(applied, dict):
        raise bad_request("error decoding YAML: the applied configuration must be an object, "
                          f"not a {_json_type(applied)}")
    metadata = applied.get("metadata")
    if isinstance(metadata, dict) and metadata.get("managedFields") is not None:
        raise bad_request("metadata.managedFields must be nil")
    expected_version = original.get("apiVersion")
    if expected_version:
        got = applied.get("apiVersion")
        got_text = got if isinstance(got, str) else ("" if got is None else _go_format(got))
        if got_text != expected_version:
            raise bad_request("Incorrect version specified in apply patch. Specified patch "
                              f"version: {got_text}, expected: {expected_version}")
    expected_kind = original.get("kind")
    if expected_kind and applied.get("kind") not in (None, "", expected_kind):
        raise bad_request("Incorrect kind specified in apply patch. Specified patch kind: "
                          f"{_go_format(applied.get('kind'))}, expected: {expected_kind}")
    schema = _schema_for(original if original.get("kind") else applied) or _METADATA_ONLY
    return _strategic_merge(original, applied, schema)
