"""OpenAPI v3 documents, as kube-apiserver serves them under /openapi/v3.

kubectl reads them for three things (research/kubectl-protocol.md §6): `apply` and `create`
with strict validation look for a PATCH operation tagged with the manifest's kind that takes a
`fieldValidation` query parameter, and then leave unknown fields to the server; `apply` reads
`x-kubernetes-patch-strategy` and `-merge-key` to build strategic merge patches; `explain`
finds a kind's schema through its `x-kubernetes-group-version-kind` and prints its fields.

Everything here is derived from `kubesvc.api.resources` (which paths exist) and
`kubesvc.api.schema` (what the objects look like). Documents are rendered once, and the index
links each by the hash of its content, as Kubernetes does, so clients may cache them for good.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import Any

from kubesvc.api.resources import GROUP_VERSIONS, RESOURCES, Resource
from kubesvc.api.schema import model_for
from kubesvc.api.schema.dsl import Array, FreeForm, Map, Model, Opaque, Prop, Scalar, Schema
from kubesvc.api.schema.meta import DELETE_OPTIONS, PATCH, STATUS

JSON = "application/json"
PATCH_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)


def index() -> dict[str, Any]:
    """The body of GET /openapi/v3: every served group/version and where its document is."""
    paths = {}
    for group, versions in GROUP_VERSIONS.items():
        for version in versions:
            key = _gv_path(group, version)
            digest = _rendered(group, version)[1]
            paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest}"}
    return {"paths": paths}


def group_version_document(group: str, version: str) -> dict[str, Any] | None:
    """The document of GET /openapi/v3/api/v1 or /openapi/v3/apis/<group>/<version>."""
    if version not in GROUP_VERSIONS.get(group, ()):
        return None
    document: dict[str, Any] = json.loads(_rendered(group, version)[0])
    return document


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


@functools.cache
def _rendered(group: str, version: str) -> tuple[str, str]:
    """The document as JSON text and the hash the index links it by; each caller of the public
    functions gets its own parsed copy, so nobody can change what the next one is served."""
    resources = [r for r in RESOURCES if (r.group, r.version) == (group, version)]
    text = json.dumps(_document(resources), sort_keys=True, separators=(",", ":"))
    return text, hashlib.sha512(text.encode()).hexdigest().upper()


def _document(resources: list[Resource]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    roots: list[Model | Opaque] = [STATUS, DELETE_OPTIONS, PATCH]
    for res in resources:
        for path, item, models in _resource_paths(res):
            paths[path] = item
            roots.extend(models)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": paths,
        "components": {"schemas": {m.name: _component(m) for m in _closure(roots)}},
    }


# --- schemas ---

def _ref(named: Model | Opaque) -> str:
    return f"#/components/schemas/{named.name}"


def _component(named: Model | Opaque) -> dict[str, Any]:
    if isinstance(named, Opaque):
        return {"description": named.description, **named.body}
    out: dict[str, Any] = {
        "description": named.description,
        "type": "object",
        "properties": {p.name: _property(p) for p in named.props},
    }
    required = [p.name for p in named.props if p.required]
    if required:
        out["required"] = required
    if named.kinds:
        out["x-kubernetes-group-version-kind"] = [
            {"group": k.group, "version": k.version, "kind": k.kind} for k in named.kinds]
    return out


def _property(prop: Prop) -> dict[str, Any]:
    schema = prop.schema
    if isinstance(schema, Model | Opaque):
        # A $ref cannot carry siblings in OpenAPI 3.0, hence Kubernetes' allOf wrapper.
        out: dict[str, Any] = {"allOf": [{"$ref": _ref(schema)}]}
    else:
        out = _inline(schema)
    out["description"] = prop.description
    if prop.strategy:
        out["x-kubernetes-patch-strategy"] = prop.strategy
    return out


def _inline(schema: Schema) -> dict[str, Any]:
    match schema:
        case Model() | Opaque():
            return {"$ref": _ref(schema)}
        case Scalar(type=type_, format=format_, enum=enum):
            out: dict[str, Any] = {"type": type_}
            if format_:
                out["format"] = format_
            if enum:
                out["enum"] = sorted(enum)  # as Kubernetes' generator lists them
            return out
        case Array():
            out = {"type": "array", "items": _inline(schema.items)}
            if schema.list_type:
                out["x-kubernetes-list-type"] = schema.list_type
            if schema.map_keys:
                out["x-kubernetes-list-map-keys"] = list(schema.map_keys)
            if schema.merge_key:
                out["x-kubernetes-patch-merge-key"] = schema.merge_key
            if schema.strategy:
                out["x-kubernetes-patch-strategy"] = schema.strategy
            return out
        case Map(values=values):
            return {"type": "object", "additionalProperties": _inline(values)}
        case FreeForm():
            return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    raise TypeError(schema)


def _closure(roots: Iterable[Model | Opaque]) -> list[Model | Opaque]:
    """The named schemas reachable from `roots`, each once, in a stable order."""
    seen: dict[str, Model | Opaque] = {}

    def visit(schema: Schema) -> None:
        match schema:
            case Model() | Opaque() if schema.name not in seen:
                seen[schema.name] = schema
                if isinstance(schema, Model):
                    for prop in schema.props:
                        visit(prop.schema)
            case Array(items=items):
                visit(items)
            case Map(values=values):
                visit(values)

    for root in roots:
        visit(root)
    return sorted(seen.values(), key=lambda m: m.name)


# --- paths ---

_LIST_QUERY = ("allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit",
               "resourceVersion", "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds")
_WRITE_QUERY = ("dryRun", "fieldManager", "fieldValidation")
_DELETE_QUERY = ("dryRun", "gracePeriodSeconds",
                 "ignoreStoreReadErrorWithClusterBreakingPotential", "orphanDependents",
                 "propagationPolicy")

# Query parameters: name -> (JSON type, description).
_QUERY: dict[str, tuple[str, str]] = {
    "allowWatchBookmarks": ("boolean", "allowWatchBookmarks requests watch events with type "
                            "\"BOOKMARK\"."),
    "continue": ("string", "The continue token of a previous list response, to retrieve more "
                 "results."),
    "fieldSelector": ("string", "A selector to restrict the list of returned objects by their "
                      "fields. Defaults to everything."),
    "labelSelector": ("string", "A selector to restrict the list of returned objects by their "
                      "labels. Defaults to everything."),
    "limit": ("integer", "limit is a maximum number of responses to return for a list call."),
    "resourceVersion": ("string", "resourceVersion sets a constraint on what resource versions "
                        "a request may be served from."),
    "resourceVersionMatch": ("string", "resourceVersionMatch determines how resourceVersion is "
                             "applied to list calls."),
    "sendInitialEvents": ("boolean", "With watch=true, begin the watch stream with synthetic "
                          "events for the current objects, then a bookmark annotated "
                          "\"k8s.io/initial-events-end\"."),
    "timeoutSeconds": ("integer", "Timeout for the list/watch call."),
    "watch": ("boolean", "Watch for changes to the described resources and return them as a "
              "stream of add, update, and remove notifications. Specify resourceVersion."),
    "dryRun": ("string", "When present, indicates that modifications should not be persisted. "
               "The only valid value is All."),
    "fieldManager": ("string", "fieldManager is a name associated with the actor or entity that "
                     "is making these changes."),
    "fieldValidation": ("string", "fieldValidation instructs the server on how to handle objects "
                        "in the request containing unknown or duplicate fields: Ignore, Warn or "
                        "Strict."),
    "force": ("boolean", "Force is going to \"force\" Apply requests: it means user will "
              "re-acquire conflicting fields owned by other people."),
    "gracePeriodSeconds": ("integer", "The duration in seconds before the object should be "
                           "deleted."),
    "ignoreStoreReadErrorWithClusterBreakingPotential": (
        "boolean", "if set to true, it will trigger an unsafe deletion of the resource in case "
        "the normal deletion flow fails with a corrupt object error."),
    "orphanDependents": ("boolean", "Deprecated: please use the PropagationPolicy."),
    "propagationPolicy": ("string", "Whether and how garbage collection will be performed: "
                          "Orphan, Background or Foreground."),
    "pretty": ("string", "If 'true', then the output is pretty printed."),
    "container": ("string", "The container for which to stream logs, or in which to execute "
                  "the command. Defaults to the only container if there is one."),
    "follow": ("boolean", "Follow the log stream of the pod."),
    "limitBytes": ("integer", "If set, the number of bytes to read from the server before "
                   "terminating the log output."),
    "previous": ("boolean", "Return previous terminated container logs."),
    "sinceSeconds": ("integer", "A relative time in seconds before the current time from which "
                     "to show logs."),
    "tailLines": ("integer", "If set, the number of lines from the end of the logs to show."),
    "timestamps": ("boolean", "If true, add an RFC3339 or RFC3339Nano timestamp at the "
                   "beginning of every line of log output."),
    "command": ("string", "Command is the remote command to execute; argv array, one parameter "
                "per argument."),
    "stdin": ("boolean", "Redirect the standard input stream of the pod for this call."),
    "stdout": ("boolean", "Redirect the standard output stream of the pod for this call."),
    "stderr": ("boolean", "Redirect the standard error stream of the pod for this call."),
    "tty": ("boolean", "TTY if true indicates that a tty will be allocated for the exec call."),
    "ports": ("integer", "List of ports to forward."),
}
_LOG_QUERY = ("container", "follow", "limitBytes", "previous", "sinceSeconds", "tailLines",
              "timestamps")
_EXEC_QUERY = ("command", "container", "stderr", "stdin", "stdout", "tty")

PathItem = tuple[str, dict[str, Any], list[Model]]


def _resource_paths(res: Resource) -> Iterator[PathItem]:
    """The paths of one resource, with the models their operations refer to."""
    model = _model(res.api_version, res.kind)
    listed = _model(res.api_version, f"{res.kind}List")
    kind, scope = res.kind, ("Namespaced" if res.namespaced else "")
    base = f"/{_gv_path(res.group, res.version)}"
    collection = f"{base}{'/namespaces/{namespace}' if res.namespaced else ''}/{res.plural}"
    op = _Operations(res)
    yield collection, _path_item(res, named=False, namespaced=res.namespaced, ops={
        "get": op.list(f"{scope}{kind}", model, listed),
        "post": op.write("post", f"{scope}{kind}", f"create a {kind}", model),
        "delete": op.delete_collection(f"{scope}{kind}", model),
    }), [model, listed]
    yield f"{collection}/{{name}}", _path_item(res, named=True, namespaced=res.namespaced, ops={
        "get": op.read(f"{scope}{kind}", f"read the specified {kind}", model),
        "put": op.write("put", f"{scope}{kind}", f"replace the specified {kind}", model),
        "patch": op.patch(f"{scope}{kind}", f"partially update the specified {kind}", model),
        "delete": op.delete(f"{scope}{kind}", model),
    }), []
    if res.namespaced:
        yield f"{base}/{res.plural}", _path_item(res, named=False, namespaced=False, ops={
            "get": op.list(f"{kind}ForAllNamespaces", model, listed),
        }), []
    for sub in res.subresources:
        ops, models = _subresource(op, sub, model)
        yield f"{collection}/{{name}}/{sub}", _path_item(
            res, named=True, namespaced=res.namespaced, ops=ops), models


def _subresource(op: _Operations, sub: str,
                 model: Model) -> tuple[dict[str, dict[str, Any]], list[Model]]:
    """A subresource's operations, and the models they refer to that its kind's do not."""
    kind = op.res.kind
    name = f"{'Namespaced' if op.res.namespaced else ''}{kind}{sub.capitalize()}"
    if sub in ("status", "scale"):
        target = _model("autoscaling/v1", "Scale") if sub == "scale" else model
        return {
            "get": op.read(name, f"read {sub} of the specified {kind}", target),
            "put": op.write("put", name, f"replace {sub} of the specified {kind}", target),
            "patch": op.patch(name, f"partially update {sub} of the specified {kind}", target),
        }, [target]
    if sub == "binding":
        binding = _model("v1", "Binding")
        return {"post": op.write("post", name, f"create binding of a {kind}", binding)}, [binding]
    if sub == "log":
        return {"get": op.stream("get", f"read{{}}{name}", f"read log of the specified {kind}",
                                 _LOG_QUERY)}, []
    # exec and portforward: connections upgraded to streams, by GET or POST
    query = _EXEC_QUERY if sub == "exec" else ("ports",)
    return {verb: op.stream("connect", f"connect{{}}{verb.capitalize()}{name}",
                            f"connect {verb.upper()} requests to {sub} of {kind}", query)
            for verb in ("get", "post")}, []


def _model(api_version: str, kind: str) -> Model:
    model = model_for(api_version, kind)
    if model is None:
        raise LookupError(f"no schema for {api_version} {kind}")
    return model


def _path_item(res: Resource, *, named: bool, namespaced: bool,
               ops: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A path item: its operations and the parameters they share."""
    params = []
    if named:
        params.append(_path_param("name", f"name of the {res.kind}"))
    if namespaced:
        params.append(_path_param("namespace", "object name and auth scope, such as for teams "
                                  "and projects"))
    params.append(_query_param("pretty"))
    return {**ops, "parameters": params}


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "uniqueItems": True}}


def _query_param(name: str) -> dict[str, Any]:
    type_, description = _QUERY[name]
    return {"name": name, "in": "query", "description": description,
            "schema": {"type": type_, "uniqueItems": True}}


def _content(schema: Model | Opaque, *media: str) -> dict[str, Any]:
    return {m: {"schema": {"$ref": _ref(schema)}} for m in media}


def _responses(model: Model, *codes: int, media: tuple[str, ...] = (JSON,)) -> dict[str, Any]:
    return {str(c): {"description": _REASONS[c], "content": _content(model, *media)}
            for c in codes}


_REASONS = {200: "OK", 201: "Created", 202: "Accepted"}


class _Operations:
    """The operations on one resource's paths, named and tagged as Kubernetes names them:
    `readAppsV1NamespacedDeploymentScale` (read + group/version + name), tag `apps_v1`."""

    def __init__(self, res: Resource) -> None:
        self.res = res
        group = res.group.split(".")[0].capitalize() if res.group else "Core"
        self.gv_name = f"{group}{res.version.capitalize()}"
        self.tag = f"{group.lower()}_{res.version}"

    def _op(self, op_id: str, description: str, action: str, query: Iterable[str],
            responses: dict[str, Any], model: Model | None) -> dict[str, Any]:
        """`op_id` has `{}` where the group/version goes: `read{}NamespacedPod`."""
        op: dict[str, Any] = {
            "tags": [self.tag],
            "description": description,
            "operationId": op_id.format(self.gv_name),
            "parameters": [_query_param(q) for q in query],
            "responses": {**responses, "401": {"description": "Unauthorized"}},
            "x-kubernetes-action": action,
        }
        if model is not None:
            gvk = model.kinds[0]
            op["x-kubernetes-group-version-kind"] = {
                "group": gvk.group, "version": gvk.version, "kind": gvk.kind}
        return op

    def read(self, name: str, description: str, model: Model) -> dict[str, Any]:
        return self._op(f"read{{}}{name}", description, "get", (), _responses(model, 200), model)

    def list(self, name: str, model: Model, listed: Model) -> dict[str, Any]:
        return self._op(f"list{{}}{name}", f"list or watch objects of kind {self.res.kind}",
                        "list", (*_LIST_QUERY, "watch"),
                        _responses(listed, 200, media=(JSON, f"{JSON};stream=watch")), model)

    def write(self, verb: str, name: str, description: str, model: Model) -> dict[str, Any]:
        """POST creates, PUT replaces."""
        prefix, codes = ("create", (200, 201, 202)) if verb == "post" else ("replace", (200, 201))
        op = self._op(f"{prefix}{{}}{name}", description, verb, _WRITE_QUERY,
                      _responses(model, *codes), model)
        op["requestBody"] = {"content": _content(model, "*/*"), "required": True}
        return op

    def patch(self, name: str, description: str, model: Model) -> dict[str, Any]:
        op = self._op(f"patch{{}}{name}", description, "patch", (*_WRITE_QUERY, "force"),
                      _responses(model, 200, 201), model)
        op["requestBody"] = {"content": _content(PATCH, *PATCH_TYPES), "required": True}
        return op

    def delete(self, name: str, model: Model) -> dict[str, Any]:
        op = self._op(f"delete{{}}{name}", f"delete a {self.res.kind}", "delete", _DELETE_QUERY,
                      _responses(model, 200, 202), model)
        op["requestBody"] = {"content": _content(DELETE_OPTIONS, "*/*")}
        return op

    def delete_collection(self, name: str, model: Model) -> dict[str, Any]:
        query = sorted({*_LIST_QUERY, *_DELETE_QUERY} - {"allowWatchBookmarks"})
        op = self._op(f"delete{{}}Collection{name}", f"delete collection of {self.res.kind}",
                      "deletecollection", query, _responses(STATUS, 200), model)
        op["requestBody"] = {"content": _content(DELETE_OPTIONS, "*/*")}
        return op

    def stream(self, action: str, op_id: str, description: str,
               query: Iterable[str]) -> dict[str, Any]:
        """Logs and upgraded connections: bytes, not objects."""
        text = {"description": "OK", "content": {"*/*": {"schema": {"type": "string"}}}}
        return self._op(op_id, description, action, query, {"200": text}, None)
