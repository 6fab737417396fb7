"""The routing model: what nginx should do, computed from the cluster's objects.

Pure: from the Ingresses, IngressClasses, Services, EndpointSlices and Secrets the informers
cache, it builds one server per host with its locations, the upstreams (the ready endpoints of
each Service port, so traffic goes straight to the pods), the key pairs to write, and the
problems found in each Ingress. It follows ingress-nginx's createServers/createUpstreams:

- Ingresses are taken oldest first; the first to define a host and path wins, a later one
  with the same location is reported and left out, and everything else keeps serving.
- Every host's `/` goes to the default backend (404) unless a path claims it; an Ingress's
  `spec.defaultBackend` is the default for its own hosts, and for the catch-all server `_`
  when the Ingress has no rules.
- Paths: Exact is an exact location; Prefix `/a` becomes `= /a` and `/a/` (Kubernetes matches
  whole path elements); ImplementationSpecific is an nginx prefix. If any path of a host uses
  a regular expression (use-regex or rewrite-target), all of that host's paths are regular
  expressions, tried longest first, as in ingress-nginx.
- A host listed in an Ingress's `tls` serves that Ingress's certificate (the default one if
  the Secret is missing or invalid) and redirects plain HTTP there unless ssl-redirect is off.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from kubesvc.ingress.annotations import Annotations
from kubesvc.ingress.annotations import parse as parse_annotations
from kubesvc.ingress.tls import InvalidKeyPair, KeyPair, key_pair_from_secret

Obj = dict[str, Any]
Matcher = tuple[str, str]  # an nginx location's modifier ("", "=", "~*") and its path

CATCH_ALL = "_"
INGRESS_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
_UNSAFE_PATH = re.compile(r"[\x00-\x20\x7f]")

# Event reasons for the problems found in an Ingress.
SERVICE_NOT_FOUND = "ServiceNotFound"
SERVICE_PORT_NOT_FOUND = "ServicePortNotFound"
UNSUPPORTED_BACKEND = "UnsupportedBackend"
SECRET_NOT_FOUND = "SecretNotFound"
INVALID_SECRET = "InvalidSecret"
CONFLICT = "Conflict"
INVALID_PATH = "InvalidPath"
INVALID_ANNOTATION = "InvalidAnnotation"


@dataclass(frozen=True)
class ClusterState:
    """The objects the model is built from, as the informers cache them."""

    ingresses: list[Obj]
    classes: list[Obj]
    services: dict[str, Obj]  # by namespace/name
    slices: list[Obj]
    secrets: dict[str, Obj]  # by namespace/name


@dataclass(frozen=True)
class Route:
    """Where a location sends requests, and how."""

    upstream: str  # "" is the default backend, which answers 404
    ingress: str = ""  # the Ingress it comes from, namespace/name, for the access log
    protocol: str = "HTTP"
    rewrite_target: str = ""
    rewrite_path: str = ""  # the regular expression rewrite-target applies to
    ssl_redirect: bool = True
    proxy_body_size: str = ""


@dataclass(frozen=True)
class Location:
    modifier: str  # "" (prefix), "=" (exact) or "~*" (case-insensitive regex)
    path: str
    route: Route


@dataclass
class Server:
    hostname: str  # a host, `*.` wildcard, or CATCH_ALL
    locations: list[Location]
    # Listed in an Ingress's `tls` section: plain HTTP is redirected to HTTPS.
    tls: bool = False
    # The key pair it serves, by name; None is the default certificate.
    key_pair: str | None = None


@dataclass(frozen=True)
class Upstream:
    name: str
    endpoints: tuple[str, ...]  # ready pod addresses, `ip:port`, sorted


@dataclass(frozen=True)
class Problem:
    ingress: Obj = field(compare=False, hash=False)
    uid: str
    reason: str
    message: str


@dataclass
class Configuration:
    servers: list[Server]  # the catch-all first, then by hostname
    upstreams: list[Upstream]  # the ones a location uses, by name
    key_pairs: dict[str, KeyPair]  # by name
    ingresses: list[Obj]  # the Ingresses this controller serves
    problems: list[Problem]


@dataclass
class _Candidate:
    ingress: Obj
    path: str
    path_type: str
    route: Route
    use_regex: bool


@dataclass
class _Draft:
    hostname: str
    default: Route
    candidates: list[_Candidate] = field(default_factory=list)
    tls: bool = False
    key_pair: str | None = None
    tls_owner: str = ""


def ingress_key(ingress: Obj) -> str:
    return f"{ingress['metadata'].get('namespace', '')}/{ingress['metadata']['name']}"


def is_default_class(ingress_class: Obj) -> bool:
    marks = ingress_class["metadata"].get("annotations") or {}
    return marks.get(DEFAULT_CLASS_ANNOTATION) == "true"


def served(ingress: Obj, classes: list[Obj], class_name: str, controller: str) -> bool:
    """Whether the Ingress is this controller's: the legacy class annotation names our class,
    its IngressClass names our controller, or it has no class and ours is the default."""
    annotation = (ingress["metadata"].get("annotations") or {}).get(INGRESS_CLASS_ANNOTATION)
    if annotation is not None:
        return bool(annotation == class_name)
    ours = [c for c in classes if (c.get("spec") or {}).get("controller") == controller]
    wanted = (ingress.get("spec") or {}).get("ingressClassName")
    if wanted:
        return any(c["metadata"]["name"] == wanted for c in ours)
    return any(is_default_class(c) for c in ours)


def _matchers(path: str, path_type: str, regex: bool) -> tuple[list[Matcher], list[Matcher]]:
    """The nginx locations a path needs: ones it claims, and ones it yields to a claim (the
    exact half of a Prefix yields to an Exact path, as Kubernetes gives Exact precedence)."""
    if path_type == "Exact":
        return [("=", path)], []
    if path_type == "Prefix":
        base = path.rstrip("/")
        if regex:
            return [("~*", f"^{re.escape(base)}(/|$)" if base else "^/")], []
        return ([("", f"{base}/")], [("=", base)]) if base else ([("", "/")], [])
    return [("~*", f"^{path}")] if regex else [("", path)], []


def _root(regex: bool) -> Matcher:
    return ("~*", "^/") if regex else ("", "/")


class _Builder:
    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self.slices: dict[tuple[str, str], list[Obj]] = defaultdict(list)
        for s in state.slices:
            service = (s["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL)
            if service:
                self.slices[(s["metadata"].get("namespace", ""), service)].append(s)
        self.drafts: dict[str, _Draft] = {CATCH_ALL: _Draft(CATCH_ALL, Route(""))}
        self.catch_all_owner = ""
        self.upstreams: dict[str, Upstream] = {}
        self.key_pairs: dict[str, KeyPair] = {}
        self._checked_secrets: dict[str, KeyPair | None] = {}
        self.problems: list[Problem] = []

    def problem(self, ingress: Obj, reason: str, message: str) -> None:
        found = Problem(ingress, ingress["metadata"].get("uid", ""), reason, message)
        if found not in self.problems:
            self.problems.append(found)

    # --- backends ---------------------------------------------------------------------------

    def _endpoints(self, namespace: str, name: str, service_port: Obj) -> tuple[str, ...]:
        """The ready endpoints of a Service port, from its EndpointSlices."""
        port_name = service_port.get("name") or ""
        found: set[str] = set()
        for s in self.slices.get((namespace, name), []):
            if s.get("addressType") not in ("IPv4", "IPv6"):
                continue
            port = next((p.get("port") for p in s.get("ports") or []
                         if (p.get("name") or "") == port_name
                         and (p.get("protocol") or "TCP") == "TCP"), None)
            if port is None:
                continue
            for endpoint in s.get("endpoints") or []:
                # An unknown readiness counts as ready, as the EndpointSlice API says.
                if (endpoint.get("conditions") or {}).get("ready") is False:
                    continue
                for address in endpoint.get("addresses") or []:
                    found.add(f"[{address}]:{port}" if ":" in address else f"{address}:{port}")
        return tuple(sorted(found))

    def upstream(self, ingress: Obj, backend: Obj) -> str:
        """The upstream for a backend (made on first use); "" for the default backend."""
        service = backend.get("service")
        if service is None:
            self.problem(ingress, UNSUPPORTED_BACKEND,
                         "resource backends are not supported; using the default backend")
            return ""
        namespace = ingress["metadata"].get("namespace", "")
        port = service.get("port") or {}
        wanted = port.get("number") or port.get("name") or ""
        name = f"{namespace}-{service['name']}-{wanted}"
        if name in self.upstreams:
            return name
        endpoints: tuple[str, ...] = ()
        svc = self.state.services.get(f"{namespace}/{service['name']}")
        if svc is None:
            self.problem(ingress, SERVICE_NOT_FOUND,
                         f'service "{namespace}/{service["name"]}" not found')
        elif svc["spec"].get("type") == "ExternalName":
            self.problem(ingress, UNSUPPORTED_BACKEND,
                         f'service "{namespace}/{service["name"]}" is of type ExternalName, '
                         "which is not supported")
        else:
            service_port = next((p for p in svc["spec"].get("ports") or []
                                 if p.get("port") == wanted or p.get("name") == wanted), None)
            if service_port is None:
                self.problem(ingress, SERVICE_PORT_NOT_FOUND,
                             f'service "{namespace}/{service["name"]}" does not have port '
                             f"{wanted}")
            else:
                endpoints = self._endpoints(namespace, service["name"], service_port)
        self.upstreams[name] = Upstream(name, endpoints)
        return name

    # --- TLS --------------------------------------------------------------------------------

    def _key_pair(self, ingress: Obj, secret_name: str) -> KeyPair | None:
        key = f"{ingress['metadata'].get('namespace', '')}/{secret_name}"
        if key not in self._checked_secrets:
            secret = self.state.secrets.get(key)
            pair = None
            if secret is None:
                self.problem(ingress, SECRET_NOT_FOUND,
                             f'secret "{key}" not found; using the default certificate')
            else:
                try:
                    pair = key_pair_from_secret(secret)
                except InvalidKeyPair as err:
                    self.problem(ingress, INVALID_SECRET,
                                 f'secret "{key}": {err}; using the default certificate')
            self._checked_secrets[key] = pair
        return self._checked_secrets[key]

    def _tls(self, ingress: Obj, host: str) -> tuple[bool, str | None]:
        """Whether the Ingress lists `host` for TLS, and the name of the key pair to serve."""
        for entry in (ingress.get("spec") or {}).get("tls") or []:
            hosts = entry.get("hosts") or []
            if hosts and host not in hosts:
                continue
            secret_name = entry.get("secretName") or ""
            pair = self._key_pair(ingress, secret_name) if secret_name else None
            if not hosts and (pair is None or not pair.covers(host)):
                continue  # an entry without hosts serves the hosts its certificate names
            if pair is None:
                return True, None
            name = f"{ingress['metadata'].get('namespace', '')}_{secret_name}"
            self.key_pairs[name] = pair
            return True, name
        return False, None

    # --- Ingresses --------------------------------------------------------------------------

    def add(self, ingress: Obj) -> None:
        key = ingress_key(ingress)
        spec = ingress.get("spec") or {}
        anns, bad = parse_annotations(ingress)
        for message in bad:
            self.problem(ingress, INVALID_ANNOTATION, message)
        default = Route("", key, ssl_redirect=anns.ssl_redirect)
        if spec.get("defaultBackend") is not None:
            default = self._route(ingress, spec["defaultBackend"], anns, "/")
            if not spec.get("rules"):
                if self.catch_all_owner:
                    self.problem(ingress, CONFLICT, "the default backend is already defined "
                                 f'by ingress "{self.catch_all_owner}"')
                else:
                    self.catch_all_owner = key
                    self.drafts[CATCH_ALL].default = default
        for rule in spec.get("rules") or []:
            host = rule.get("host") or CATCH_ALL
            draft = self.drafts.get(host)
            if draft is None:
                draft = self.drafts[host] = _Draft(host, default)
            if host != CATCH_ALL:
                self._add_tls(ingress, draft)
            for item in (rule.get("http") or {}).get("paths") or []:
                path = item.get("path") or "/"
                if _UNSAFE_PATH.search(path):
                    self.problem(ingress, INVALID_PATH,
                                 f"path {path!r} contains white space or control characters")
                    continue
                route = self._route(ingress, item.get("backend") or {}, anns, path)
                draft.candidates.append(_Candidate(ingress, path, item.get("pathType")
                                                   or "ImplementationSpecific", route,
                                                   anns.use_regex))

    def _route(self, ingress: Obj, backend: Obj, anns: Annotations,
               path: str) -> Route:
        return Route(self.upstream(ingress, backend), ingress_key(ingress),
                     anns.backend_protocol, anns.rewrite_target, path, anns.ssl_redirect,
                     anns.proxy_body_size)

    def _add_tls(self, ingress: Obj, draft: _Draft) -> None:
        listed, pair = self._tls(ingress, draft.hostname)
        if not listed:
            return
        if not draft.tls_owner:
            draft.tls, draft.key_pair, draft.tls_owner = True, pair, ingress_key(ingress)
        elif draft.key_pair != pair:
            self.problem(ingress, CONFLICT, f'TLS for host "{draft.hostname}" is already '
                         f'defined by ingress "{draft.tls_owner}"')

    def server(self, draft: _Draft) -> Server:
        regex = any(c.use_regex for c in draft.candidates)
        locations: dict[Matcher, Location] = {}
        claimed: dict[Matcher, str] = {}
        for c in draft.candidates:
            if regex and c.path_type == "ImplementationSpecific" and not _compiles(c.path):
                self.problem(c.ingress, INVALID_PATH,
                             f'path "{c.path}" is not a valid regular expression')
                continue
            claims, yields = _matchers(c.path, c.path_type, regex)
            taken = [claimed[m] for m in claims if m in claimed]
            if taken:
                self.problem(c.ingress, CONFLICT, f'host "{draft.hostname}" and path '
                             f'"{c.path}" is already defined in ingress "{taken[0]}"')
                continue
            for m in claims:
                locations[m] = Location(*m, c.route)
                claimed[m] = ingress_key(c.ingress)
            for m in yields:
                locations.setdefault(m, Location(*m, c.route))
        root = _root(regex)
        locations.setdefault(root, Location(*root, draft.default))
        ordered = sorted(locations.values(), key=lambda loc: (-len(loc.path), loc.path,
                                                               loc.modifier))
        return Server(draft.hostname, ordered, draft.tls, draft.key_pair)


def _compiles(pattern: str) -> bool:
    """A check of a path regex before nginx sees it (PCRE and Python agree on the common
    syntax; nginx's own test of the configuration catches the rest)."""
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


def build(state: ClusterState, class_name: str, controller: str) -> Configuration:
    """The configuration for the Ingresses of `class_name` / `controller`."""
    ours = [i for i in state.ingresses if served(i, state.classes, class_name, controller)]
    ours.sort(key=lambda i: (i["metadata"].get("creationTimestamp", ""), ingress_key(i)))
    builder = _Builder(state)
    for ingress in ours:
        builder.add(ingress)
    servers = [builder.server(d) for _, d in sorted(builder.drafts.items(),
                                                    key=lambda kv: (kv[0] != CATCH_ALL, kv[0]))]
    used = {loc.route.upstream for s in servers for loc in s.locations}
    pairs = {s.key_pair for s in servers if s.key_pair}
    return Configuration(
        servers=servers,
        upstreams=[u for name, u in sorted(builder.upstreams.items()) if name in used],
        key_pairs={name: p for name, p in builder.key_pairs.items() if name in pairs},
        ingresses=ours, problems=builder.problems)
