"""Field errors as Kubernetes words them (k8s.io/apimachinery/pkg/util/validation/field).

`Errors` collects `Cause`s; each helper mirrors one of field.Required, field.Invalid,
field.NotSupported, ... including how the bad value is printed: strings as Go's `%q`, numbers
and booleans plainly, anything else as Go's `json.Marshal` (maps with sorted keys, structs in
field order; `Struct` marks a dict whose key order is a Go struct's field order).

The getters read one field of a JSON object and record a `FieldValueTypeInvalid` cause when it
has the wrong JSON type, so validators never trip over a malformed body.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from kubesvc.api.errors import Cause

REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"
FORBIDDEN = "FieldValueForbidden"
NOT_FOUND = "FieldValueNotFound"
TOO_LONG = "FieldValueTooLong"
TOO_MANY = "FieldValueTooMany"
TYPE_INVALID = "FieldValueTypeInvalid"

IMMUTABLE = "field is immutable"
NEGATIVE = "must be greater than or equal to 0"


class Struct(dict[str, Any]):
    """A dict rendered like a Go struct: keys keep their order instead of being sorted."""


# ---------------------------------------------------------------------------------------------
# Paths: "spec.ports[0].port", "metadata.labels[app]"


def child(path: str, *names: str) -> str:
    for name in names:
        path = f"{path}.{name}" if path else name
    return path


def index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def key(path: str, k: str) -> str:
    return f"{path}[{k}]"


# ---------------------------------------------------------------------------------------------
# Rendering values the way Go does


_GO_ESCAPES = {'"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n",
               "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(s: str) -> str:
    """strconv.Quote: printable runes as they are, the rest escaped."""
    out = ['"']
    for ch in s:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            if code < 0x80:
                out.append(f"\\x{code:02x}")
            elif code < 0x10000:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _go_float(v: float) -> str:
    if math.isfinite(v) and v == int(v) and abs(v) < 1e21:
        return str(int(v))
    return repr(v)


def go_json(v: Any) -> str:
    """encoding/json.Marshal: compact, map keys sorted, <>& escaped."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _go_float(v)
    if isinstance(v, str):
        text = json.dumps(v, ensure_ascii=False)
        for raw, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
            text = text.replace(raw, esc)
        return text
    if isinstance(v, Struct):
        return "{" + ",".join(f"{go_json(k)}:{go_json(x)}" for k, x in v.items()) + "}"
    if isinstance(v, Mapping):
        items = sorted(v.items(), key=lambda kv: str(kv[0]))
        return "{" + ",".join(f"{go_json(str(k))}:{go_json(x)}" for k, x in items) + "}"
    if isinstance(v, list | tuple):
        return "[" + ",".join(go_json(x) for x in v) + "]"
    return go_json(str(v))


def render(v: Any) -> str:
    """How field.Error prints a bad value: %q for strings, %v for scalars, JSON otherwise."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _go_float(v)
    if isinstance(v, str):
        return go_quote(v)
    return go_json(v)


def _with_detail(head: str, detail: str) -> str:
    return f"{head}: {detail}" if detail else head


# ---------------------------------------------------------------------------------------------
# The error list


class Errors:
    """An ErrorList under construction."""

    def __init__(self) -> None:
        self.causes: list[Cause] = []

    def __len__(self) -> int:
        return len(self.causes)

    def add(self, path: str, message: str, reason: str) -> None:
        self.causes.append(Cause(field=path, message=message, reason=reason))

    def required(self, path: str, detail: str = "") -> None:
        self.add(path, _with_detail("Required value", detail), REQUIRED)

    def invalid(self, path: str, value: Any, detail: str) -> None:
        self.add(path, _with_detail(f"Invalid value: {render(value)}", detail), INVALID)

    def not_supported(self, path: str, value: Any, supported: Iterable[str]) -> None:
        values = ", ".join(go_quote(s) for s in supported)
        detail = f"supported values: {values}" if values else ""
        self.add(path, _with_detail(f"Unsupported value: {render(value)}", detail), NOT_SUPPORTED)

    def duplicate(self, path: str, value: Any, detail: str = "") -> None:
        self.add(path, _with_detail(f"Duplicate value: {render(value)}", detail), DUPLICATE)

    def forbidden(self, path: str, detail: str) -> None:
        self.add(path, _with_detail("Forbidden", detail), FORBIDDEN)

    def not_found(self, path: str, value: Any, detail: str = "") -> None:
        self.add(path, _with_detail(f"Not found: {render(value)}", detail), NOT_FOUND)

    def too_long(self, path: str, max_len: int) -> None:
        unit = "byte" if max_len == 1 else "bytes"
        self.add(path, f"Too long: may not be more than {max_len} {unit}", TOO_LONG)

    def too_many(self, path: str, actual: int, maximum: int) -> None:
        unit = "item" if maximum == 1 else "items"
        self.add(path, f"Too many: {actual}: must have at most {maximum} {unit}", TOO_MANY)

    def type_invalid(self, path: str, value: Any, type_name: str) -> None:
        self.add(path, f"Invalid value: {render(value)}: must be of type {type_name}",
                 TYPE_INVALID)

    def immutable(self, path: str, new: Any, old: Any) -> None:
        """ValidateImmutableField: compared as Kubernetes' semantic equality does."""
        if not semantic_equal(new, old):
            self.invalid(path, new, IMMUTABLE)


# ---------------------------------------------------------------------------------------------
# Equality as apiequality.Semantic sees it: absent, null, empty list and empty map are the same


def _prune(v: Any) -> Any:
    if isinstance(v, Mapping):
        out = {k: _prune(x) for k, x in v.items()}
        out = {k: x for k, x in out.items() if x is not None}
        return out or None
    if isinstance(v, list):
        return [_prune(x) for x in v] or None
    return v


def semantic_equal(a: Any, b: Any) -> bool:
    return bool(_prune(a) == _prune(b))


# ---------------------------------------------------------------------------------------------
# Typed access to JSON objects


def get_dict(e: Errors, obj: Mapping[str, Any], name: str, path: str) -> dict[str, Any]:
    v = obj.get(name)
    if v is None:
        return {}
    if not isinstance(v, dict):
        e.type_invalid(path, v, "object")
        return {}
    return v


def opt_dict(e: Errors, obj: Mapping[str, Any], name: str, path: str) -> dict[str, Any] | None:
    """Like get_dict, but tells an absent field (None) from an empty one."""
    v = obj.get(name)
    if v is None:
        return None
    if not isinstance(v, dict):
        e.type_invalid(path, v, "object")
        return None
    return v


def get_list(e: Errors, obj: Mapping[str, Any], name: str, path: str) -> list[Any]:
    v = obj.get(name)
    if v is None:
        return []
    if not isinstance(v, list):
        e.type_invalid(path, v, "array")
        return []
    return v


def dict_items(e: Errors, items: list[Any], path: str) -> list[tuple[int, dict[str, Any]]]:
    """The (index, object) pairs of a list of objects; other entries are type errors."""
    out = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            out.append((i, item))
        else:
            e.type_invalid(index(path, i), item, "object")
    return out


def get_str(e: Errors, obj: Mapping[str, Any], name: str, path: str) -> str:
    v = obj.get(name)
    if v is None:
        return ""
    if not isinstance(v, str):
        e.type_invalid(path, v, "string")
        return ""
    return v


def opt_str(e: Errors, obj: Mapping[str, Any], name: str, path: str) -> str | None:
    v = obj.get(name)
    if v is None:
        return None
    if not isinstance(v, str):
        e.type_invalid(path, v, "string")
        return None
    return v


def is_int(v: Any) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or (
        isinstance(v, float) and math.isfinite(v) and v == int(v))


def opt_int(e: Errors, obj: Mapping[str, Any], name: str, path: str,
            type_name: str = "integer") -> int | None:
    v = obj.get(name)
    if v is None:
        return None
    if not is_int(v):
        e.type_invalid(path, v, type_name)
        return None
    return int(v)


def get_int(e: Errors, obj: Mapping[str, Any], name: str, path: str) -> int:
    v = opt_int(e, obj, name, path)
    return 0 if v is None else v


def opt_bool(e: Errors, obj: Mapping[str, Any], name: str, path: str) -> bool | None:
    v = obj.get(name)
    if v is None:
        return None
    if not isinstance(v, bool):
        e.type_invalid(path, v, "boolean")
        return None
    return v


def get_str_map(e: Errors, obj: Mapping[str, Any], name: str, path: str) -> dict[str, str]:
    """A map[string]string; non-string values are type errors and are left out."""
    raw = get_dict(e, obj, name, path)
    out: dict[str, str] = {}
    for k, v in raw.items():
        if isinstance(v, str):
            out[k] = v
        elif v is None:
            out[k] = ""
        else:
            e.type_invalid(key(path, k), v, "string")
    return out


def get_str_list(e: Errors, obj: Mapping[str, Any], name: str, path: str) -> list[str]:
    out = []
    for i, v in enumerate(get_list(e, obj, name, path)):
        if isinstance(v, str):
            out.append(v)
        else:
            e.type_invalid(index(path, i), v, "string")
    return out


def int_or_str(e: Errors, obj: Mapping[str, Any], name: str, path: str) -> int | str | None:
    """An IntOrString field: an int, a string or absent (None)."""
    v = obj.get(name)
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if is_int(v):
        return int(v)
    e.type_invalid(path, v, "integer or string")
    return None
