"""The image catalog and how a container's command and environment are derived."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubesvc.node.expansion import expand
from kubesvc.node.images import (
    CatalogError,
    ImageCatalog,
    ImageEntry,
    ImageError,
    container_command,
    normalize_reference,
)


@pytest.mark.parametrize(
    ("image", "entry"),
    [
        ("nginx", "nginx"),
        ("nginx:alpine", "nginx"),
        ("nginx:1.17.10", "nginx"),
        ("docker.io/library/nginx:alpine", "nginx"),
        ("library/nginx", "nginx"),
        ("nginx:alpine@sha256:" + "a" * 64, "nginx"),
        ("busybox", "busybox"),
        ("busybox:1.36", "busybox"),
        ("docker.io/busybox:latest", "busybox"),
        ("alpine:3.19", "alpine"),
        ("python:3.12-slim", "python"),
    ],
)
def test_shipped_catalog_resolves(image: str, entry: str) -> None:
    assert ImageCatalog.load().resolve(image).name == entry


def test_unknown_image_names_the_catalog(tmp_path: Path) -> None:
    with pytest.raises(ImageError) as err:
        ImageCatalog.load(tmp_path).resolve("redis:7")
    assert err.value.reason == "ErrImagePull"
    assert 'Failed to pull image "redis:7"' in err.value.message
    assert "nginx:*" in err.value.message
    assert str(tmp_path / "images.yaml") in err.value.message


def test_invalid_reference() -> None:
    with pytest.raises(ImageError) as err:
        ImageCatalog.load().resolve("Not An Image")
    assert err.value.reason == "InvalidImageName"


def test_user_catalog_extends_and_overrides(tmp_path: Path) -> None:
    (tmp_path / "images.yaml").write_text(
        "images:\n"
        "  - name: redis\n"
        "    patterns: ['redis', 'redis:*']\n"
        "    cmd: [sleep, '3600']\n"
        "  - name: busybox\n"
        "    patterns: ['busybox*']\n"
        "    cmd: [sleep, '1']\n"
    )
    catalog = ImageCatalog.load(tmp_path)
    assert catalog.resolve("redis:7").cmd == ("sleep", "3600")
    assert catalog.resolve("busybox:1.36").cmd == ("sleep", "1")
    assert [e.name for e in catalog.entries].count("busybox") == 1
    assert catalog.resolve("nginx:alpine").name == "nginx"


@pytest.mark.parametrize(
    "text",
    ["images: {}", "images:\n  - patterns: [x]\n", "images:\n  - name: x\n    colour: red\n", ":"],
)
def test_bad_user_catalog(tmp_path: Path, text: str) -> None:
    (tmp_path / "images.yaml").write_text(text)
    with pytest.raises(CatalogError, match=r"images\.yaml"):
        ImageCatalog.load(tmp_path)


def test_normalize_reference() -> None:
    assert normalize_reference("docker.io/library/nginx:alpine") == "nginx:alpine"
    assert normalize_reference("registry.k8s.io/pause:3.9") == "registry.k8s.io/pause:3.9"


IMAGE = ImageEntry("img", ("img",), entrypoint=("/entry",), cmd=("default", "cmd"))


@pytest.mark.parametrize(
    ("container", "argv"),
    [
        ({}, ["/entry", "default", "cmd"]),
        ({"args": ["a"]}, ["/entry", "a"]),
        ({"command": ["run"]}, ["run"]),
        ({"command": ["run"], "args": ["a", "b"]}, ["run", "a", "b"]),
    ],
)
def test_command_and_args_override_the_image(container: dict[str, object], argv: list[str]) -> None:
    assert container_command({"name": "c", **container}, IMAGE, [], []).argv == argv


def test_env_expansion_and_order() -> None:
    container = {
        "name": "c",
        "command": ["echo", "$(GREETING)", "$$(GREETING)", "$(MISSING)"],
        "env": [{"name": "GREETING", "value": "hello $(NAME)"}, {"name": "NAME", "value": "x"}],
        "workingDir": "/srv",
    }
    env = [("SVC_HOST", "10.96.0.5"), ("NAME", "world"), ("GREETING", "hello $(NAME)")]
    cmd = container_command(container, IMAGE, env, [("PATH", "/bin"), ("NAME", "base")])
    assert cmd.argv == ["echo", "hello world", "$(GREETING)", "$(MISSING)"]
    assert dict(cmd.env) == {
        "PATH": "/bin",
        "NAME": "world",
        "SVC_HOST": "10.96.0.5",
        "GREETING": "hello world",
    }
    assert cmd.cwd == "/srv"


def test_values_from_envfrom_are_not_expanded() -> None:
    cmd = container_command({"name": "c"}, IMAGE, [("A", "x"), ("B", "$(A)")], [])
    assert dict(cmd.env)["B"] == "$(A)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(A)", "1"),
        ("$(A)$(B)", "12"),
        ("$$(A)", "$(A)"),
        ("$$", "$"),
        ("$(A", "$(A"),
        ("a$", "a$"),
        ("$x", "$x"),
        ("$(NOPE)", "$(NOPE)"),
        ("$()", "$()"),
    ],
)
def test_expand(text: str, expected: str) -> None:
    assert expand(text, {"A": "1", "B": "2"}) == expected
