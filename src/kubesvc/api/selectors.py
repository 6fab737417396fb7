"""Label and field selectors: the string forms clients send and the structured LabelSelector."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubesvc.api.errors import bad_request


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return present and value in self.values
        if self.op == "!=":
            return not present or value not in self.values
        if self.op == "in":
            return present and value in self.values
        if self.op == "notin":
            return not present or value not in self.values
        if self.op == "exists":
            return present
        return not present  # "!"


Selector = tuple[Requirement, ...]

_SET_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9./_-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ_RE = re.compile(r"^\s*([A-Za-z0-9./_-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)\s*$")


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not inside `in (...)` value lists."""
    terms: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(ch)
    terms.append("".join(current))
    return [t for t in terms if t.strip()]


def parse_label_selector(text: str | None) -> Selector:
    """Parse `a=b,c!=d,e in (x,y),f notin (z),g,!h`; a bad selector is a 400."""
    if not text:
        return ()
    reqs: list[Requirement] = []
    for term in _split_terms(text):
        eq = _EQ_RE.match(term)
        if eq:
            key, op, value = eq.groups()
            reqs.append(Requirement(key, "!=" if op == "!=" else "=", frozenset([value])))
            continue
        st = _SET_RE.match(term)
        if not st:
            raise bad_request(f"unable to parse requirement: found '{term.strip()}', "
                              "expected: '=', '!=', '==', 'in', notin'")
        bang, key, op, values = st.groups()
        if op:
            if bang:
                raise bad_request(f"unable to parse requirement: '{term.strip()}'")
            vals = frozenset(v.strip() for v in values.split(",") if v.strip())
            reqs.append(Requirement(key, op, vals))
        else:
            reqs.append(Requirement(key, "!" if bang else "exists"))
    return tuple(reqs)


def from_label_selector(sel: Mapping[str, Any] | None) -> Selector:
    """Convert a structured LabelSelector (matchLabels + matchExpressions)."""
    if not sel:
        return ()
    reqs = [Requirement(k, "=", frozenset([str(v)]))
            for k, v in (sel.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in sel.get("matchExpressions") or []:
        op = ops.get(expr.get("operator", ""))
        if op is None:
            raise bad_request(f"{expr.get('operator')!r} is not a valid label selector operator")
        reqs.append(Requirement(expr.get("key", ""), op, frozenset(expr.get("values") or [])))
    return tuple(reqs)


def matches(selector: Selector, labels: Mapping[str, str] | None) -> bool:
    return all(r.matches(labels or {}) for r in selector)


def format_label_selector(sel: Mapping[str, Any] | None) -> str:
    """The string form of a LabelSelector, as `status.selector` of a Scale holds it."""
    parts = [f"{k}={v}" for k, v in sorted((sel or {}).get("matchLabels", {}).items())]
    for expr in (sel or {}).get("matchExpressions") or []:
        op, key = expr.get("operator"), expr.get("key")
        values = ",".join(sorted(expr.get("values") or []))
        if op == "In":
            parts.append(f"{key} in ({values})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif op == "Exists":
            parts.append(str(key))
        else:
            parts.append(f"!{key}")
    return ",".join(parts)


# Field selectors: which fields each kind can be selected by, beyond metadata.name/namespace.
FIELDS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
            "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"),
    "Event": ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
              "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
              "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"),
    "Secret": ("type",),
    "Node": ("spec.unschedulable",),
    "Namespace": ("status.phase",),
    "ReplicaSet": ("status.replicas",),
}

FieldSelector = tuple[tuple[str, bool, str], ...]  # (path, equal?, value)


def parse_field_selector(text: str | None, kind: str) -> FieldSelector:
    if not text:
        return ()
    allowed = {"metadata.name", "metadata.namespace", *FIELDS.get(kind, ())}
    out = []
    for term in text.split(","):
        m = re.match(r"^\s*([A-Za-z0-9.]+)\s*(==|=|!=)\s*(.*?)\s*$", term)
        if not m:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
        path, op, value = m.groups()
        if path not in allowed:
            raise bad_request(f'field label not supported: {path}')
        out.append((path, op != "!=", value))
    return tuple(out)


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    if path == "source" and obj.get("kind") == "Event":
        return str((obj.get("source") or {}).get("component", ""))
    cur: Any = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, Mapping) else None
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return "" if cur is None else str(cur)


def field_matches(selector: FieldSelector, obj: Mapping[str, Any]) -> bool:
    return all((_field_value(obj, path) == value) == equal for path, equal, value in selector)


def object_filter(label: str | None, field: str | None,
                  kind: str) -> Callable[[Mapping[str, Any]], bool]:
    """One predicate for a list or watch request's labelSelector and fieldSelector."""
    labels = parse_label_selector(label)
    fields = parse_field_selector(field, kind)

    def accept(obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        return matches(labels, meta.get("labels")) and field_matches(fields, obj)

    return accept
