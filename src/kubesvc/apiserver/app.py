"""The HTTP face of the API server: routing, content negotiation, watch streams, errors."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from kubesvc.api import errors, openapi, selectors, tables
from kubesvc.api.patch import apply_patch
from kubesvc.api.resources import Resource, lookup, storage_resource
from kubesvc.apiserver import discovery
from kubesvc.apiserver.registry import Registry
from kubesvc.storage import Compacted

log = logging.getLogger(__name__)

Obj = dict[str, Any]
# Serves pods/log, pods/exec and pods/portforward by reaching the pod's node.
StreamHandler = Callable[[web.Request, Obj, str], Awaitable[web.StreamResponse]]
Authenticator = Callable[[web.Request], bool]

VERSION = {
    "major": "1", "minor": "37", "gitVersion": "v1.37.0+kubesvc", "gitCommit": "",
    "gitTreeState": "clean", "buildDate": "2026-11-25T00:00:00Z", "goVersion": "python",
    "compiler": "cpython", "platform": "linux/amd64",
}
PUBLIC_PATHS = {"/healthz", "/livez", "/readyz", "/version"}
# kubectl only takes OpenAPI v2 as protobuf, and falls back to it when v3 lacks a kind. An
# empty document (swagger "2.0", info {title, version}) lets it conclude that an unknown kind
# is unknown instead of failing the download. Hand-encoded: field 1 and 2, length-delimited.
OPENAPI_V2 = b"\x0a\x032.0\x12\x12\x0a\x07kubesvc\x12\x07v1.37.0"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
BOOKMARK_INTERVAL = 60.0
DEFAULT_WATCH_TIMEOUT = 1800


@dataclass(frozen=True)
class Target:
    res: Resource
    namespace: str | None
    name: str | None
    subresource: str


def parse_target(path: str) -> Target | None:
    """Map `/api/v1/...` and `/apis/<g>/<v>/...` paths to a resource, namespace and name."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if not rest:
        return None
    if rest[0] == "namespaces" and len(rest) >= 3:
        res = lookup(group, version, rest[2])
        if res is not None and res.namespaced and len(rest) <= 5:
            return Target(res, rest[1], rest[3] if len(rest) > 3 else None,
                          rest[4] if len(rest) > 4 else "")
    res = lookup(group, version, rest[0])
    if res is None or len(rest) > 3:
        return None
    return Target(res, None, rest[1] if len(rest) > 1 else None,
                  rest[2] if len(rest) > 2 else "")


def _json(body: Any, status: int = 200, content_type: str = "application/json") -> web.Response:
    return web.Response(body=json.dumps(body, separators=(",", ":")).encode(), status=status,
                        headers={"Content-Type": content_type})


def _wants_table(request: web.Request) -> bool:
    return "as=Table" in request.headers.get("Accept", "")


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("true", "1")


class ApiServer:
    def __init__(self, registry: Registry, *, authenticate: Authenticator | None = None,
                 stream: StreamHandler | None = None) -> None:
        self.registry = registry
        self.authenticate = authenticate
        self.stream = stream
        self.ready = asyncio.Event()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors], client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    @web.middleware
    async def _errors(self, request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                      ) -> web.StreamResponse:
        try:
            if self.authenticate and request.path not in PUBLIC_PATHS \
                    and not self.authenticate(request):
                raise errors.ApiError(401, "Unauthorized", "Unauthorized")
            return await handler(request)
        except errors.ApiError as err:
            return _json(err.status(), err.code)
        except (web.HTTPException, asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as exc:  # a bug must still answer as a Status, and be logged
            log.exception("internal error serving %s %s", request.method, request.path)
            return _json(errors.ApiError(500, "InternalError",
                                         f"Internal error occurred: {exc}").status(), 500)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        special = await self._special(request, path)
        if special is not None:
            return special
        target = parse_target(path)
        if target is None:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested "
                                  "resource")
        return await self._resource(request, target)

    async def _special(self, request: web.Request, path: str) -> web.StreamResponse | None:
        if path in ("/healthz", "/livez", "/readyz"):
            if path == "/readyz" and not self.ready.is_set():
                return web.Response(text="[-]poststarthook/kubesvc not finished", status=500)
            return web.Response(text="ok")
        if path == "/version":
            return _json(VERSION)
        aggregated = "as=APIGroupDiscoveryList" in request.headers.get("Accept", "")
        if path == "/api":
            return (_json(discovery.aggregated(True), content_type=discovery.AGGREGATED)
                    if aggregated else _json(discovery.api_versions()))
        if path == "/apis":
            return (_json(discovery.aggregated(False), content_type=discovery.AGGREGATED)
                    if aggregated else _json(discovery.api_group_list()))
        if path == CRD_PATH:
            # kubectl's validation asks whether an unknown kind is a CRD; we serve none.
            return _json({"kind": "CustomResourceDefinitionList",
                          "apiVersion": "apiextensions.k8s.io/v1",
                          "metadata": {"resourceVersion": str(self.registry.store.revision)},
                          "items": []})
        parts = path.strip("/").split("/")
        if parts[0] == "openapi":
            return self._openapi(parts)
        if parts[0] == "api" and len(parts) == 2:
            doc = discovery.resource_list("", parts[1])
        elif parts[0] == "apis" and len(parts) == 2:
            doc = discovery.api_group(parts[1])
        elif parts[0] == "apis" and len(parts) == 3:
            doc = discovery.resource_list(parts[1], parts[2])
        else:
            return None
        if doc is None:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested "
                                  "resource")
        return _json(doc)

    def _openapi(self, parts: list[str]) -> web.Response:
        if parts == ["openapi", "v2"]:
            return web.Response(body=OPENAPI_V2, headers={
                "Content-Type": "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"})
        if parts == ["openapi", "v3"]:
            return _json(openapi.index())
        doc = None
        if len(parts) == 4 and parts[2] == "api":
            doc = openapi.group_version_document("", parts[3])
        elif len(parts) == 5 and parts[2] == "apis":
            doc = openapi.group_version_document(parts[3], parts[4])
        if doc is None:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested "
                                  "resource")
        return _json(doc)

    # -- resources -----------------------------------------------------------------------

    async def _body(self, request: web.Request) -> Any:
        if "protobuf" in request.content_type:
            raise errors.ApiError(
                415, "UnsupportedMediaType",
                "kubesvc accepts JSON and YAML request bodies, not protobuf; use `kubectl apply "
                "-f` with a manifest (kubectl's typed `create <kind>` generators send protobuf)")
        raw = await request.read()
        try:
            if "yaml" in request.content_type:
                return yaml.safe_load(raw)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise errors.bad_request(f"error decoding the request body: {exc}") from None

    async def _resource(self, request: web.Request, t: Target) -> web.StreamResponse:
        res, method = t.res, request.method
        if res.namespaced and t.namespace is None and t.name is not None:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested "
                                  "resource")
        if t.subresource:
            return await self._subresource(request, t)
        strict = request.query.get("fieldValidation", "") == "Strict"
        dry_run = request.query.get("dryRun") == "All"
        reg = self.registry
        if t.name is None:
            if method == "GET":
                if _flag(request, "watch"):
                    return await self._watch(request, t)
                return await self._list(request, t)
            if method == "POST":
                obj = await reg.create(res, t.namespace, await self._body(request),
                                       strict=strict, dry_run=dry_run)
                return _json(obj, 201)
            if method == "DELETE":
                return await self._delete_collection(request, t)
            raise errors.method_not_allowed(f"{method} is not supported on a collection")
        if method == "GET":
            obj = await reg.get(res, t.namespace, t.name)
            return self._object(request, res, obj)
        if method == "PUT":
            return _json(await reg.update(res, t.namespace, t.name, await self._body(request),
                                          strict=strict, dry_run=dry_run))
        if method == "PATCH":
            obj, created = await reg.patch(res, t.namespace, t.name, await request.read(),
                                           request.headers.get("Content-Type", ""),
                                           strict=strict, dry_run=dry_run)
            return _json(obj, 201 if created else 200)
        if method == "DELETE":
            opts = await self._delete_options(request)
            obj = await reg.delete(res, t.namespace, t.name,
                                   grace_period=opts.get("gracePeriodSeconds"),
                                   propagation=opts.get("propagationPolicy"),
                                   preconditions=opts.get("preconditions"),
                                   dry_run=dry_run or "All" in (opts.get("dryRun") or []))
            return _json(obj)
        raise errors.method_not_allowed(f"{method} is not supported")

    def _object(self, request: web.Request, res: Resource, obj: Obj) -> web.Response:
        if _wants_table(request):
            return _json(tables.to_table(res.kind, [obj], include_object=self._include(request),
                                         resource_version=obj["metadata"]["resourceVersion"]))
        return _json(obj)

    @staticmethod
    def _include(request: web.Request) -> str:
        return request.query.get("includeObject", "Metadata")

    async def _delete_options(self, request: web.Request) -> Obj:
        opts: Obj = {}
        if request.can_read_body:
            body = await self._body(request)
            if isinstance(body, dict):
                opts = body
        for name in ("gracePeriodSeconds",):
            if name in request.query:
                opts[name] = int(request.query[name])
        if "propagationPolicy" in request.query:
            opts["propagationPolicy"] = request.query["propagationPolicy"]
        if opts.get("orphanDependents") is True:
            opts.setdefault("propagationPolicy", "Orphan")
        policy = opts.get("propagationPolicy")
        if policy not in (None, "Foreground", "Background", "Orphan"):
            raise errors.invalid("DeleteOptions", "", "", [errors.Cause(
                "propagationPolicy", f'Unsupported value: "{policy}": supported values: '
                '"Foreground", "Background", "Orphan", "nil"', "FieldValueNotSupported")])
        return opts

    def _filter(self, request: web.Request, res: Resource) -> Callable[[Obj], bool]:
        return selectors.object_filter(request.query.get("labelSelector"),
                                       request.query.get("fieldSelector"), res.kind)

    async def _list(self, request: web.Request, t: Target) -> web.Response:
        items, rev = await self.registry.list(t.res, t.namespace)
        accept = self._filter(request, t.res)
        items = [o for o in items if accept(o)]
        cont, start = request.query.get("continue"), 0
        if cont:
            try:
                start = int(json.loads(base64.b64decode(cont))["start"])
            except (ValueError, KeyError, TypeError):
                raise errors.bad_request("continue key is not valid") from None
        limit = int(request.query.get("limit") or 0)
        meta: Obj = {"resourceVersion": str(rev)}
        if limit and start + limit < len(items):
            meta["continue"] = base64.b64encode(
                json.dumps({"start": start + limit}).encode()).decode()
            meta["remainingItemCount"] = len(items) - start - limit
            items = items[start:start + limit]
        else:
            items = items[start:]
        if _wants_table(request):
            table = tables.to_table(t.res.kind, items, include_object=self._include(request),
                                    resource_version=str(rev))
            table["metadata"].update(meta)
            return _json(table)
        return _json({"kind": f"{t.res.kind}List", "apiVersion": t.res.api_version,
                      "metadata": meta, "items": items})

    async def _delete_collection(self, request: web.Request, t: Target) -> web.Response:
        opts = await self._delete_options(request)
        items, _ = await self.registry.list(t.res, t.namespace)
        accept = self._filter(request, t.res)
        deleted = []
        for obj in items:
            if not accept(obj):
                continue
            meta = obj["metadata"]
            try:
                deleted.append(await self.registry.delete(
                    t.res, meta.get("namespace"), meta["name"],
                    grace_period=opts.get("gracePeriodSeconds"),
                    propagation=opts.get("propagationPolicy")))
            except errors.ApiError as err:
                if err.code != 404:
                    raise
        return _json({"kind": f"{t.res.kind}List", "apiVersion": t.res.api_version,
                      "metadata": {}, "items": deleted})

    # -- watch ---------------------------------------------------------------------------

    async def _watch(self, request: web.Request, t: Target) -> web.StreamResponse:
        res, reg = t.res, self.registry
        store = reg.store
        accept = self._filter(request, res)
        rv = request.query.get("resourceVersion", "")
        send_initial = _flag(request, "sendInitialEvents")
        bookmarks = _flag(request, "allowWatchBookmarks")
        timeout = float(request.query.get("timeoutSeconds") or DEFAULT_WATCH_TIMEOUT)
        table = _wants_table(request)
        prefix = storage_resource(res).key_prefix(t.namespace)
        initial: list[Obj] = []
        if rv in ("", "0") or send_initial:
            initial, start = await reg.list(res, t.namespace)
            initial = [o for o in initial if accept(o)]
        else:
            try:
                start = int(rv)
            except ValueError:
                raise errors.bad_request(f'invalid resource version "{rv}"') from None
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)

        async def send(kind: str, obj: Obj) -> None:
            if table and kind != "BOOKMARK" and kind != "ERROR":
                obj = tables.to_table(res.kind, [obj], include_object=self._include(request))
            line = json.dumps({"type": kind, "object": obj}, separators=(",", ":"))
            await response.write(line.encode() + b"\n")

        try:
            watch = store.watch(prefix, start)
        except Compacted as exc:
            await send("ERROR", errors.gone(f"too old resource version: {exc.requested} "
                                            f"({exc.oldest})").status())
            return response
        try:
            for obj in initial:
                await send("ADDED", obj)
            if send_initial:
                await send("BOOKMARK", self._bookmark(res, start, initial_end=True))
            await self._follow(watch, res, accept, send, timeout, bookmarks)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            watch.close()
        return response

    def _bookmark(self, res: Resource, rev: int, initial_end: bool = False) -> Obj:
        meta: Obj = {"resourceVersion": str(rev)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"kind": res.kind, "apiVersion": res.api_version, "metadata": meta}

    async def _follow(self, watch: Any, res: Resource, accept: Callable[[Obj], bool],
                      send: Callable[[str, Obj], Awaitable[None]], timeout: float,
                      bookmarks: bool) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        events = aiter(watch)
        last_rev = self.registry.store.revision
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            wait = min(remaining, BOOKMARK_INTERVAL) if bookmarks else remaining
            try:
                event = await asyncio.wait_for(anext(events), wait)
            except StopAsyncIteration:
                return
            except TimeoutError:
                if bookmarks and loop.time() < deadline:
                    await send("BOOKMARK", self._bookmark(res, last_rev))
                continue
            last_rev = event.rev
            obj = self.registry.to_client(res, event.value)
            kind = event.type
            if not accept(obj):
                prev = event.prev and self.registry.to_client(res, event.prev)
                if kind != "MODIFIED" or not prev or not accept(prev):
                    continue
                kind = "DELETED"
            elif kind == "MODIFIED" and event.prev is not None and \
                    not accept(self.registry.to_client(res, event.prev)):
                kind = "ADDED"
            await send(kind, obj)

    # -- subresources --------------------------------------------------------------------

    async def _subresource(self, request: web.Request, t: Target) -> web.StreamResponse:
        res, sub, reg = t.res, t.subresource, self.registry
        assert t.name is not None
        if sub not in res.subresources:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested "
                                  "resource")
        dry_run = request.query.get("dryRun") == "All"
        if sub == "status":
            if request.method == "GET":
                return _json(await reg.get(res, t.namespace, t.name))
            if request.method == "PUT":
                return _json(await reg.update(res, t.namespace, t.name,
                                              await self._body(request), subresource="status",
                                              dry_run=dry_run))
            if request.method == "PATCH":
                obj, _ = await reg.patch(res, t.namespace, t.name, await request.read(),
                                         request.headers.get("Content-Type", ""),
                                         subresource="status", dry_run=dry_run)
                return _json(obj)
        if sub == "scale":
            return await self._scale(request, t)
        if sub == "binding" and request.method == "POST":
            return await self._bind(request, t)
        if sub in ("log", "exec", "portforward"):
            pod = await reg.get(res, t.namespace, t.name)
            if self.stream is None:
                raise errors.ApiError(503, "ServiceUnavailable", "no node agent serves pods")
            return await self.stream(request, pod, sub)
        raise errors.method_not_allowed(f"{request.method} is not supported on {sub}")

    async def _scale(self, request: web.Request, t: Target) -> web.Response:
        res, reg = t.res, self.registry
        assert t.name is not None
        obj = await reg.get(res, t.namespace, t.name)
        if request.method == "GET":
            return _json(_scale_of(obj))
        if request.method == "PUT":
            body = await self._body(request)
        elif request.method == "PATCH":
            body = apply_patch(_scale_of(obj), await request.read(),
                               request.headers.get("Content-Type", ""))
        else:
            raise errors.method_not_allowed(f"{request.method} is not supported on scale")
        replicas = (body.get("spec") or {}).get("replicas") if isinstance(body, dict) else None
        if not isinstance(replicas, int) or replicas < 0:
            raise errors.invalid("Scale", "autoscaling", t.name, [errors.Cause(
                "spec.replicas", f"Invalid value: {json.dumps(replicas)}: must be greater than "
                "or equal to 0")])
        rv = (body.get("metadata") or {}).get("resourceVersion")
        if rv and rv != obj["metadata"]["resourceVersion"]:
            raise errors.conflict(res.plural, res.group, t.name)
        obj["spec"]["replicas"] = replicas
        updated = await reg.update(res, t.namespace, t.name, obj,
                                   dry_run=request.query.get("dryRun") == "All")
        return _json(_scale_of(updated))

    async def _bind(self, request: web.Request, t: Target) -> web.Response:
        assert t.name is not None
        body = await self._body(request)
        node = ((body or {}).get("target") or {}).get("name")
        if not node:
            raise errors.invalid("Binding", "", t.name, [errors.Cause(
                "target.name", "Required value", "FieldValueRequired")])
        await self.registry.bind(t.res, t.namespace or "", t.name, node)
        return _json({"kind": "Status", "apiVersion": "v1", "metadata": {},
                      "status": "Success", "code": 201}, 201)


def _scale_of(obj: Obj) -> Obj:
    meta = obj["metadata"]
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                          "creationTimestamp") if k in meta},
        "spec": {"replicas": obj["spec"].get("replicas", 1)},
        "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                   "selector": selectors.format_label_selector(obj["spec"].get("selector"))},
    }
