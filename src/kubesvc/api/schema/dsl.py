"""A small language for API schemas: the one source that OpenAPI, explain and strict validation
read.

A `Model` is a named object type (`io.k8s.api.core.v1.ServiceSpec`) with ordered properties;
a property's type is a scalar, an array, a map, a free-form object, an opaque named type
(Quantity, IntOrString, Time) or another model, which OpenAPI renders as a `$ref`. Arrays carry
the strategic-merge-patch metadata Kubernetes declares on its Go fields (`patchStrategy`,
`patchMergeKey`) and the server-side-apply list topology (`listType`, `listMapKey`), so patching
code can read them from the same place that kubectl reads them from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class GroupVersionKind:
    group: str
    version: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


@dataclass(frozen=True)
class Scalar:
    type: str  # "string", "integer", "boolean" or "number"
    format: str = ""
    enum: tuple[str, ...] = ()


@dataclass(frozen=True)
class Array:
    items: Schema
    merge_key: str = ""
    strategy: str = ""  # "merge", "merge,retainKeys", ...
    list_type: str = ""  # "atomic", "set" or "map"
    map_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Map:
    values: Schema


@dataclass(frozen=True)
class FreeForm:
    """A JSON object kept as given: strict validation does not look inside it.

    Used for the few parts of the API kubesvc has no use for (volume plugins of cloud vendors,
    dynamic resource allocation), so that manifests carrying them still pass validation.
    """


@dataclass(frozen=True, eq=False)
class Opaque:
    """A named type that is not an object with fields: Quantity, IntOrString, Time, ..."""

    name: str
    description: str
    body: Mapping[str, Any]


@dataclass(frozen=True)
class Prop:
    name: str
    schema: Schema
    description: str
    required: bool = False
    strategy: str = ""  # the patch strategy of a field that is not a list (retainKeys)


@dataclass(frozen=True, eq=False)
class Model:
    name: str  # the OpenAPI component name, after Kubernetes' Go package path
    description: str
    props: tuple[Prop, ...]
    kinds: tuple[GroupVersionKind, ...] = ()
    _by_name: dict[str, Prop] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {p.name: p for p in self.props})

    def prop(self, name: str) -> Prop | None:
        return self._by_name.get(name)


Schema = Scalar | Array | Map | FreeForm | Opaque | Model

STRING = Scalar("string")
INT32 = Scalar("integer", "int32")
INT64 = Scalar("integer", "int64")
BOOL = Scalar("boolean")
BYTES = Scalar("string", "byte")
FREE = FreeForm()


def enum(*values: str) -> Scalar:
    return Scalar("string", enum=values)


def array(items: Schema, *, merge: str = "", strategy: str = "", list_type: str = "",
          keys: tuple[str, ...] = ()) -> Array:
    """A list; `merge="name"` is Kubernetes' usual keyed list: merged by `name` in a strategic
    merge patch and a `map` list keyed by it for server-side apply, unless told otherwise."""
    if merge:
        strategy = strategy or "merge"
        if not list_type:
            list_type, keys = "map", keys or (merge,)
    elif keys:
        list_type = "map"
    return Array(items, merge, strategy, list_type, keys)


STRINGS = array(STRING, list_type="atomic")


def map_of(values: Schema = STRING) -> Map:
    return Map(values)


def prop(name: str, schema: Schema, description: str, *, required: bool = False,
         strategy: str = "") -> Prop:
    return Prop(name, schema, description, required, strategy)


def model(name: str, description: str, *props: Prop,
          kinds: tuple[GroupVersionKind, ...] = ()) -> Model:
    return Model(name, description, props, kinds)
