"""Object lifecycle: what create, update, patch and delete do to an object before it is stored.

Requests arrive in the version the client used; objects are stored in their storage version
(Ingress as networking.k8s.io/v1) and converted back on the way out.
"""

from __future__ import annotations

import copy
import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from kubesvc.api import conversion, errors, schema
from kubesvc.api.defaults import apply_defaults, carry_over
from kubesvc.api.patch import apply_patch
from kubesvc.api.resources import Resource, storage_resource
from kubesvc.api.validation import validate
from kubesvc.storage import KeyExists, KeyNotFound, RevisionConflict, Store

Obj = dict[str, Any]

# generateName suffixes use Kubernetes' alphabet: no vowels, no look-alike characters.
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

# Kinds whose status is written only through the /status subresource, and reset on create.
STATUS_RESET_ON_CREATE = {"Pod", "Service", "Deployment", "ReplicaSet", "Ingress"}

class Pending(Protocol):
    """What a hook reserved for a write (addresses, ports): kept or given back after it."""

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


# A hook sees (resource, new, old) before a write and may change new or raise an ApiError.
Hook = Callable[[Resource, Obj, Obj | None], Awaitable[Pending | None]]
DeleteHook = Callable[[Resource, Obj], Awaitable[None]]


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Reservations(list[Pending]):
    def commit(self) -> None:
        for reserved in self:
            reserved.commit()

    def rollback(self) -> None:
        for reserved in reversed(self):
            reserved.rollback()


def _finished_deleting(obj: Obj) -> bool:
    """A deleted object goes once nothing holds it: finalizers, a pod still stopping, or a
    namespace whose content is still being removed."""
    meta = obj["metadata"]
    if not meta.get("deletionTimestamp") or meta.get("finalizers"):
        return False
    if obj["kind"] == "Pod" and meta.get("deletionGracePeriodSeconds"):
        return False
    return not (obj["kind"] == "Namespace" and (obj.get("spec") or {}).get("finalizers"))


def _prepare_create(obj: Obj) -> None:
    """What Kubernetes' create strategies set that the client cannot."""
    if obj["kind"] == "Pod":
        obj["status"] = {"phase": "Pending", "qosClass": _qos_class(obj.get("spec") or {})}
    elif obj["kind"] == "Namespace":
        obj["status"] = {"phase": "Active"}
        obj.setdefault("spec", {})["finalizers"] = ["kubernetes"]


def _qos_class(spec: Obj) -> str:
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    guaranteed = all(
        (r.get("limits") or {}).get(k) and
        (r.get("requests") or {}).get(k, (r.get("limits") or {}).get(k)) == r["limits"][k]
        for r in resources for k in ("cpu", "memory"))
    return "Guaranteed" if guaranteed else "Burstable"


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    return meta


class Registry:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.before_write: list[Hook] = []
        self.after_delete: list[DeleteHook] = []

    # -- reading -------------------------------------------------------------------------

    def to_client(self, res: Resource, obj: Obj) -> Obj:
        """The stored object as the requested version shows it."""
        if res.storage_version:
            return conversion.to_version(obj, res.api_version)
        return obj

    async def get(self, res: Resource, namespace: str | None, name: str) -> Obj:
        stored = await self.store.get(storage_resource(res).key(namespace, name))
        if stored is None:
            raise errors.not_found(res.plural, res.group, name)
        return self.to_client(res, stored)

    async def list(self, res: Resource, namespace: str | None) -> tuple[list[Obj], int]:
        items, rev = await self.store.list(storage_resource(res).key_prefix(namespace))
        return [self.to_client(res, o) for o in items], rev

    # -- writing -------------------------------------------------------------------------

    def _check_body(self, res: Resource, obj: Any, strict: bool) -> Obj:
        if not isinstance(obj, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if kind and kind != res.kind:
            raise errors.bad_request(
                f"the kind of the object ({kind}) does not match the resource ({res.kind})")
        if api_version and api_version != res.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({res.api_version})")
        obj["kind"], obj["apiVersion"] = res.kind, res.api_version
        if strict:
            unknown = schema.unknown_fields(obj)
            if unknown:
                fields = ", ".join(f'unknown field "{f}"' for f in unknown)
                raise errors.bad_request(f"strict decoding error: {fields}")
        return obj

    def _stored(self, res: Resource, obj: Obj) -> tuple[Resource, Obj]:
        stored_res = storage_resource(res)
        if stored_res is not res:
            obj = conversion.to_version(obj, stored_res.api_version)
        return stored_res, obj

    def _validate(self, res: Resource, obj: Obj, old: Obj | None) -> None:
        causes = validate(obj, old)
        if causes:
            raise errors.invalid(res.kind, res.group, _meta(obj).get("name", ""), causes)

    async def _run_hooks(self, res: Resource, obj: Obj, old: Obj | None) -> _Reservations:
        pending = _Reservations()
        try:
            for hook in self.before_write:
                reserved = await hook(res, obj, old)
                if reserved is not None:
                    pending.append(reserved)
        except BaseException:
            pending.rollback()
            raise
        return pending

    async def create(self, res: Resource, namespace: str | None, body: Any, *,
                     strict: bool = False, dry_run: bool = False) -> Obj:
        obj = self._check_body(res, body, strict)
        meta = _meta(obj)
        if res.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request")
            meta["namespace"] = namespace
            await self._check_namespace(namespace or "")
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(
                secrets.choice(NAME_ALPHABET) for _ in range(5))
        for key in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                    "managedFields", "selfLink"):
            meta.pop(key, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        stored_res, obj = self._stored(res, obj)
        if "spec" in obj:
            _meta(obj)["generation"] = 1
        if obj["kind"] in STATUS_RESET_ON_CREATE:
            obj.pop("status", None)
        _prepare_create(obj)
        apply_defaults(obj)
        self._validate(res, obj, None)
        pending = await self._run_hooks(stored_res, obj, None)
        if dry_run:
            pending.rollback()
            return self.to_client(res, obj)
        try:
            created = await self.store.create(stored_res.key(namespace, _meta(obj)["name"]), obj)
        except KeyExists:
            pending.rollback()
            raise errors.already_exists(res.plural, res.group, _meta(obj)["name"]) from None
        pending.commit()
        return self.to_client(res, created)

    async def _check_namespace(self, namespace: str) -> None:
        ns = await self.store.get(f"/registry/core/namespaces/{namespace}")
        if ns is None:
            raise errors.not_found("namespaces", "", namespace)
        if (ns.get("status") or {}).get("phase") == "Terminating":
            raise errors.ApiError(
                403, "Forbidden",
                f"unable to create new content in namespace {namespace} because it is being "
                "terminated")

    async def update(self, res: Resource, namespace: str | None, name: str, body: Any, *,
                     subresource: str = "", strict: bool = False, dry_run: bool = False,
                     old: Obj | None = None) -> Obj:
        """Replace an object (PUT), or its status with subresource="status"."""
        obj = self._check_body(res, body, strict)
        stored_res = storage_resource(res)
        key = stored_res.key(namespace, name)
        if old is None:
            old = await self.store.get(key)
            if old is None:
                raise errors.not_found(res.plural, res.group, name)
        meta = _meta(obj)
        if meta.get("name", name) != name:
            raise errors.bad_request("the name of the object does not match the name on the URL")
        rv = meta.get("resourceVersion")
        if rv and rv != _meta(old)["resourceVersion"]:
            raise errors.conflict(res.plural, res.group, name)
        _, obj = self._stored(res, obj)
        new = self._merge_update(res, obj, old, subresource)
        return await self._write_update(res, key, new, old, dry_run)

    def _merge_update(self, res: Resource, obj: Obj, old: Obj, subresource: str) -> Obj:
        if subresource == "status":
            new = copy.deepcopy(old)
            new["status"] = obj.get("status", {})
            # Status writers may also set labels and annotations? Kubernetes drops them.
            return new
        new = obj
        meta, old_meta = _meta(new), old["metadata"]
        for key in ("uid", "creationTimestamp", "namespace", "name", "generation",
                    "deletionTimestamp", "deletionGracePeriodSeconds"):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        if "status" in res.subresources or res.kind in STATUS_RESET_ON_CREATE:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        carry_over(new, old)
        apply_defaults(new)
        if new.get("spec") != old.get("spec") and "generation" in meta:
            meta["generation"] = int(meta["generation"]) + 1
        return new

    async def _write_update(self, res: Resource, key: str, new: Obj, old: Obj,
                            dry_run: bool) -> Obj:
        name = old["metadata"]["name"]
        self._validate(res, new, old)
        stored_res = storage_resource(res)
        pending = await self._run_hooks(stored_res, new, old)
        if dry_run:
            pending.rollback()
            return self.to_client(res, new)
        if _finished_deleting(new):
            pending.rollback()
            return await self._remove(res, key, old)
        try:
            written = await self.store.update(key, new, int(old["metadata"]["resourceVersion"]))
        except (RevisionConflict, KeyNotFound):
            pending.rollback()
            raise errors.conflict(res.plural, res.group, name) from None
        pending.commit()
        return self.to_client(res, written)

    async def patch(self, res: Resource, namespace: str | None, name: str, body: bytes,
                    content_type: str, *, subresource: str = "", strict: bool = False,
                    dry_run: bool = False) -> tuple[Obj, bool]:
        """Apply a patch; returns the object and whether it was created (server-side apply)."""
        key = storage_resource(res).key(namespace, name)
        for _attempt in range(5):
            stored = await self.store.get(key)
            if stored is None:
                if content_type.startswith("application/apply-patch"):
                    applied = apply_patch({}, body, content_type)
                    _meta(applied).setdefault("name", name)
                    return await self.create(res, namespace, applied, strict=strict,
                                             dry_run=dry_run), True
                raise errors.not_found(res.plural, res.group, name)
            current = self.to_client(res, stored)
            patched = apply_patch(current, body, content_type)
            rv = _meta(patched).get("resourceVersion")
            if rv and rv != stored["metadata"]["resourceVersion"]:
                raise errors.conflict(res.plural, res.group, name)
            _meta(patched)["resourceVersion"] = stored["metadata"]["resourceVersion"]
            try:
                return await self.update(res, namespace, name, patched, subresource=subresource,
                                         strict=strict, dry_run=dry_run, old=stored), False
            except errors.ApiError as err:
                # A patch is not a precondition: retry on a concurrent write, as Kubernetes does.
                if err.reason != "Conflict" or rv:
                    raise
        raise errors.conflict(res.plural, res.group, name)

    async def bind(self, res: Resource, namespace: str, name: str, node: str) -> None:
        """Assign a pod to a node: the one change to a pod's spec after creation."""
        key = res.key(namespace, name)
        old = await self.store.get(key)
        if old is None:
            raise errors.not_found(res.plural, res.group, name)
        if old["spec"].get("nodeName"):
            raise errors.ApiError(
                409, "Conflict", f'Operation cannot be fulfilled on pods/binding "{name}": pod '
                f'{name} is already assigned to node "{old["spec"]["nodeName"]}"')
        new = copy.deepcopy(old)
        new["spec"]["nodeName"] = node
        try:
            await self.store.update(key, new, int(old["metadata"]["resourceVersion"]))
        except (RevisionConflict, KeyNotFound):
            raise errors.conflict(res.plural, res.group, name) from None

    # -- deleting ------------------------------------------------------------------------

    async def delete(self, res: Resource, namespace: str | None, name: str, *,
                     grace_period: int | None = None, propagation: str | None = None,
                     preconditions: Obj | None = None, dry_run: bool = False) -> Obj:
        stored_res = storage_resource(res)
        key = stored_res.key(namespace, name)
        old = await self.store.get(key)
        if old is None:
            raise errors.not_found(res.plural, res.group, name)
        pre = preconditions or {}
        meta = old["metadata"]
        if pre.get("uid") and pre["uid"] != meta["uid"]:
            raise errors.conflict(res.plural, res.group, name)
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
            raise errors.conflict(res.plural, res.group, name)
        if dry_run:
            return self.to_client(res, old)
        new = copy.deepcopy(old)
        nmeta = new["metadata"]
        finalizers = list(nmeta.get("finalizers") or [])
        if propagation == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        elif propagation == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        grace = self._grace(old, grace_period)
        if old["kind"] == "Namespace":
            return await self._terminate_namespace(res, key, new)
        if not finalizers and not grace:
            return await self._remove(res, key, old)
        changed = finalizers != list(nmeta.get("finalizers") or [])
        if finalizers:
            nmeta["finalizers"] = finalizers
        if not nmeta.get("deletionTimestamp"):
            when = datetime.now(UTC) + timedelta(seconds=grace)
            nmeta["deletionTimestamp"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
            changed = True
        if grace and nmeta.get("deletionGracePeriodSeconds", grace + 1) > grace:
            nmeta["deletionGracePeriodSeconds"] = grace
            changed = True
        if not changed:
            return self.to_client(res, old)
        written = await self.store.update(key, new, int(meta["resourceVersion"]))
        return self.to_client(res, written)

    @staticmethod
    def _grace(obj: Obj, requested: int | None) -> int:
        """Pods on a node get a graceful deletion; everything else goes at once."""
        if obj["kind"] != "Pod" or not (obj.get("spec") or {}).get("nodeName"):
            return 0
        if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return 0
        if requested is not None:
            return max(requested, 0)
        default = (obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        return int(default)

    async def _terminate_namespace(self, res: Resource, key: str, new: Obj) -> Obj:
        if (new.get("status") or {}).get("phase") == "Terminating":
            return self.to_client(res, new)
        if new["metadata"]["name"] in ("default", "kube-system", "kube-public",
                                       "kube-node-lease"):
            raise errors.ApiError(403, "Forbidden",
                                  f'namespaces "{new["metadata"]["name"]}" is forbidden: this '
                                  "namespace may not be deleted")
        new["metadata"]["deletionTimestamp"] = now()
        new.setdefault("status", {})["phase"] = "Terminating"
        written = await self.store.update(key, new, int(new["metadata"]["resourceVersion"]))
        return self.to_client(res, written)

    async def _remove(self, res: Resource, key: str, old: Obj) -> Obj:
        try:
            gone = await self.store.delete(key)
        except KeyNotFound:
            raise errors.not_found(res.plural, res.group, old["metadata"]["name"]) from None
        for hook in self.after_delete:
            await hook(storage_resource(res), gone)
        return self.to_client(res, gone)
