"""The image catalog: which host program runs a container image, and the container's command.

The catalog ships with kubesvc (data/images.yaml) and can be extended or overridden by
`<state-dir>/images.yaml`; see the shipped file for the layout.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from kubesvc.kernel.container import HOST_PATH
from kubesvc.node.expansion import expand

# A reference as the image parser accepts it: [registry/]path[:tag][@digest], lower-case path.
_REFERENCE = re.compile(r"^[a-z0-9][a-z0-9._/:-]*(@sha256:[0-9a-f]{64})?$")
_DEFAULT_PREFIXES = ("docker.io/library/", "index.docker.io/library/", "docker.io/", "library/")


class CatalogError(Exception):
    """The catalog file is not valid; the message names the file and the entry."""


class ImageError(Exception):
    """An image kubesvc cannot run, reported as the container's waiting reason."""

    def __init__(self, image: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.image = image
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class ImageEntry:
    name: str
    patterns: tuple[str, ...]
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    working_dir: str = "/"
    env: tuple[tuple[str, str], ...] = ()
    links: dict[str, str] = field(default_factory=dict)
    nginx: bool = False

    @property
    def image_id(self) -> str:
        return f"kubesvc://{self.name}"


def normalize_reference(image: str) -> str:
    """`docker.io/library/nginx:alpine@sha256:…` -> `nginx:alpine`."""
    ref = image.split("@", 1)[0]
    for prefix in _DEFAULT_PREFIXES:
        if ref.startswith(prefix):
            ref = ref[len(prefix) :]
            break
    return ref


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CatalogError(f"{where}: expected a list of strings")
    return tuple(value)


def _str_map(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str | int | float) for k, v in value.items()
    ):
        raise CatalogError(f"{where}: expected a mapping of names to strings")
    return {k: str(v) for k, v in value.items()}


def _parse_entry(raw: Any, where: str) -> ImageEntry:
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: expected a mapping")
    unknown = set(raw) - {
        "name", "patterns", "entrypoint", "cmd", "workingDir", "env", "links", "nginx"
    }  # fmt: skip
    if unknown:
        raise CatalogError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise CatalogError(f"{where}: `name` is required")
    where = f"{where} ({name})"
    return ImageEntry(
        name=name,
        patterns=_str_list(raw.get("patterns", [name]), f"{where}.patterns"),
        entrypoint=_str_list(raw.get("entrypoint", []), f"{where}.entrypoint"),
        cmd=_str_list(raw.get("cmd", []), f"{where}.cmd"),
        working_dir=str(raw.get("workingDir", "/")),
        env=tuple(_str_map(raw.get("env", {}), f"{where}.env").items()),
        links=_str_map(raw.get("links", {}), f"{where}.links"),
        nginx=bool(raw.get("nginx", False)),
    )


def _parse_catalog(text: str, source: str) -> list[ImageEntry]:
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise CatalogError(f"{source}: not valid YAML: {exc}") from exc
    images = doc.get("images", []) if isinstance(doc, dict) else None
    if not isinstance(images, list):
        raise CatalogError(f"{source}: expected a mapping with a list `images`")
    return [_parse_entry(raw, f"{source}: images[{i}]") for i, raw in enumerate(images)]


class ImageCatalog:
    def __init__(self, entries: list[ImageEntry], user_file: Path | None = None) -> None:
        self.entries = entries
        self.user_file = user_file

    @classmethod
    def load(cls, state_dir: Path | None = None) -> ImageCatalog:
        """The shipped catalog, with `<state_dir>/images.yaml` (if present) taking precedence."""
        shipped = resources.files("kubesvc.node").joinpath("data/images.yaml").read_text()
        entries = _parse_catalog(shipped, "images.yaml (shipped)")
        user_file = state_dir / "images.yaml" if state_dir is not None else None
        if user_file is not None and user_file.is_file():
            user = _parse_catalog(user_file.read_text(), str(user_file))
            names = {e.name for e in user}
            entries = user + [e for e in entries if e.name not in names]
        return cls(entries, user_file)

    def resolve(self, image: str) -> ImageEntry:
        """The entry that runs `image`, or ImageError with the waiting reason to report."""
        if not image or not _REFERENCE.match(image):
            raise ImageError(
                image,
                "InvalidImageName",
                f'Failed to apply default image tag "{image}": couldn\'t parse image '
                f'reference "{image}": invalid reference format',
            )
        ref = normalize_reference(image)
        for entry in self.entries:
            if any(fnmatch.fnmatchcase(ref, pattern) for pattern in entry.patterns):
                needed = [*entry.links.values(), *(["nginx"] if entry.nginx else [])]
                missing = [name for name in needed if host_program(name) is None]
                if missing:
                    raise ImageError(
                        image,
                        "ErrImagePull",
                        f'Failed to pull image "{image}": catalog entry {entry.name!r} runs '
                        f"{', '.join(missing)}, which this host does not have",
                    )
                return entry
        known = ", ".join(p for e in self.entries for p in e.patterns)
        where = self.user_file or "<state-dir>/images.yaml"
        raise ImageError(
            image,
            "ErrImagePull",
            f'Failed to pull image "{image}": kubesvc runs images from its catalog and none '
            f"matches; known images: {known}. Add an entry to {where} to run another image",
        )


def host_program(name: str) -> str | None:
    """A `links` target: a path as is, a name looked up on the host's standard PATH (not the
    agent's own, which may lead into a virtualenv)."""
    if "/" in name:
        return name if Path(name).exists() else None
    return shutil.which(name, path=HOST_PATH)


@dataclass(frozen=True)
class Command:
    argv: list[str]
    env: list[tuple[str, str]]
    cwd: str


def container_command(
    container: dict[str, Any],
    entry: ImageEntry,
    env: list[tuple[str, str]],
    base_env: list[tuple[str, str]],
) -> Command:
    """What to run for `container`, as Kubernetes derives it.

    `env` is the container's environment as the agent resolved it, in Kubernetes' order
    (service links, envFrom, env); `$(VAR)` in the values of literal `env[].value` entries is
    expanded against the variables before them, and command/args against the whole list.
    The final environment is `base_env` (PATH, HOSTNAME, HOME), the image's ENV, then `env`.
    """
    literal = {
        (e["name"], e["value"])
        for e in container.get("env") or []
        if isinstance(e.get("value"), str)
    }
    defined: dict[str, str] = {}
    for name, value in env:
        defined[name] = expand(value, defined) if (name, value) in literal else value
    command = [expand(a, defined) for a in container.get("command") or []]
    args = [expand(a, defined) for a in container.get("args") or []]
    if command:
        argv = command + args
    elif args:
        argv = [*entry.entrypoint, *args]
    else:
        argv = [*entry.entrypoint, *entry.cmd]
    final = dict(base_env)
    final.update(entry.env)
    final.update(defined)
    return Command(argv, list(final.items()), container.get("workingDir") or entry.working_dir)
