"""The ingress-nginx annotations kubesvc honours, read and checked per Ingress.

A value that cannot be used is reported (and the annotation's default used instead), as
ingress-nginx logs and skips an annotation it cannot parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

PREFIX = "nginx.ingress.kubernetes.io/"
BACKEND_PROTOCOLS = ("HTTP", "HTTPS", "GRPC", "GRPCS")
# nginx sizes: a number of bytes with an optional k or m (and g, as nginx accepts).
_SIZE = re.compile(r"^[0-9]+[kKmMgG]?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Go's strconv.ParseBool, which ingress-nginx uses.
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


@dataclass(frozen=True)
class Annotations:
    # Where the matched path is rewritten to (`$1`, `$2` name the path's capture groups).
    rewrite_target: str = ""
    # Paths are regular expressions; implied by rewrite-target, as in ingress-nginx.
    use_regex: bool = False
    # Plain HTTP requests to a host with TLS are redirected to HTTPS.
    ssl_redirect: bool = True
    backend_protocol: str = "HTTP"
    # client_max_body_size for this Ingress's paths; "" keeps the default (1m).
    proxy_body_size: str = ""


def _bool(value: str, name: str, default: bool, problems: list[str]) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    problems.append(f'annotation {PREFIX}{name}: "{value}" is not a boolean')
    return default


def parse(ingress: dict[str, Any]) -> tuple[Annotations, list[str]]:
    """The Ingress's annotations, and a message for each one that was ignored."""
    raw = ingress["metadata"].get("annotations") or {}
    values = {k[len(PREFIX):]: str(v) for k, v in raw.items() if k.startswith(PREFIX)}
    problems: list[str] = []
    target = values.get("rewrite-target", "")
    if _CONTROL.search(target):
        problems.append(f"annotation {PREFIX}rewrite-target: control characters are not "
                        "allowed")
        target = ""
    use_regex = _bool(values.get("use-regex", "false"), "use-regex", False, problems)
    ssl_redirect = _bool(values.get("ssl-redirect", "true"), "ssl-redirect", True, problems)
    protocol = values.get("backend-protocol", "HTTP").upper()
    if protocol not in BACKEND_PROTOCOLS:
        problems.append(f'annotation {PREFIX}backend-protocol: "{values["backend-protocol"]}" '
                        f"is not supported (supported: {', '.join(BACKEND_PROTOCOLS)})")
        protocol = "HTTP"
    size = values.get("proxy-body-size", "")
    if size and not _SIZE.match(size):
        problems.append(f'annotation {PREFIX}proxy-body-size: "{size}" is not a size such as '
                        "8m or 512k")
        size = ""
    return Annotations(rewrite_target=target, use_regex=use_regex or bool(target),
                       ssl_redirect=ssl_redirect, backend_protocol=protocol,
                       proxy_body_size=size), problems
