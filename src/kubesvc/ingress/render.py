"""The nginx configuration for a routing model: a pure function of the model and the settings.

The shape follows ingress-nginx's template where it matters to users: a catch-all default
server answering 404 with a self-signed certificate, one server per host listening on both
ports, locations per path, the same proxy headers and timeouts, retries on a failed
connection (`proxy_next_upstream error timeout`), the ingress-nginx access log format, and
/healthz on its own port. Where ingress-nginx balances in Lua, kubesvc lists each Service
port's pods in an upstream (round-robin, with keep-alive connections to them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kubesvc.ingress.model import CATCH_ALL, Configuration, Location, Server, Upstream

# Status answered when a Service has no ready endpoint, as ingress-nginx does.
NO_ENDPOINTS_STATUS = 503
DEFAULT_KEY_PAIR = "default-fake-certificate"
LOG_FORMAT = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" $request_length $request_time '
    "[$proxy_upstream_name] $upstream_addr $upstream_response_length "
    "$upstream_response_time $upstream_status $request_id"
)
PROXY_HEADERS = (
    ("Host", "$host"),
    ("X-Request-ID", "$request_id"),
    ("X-Real-IP", "$remote_addr"),
    ("X-Forwarded-For", "$remote_addr"),
    ("X-Forwarded-Host", "$host"),
    ("X-Forwarded-Port", "$server_port"),
    ("X-Forwarded-Proto", "$scheme"),
    ("X-Scheme", "$scheme"),
    ("Upgrade", "$http_upgrade"),
    ("Connection", "$connection_upgrade"),
)
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


@dataclass(frozen=True)
class Settings:
    # The controller's private directory: pid file, temp files and key pairs.
    workdir: Path
    http_port: int = 80
    https_port: int = 443
    healthz_port: int = 10254
    # Who nginx's workers run as ("" keeps the user that starts nginx).
    user: str = ""
    access_log: bool = True
    # The open-file limit nginx may raise its workers to (the hard RLIMIT_NOFILE).
    max_files: int = 4096


def key_pair_path(settings: Settings, name: str) -> Path:
    return settings.workdir / "ssl" / f"{name}.pem"


def quote(value: str) -> str:
    """An nginx string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def server_name(hostname: str) -> str:
    """ingress-nginx's buildServerName: `*.a.b` matches exactly one more label."""
    if not hostname.startswith("*."):
        return quote(hostname)
    rest = hostname[2:].replace(".", "\\.")
    return quote(f"~^(?<subdomain>[\\w-]+)\\.{rest}$")


def _bucket_size(config: Configuration) -> int:
    """server_names_hash_bucket_size large enough for the longest host name."""
    longest = max((len(s.hostname) for s in config.servers), default=0)
    size = 64
    while size < longest + 32:
        size *= 2
    return size


def _upstream(upstream: Upstream) -> list[str]:
    return [
        f"    upstream {upstream.name} {{",
        *(f"        server {endpoint};" for endpoint in upstream.endpoints),
        "        keepalive 320;",
        "        keepalive_timeout 60s;",
        "        keepalive_requests 10000;",
        "    }",
    ]


def _location(loc: Location, server: Server, settings: Settings,
              endpoints: dict[str, tuple[str, ...]]) -> list[str]:
    route = loc.route
    matcher = f"{loc.modifier} {quote(loc.path)}" if loc.modifier else quote(loc.path)
    name = route.upstream or "upstream-default-backend"
    lines = [f"        location {matcher} {{",
             f"            set $proxy_upstream_name {quote(name)};"]
    if server.tls and route.ssl_redirect:
        port = "" if settings.https_port == 443 else f":{settings.https_port}"
        lines.append(f"            if ($scheme = http) {{ return 308 https://$host{port}"
                     "$request_uri; }")
    if route.proxy_body_size:
        lines.append(f"            client_max_body_size {route.proxy_body_size};")
    if not route.upstream:
        lines.append("            return 404;")
    elif not endpoints[route.upstream]:
        lines.append(f"            return {NO_ENDPOINTS_STATUS};")
    else:
        if route.rewrite_target:
            lines.append(f"            rewrite {quote('(?i)' + route.rewrite_path)} "
                         f"{quote(route.rewrite_target)} break;")
        if route.protocol in ("GRPC", "GRPCS"):
            lines.append(f"            grpc_pass {route.protocol.lower()}://{route.upstream};")
        else:
            lines.append(f"            proxy_pass {route.protocol.lower()}://{route.upstream};")
    lines.append("        }")
    return lines


def _server(server: Server, settings: Settings,
            endpoints: dict[str, tuple[str, ...]]) -> list[str]:
    if server.hostname == CATCH_ALL:
        # Listen options belong to the first server of an address, once.
        options = " default_server backlog=4096 deferred"
        name = CATCH_ALL
    else:
        options = ""
        name = server_name(server.hostname)
    lines = [f"    ## server {server.hostname}", "    server {",
             f"        server_name {name};",
             f"        listen {settings.http_port}{options};",
             f"        listen {settings.https_port} ssl http2{options};"]
    if server.key_pair:
        path = key_pair_path(settings, server.key_pair)
        lines += [f"        ssl_certificate {path};", f"        ssl_certificate_key {path};"]
    for loc in server.locations:
        lines += _location(loc, server, settings, endpoints)
    lines.append("    }")
    return lines


def render(config: Configuration, settings: Settings) -> str:
    workdir = settings.workdir
    default_pair = key_pair_path(settings, DEFAULT_KEY_PAIR)
    endpoints = {u.name: u.endpoints for u in config.upstreams}
    access_log = "/dev/stdout upstreaminfo buffer=64k flush=1s" if settings.access_log else "off"
    lines = [
        "# Rendered by kubesvc's ingress controller from the cluster's Ingresses; do not edit.",
        "daemon off;",
        "master_process on;",
        *([f"user {settings.user};"] if settings.user else []),
        "worker_processes auto;",
        f"worker_rlimit_nofile {settings.max_files};",
        # Old workers finish their requests after a reload, for at most this long.
        "worker_shutdown_timeout 240s;",
        f"pid {workdir / 'nginx.pid'};",
        "error_log stderr notice;",
        "",
        "events {",
        # A proxied request holds two connections, a client's and a pod's.
        f"    worker_connections {min(16384, settings.max_files // 2)};",
        "    multi_accept on;",
        "}",
        "",
        "http {",
        "    default_type text/html;",
        f"    log_format upstreaminfo {quote(LOG_FORMAT)};",
        f"    access_log {access_log};",
        "    sendfile on;",
        "    tcp_nopush on;",
        "    tcp_nodelay on;",
        "    keepalive_timeout 75s;",
        "    keepalive_requests 1000;",
        "    reset_timedout_connection on;",
        "    server_tokens off;",
        f"    server_names_hash_bucket_size {_bucket_size(config)};",
        "    server_names_hash_max_size 4096;",
        "    client_max_body_size 1m;",
        *(f"    {kind}_temp_path {workdir / 'temp' / kind};" for kind in TEMP_PATHS),
        "",
        "    ssl_protocols TLSv1.2 TLSv1.3;",
        "    ssl_session_cache shared:SSL:10m;",
        "    ssl_session_timeout 10m;",
        f"    ssl_certificate {default_pair};",
        f"    ssl_certificate_key {default_pair};",
        "",
        "    proxy_http_version 1.1;",
        "    proxy_connect_timeout 5s;",
        "    proxy_send_timeout 60s;",
        "    proxy_read_timeout 60s;",
        "    proxy_buffering off;",
        "    proxy_redirect off;",
        "    proxy_next_upstream error timeout;",
        "    proxy_next_upstream_tries 3;",
        # Keep-alive to the pods needs an empty Connection header unless upgrading.
        "    map $http_upgrade $connection_upgrade {",
        "        default upgrade;",
        '        "" "";',
        "    }",
        *(f"    proxy_set_header {name} {value};" for name, value in PROXY_HEADERS),
        "",
    ]
    for upstream in config.upstreams:
        if upstream.endpoints:
            lines += _upstream(upstream)
    for server in config.servers:
        lines += _server(server, settings, endpoints)
    lines += [
        "    ## health checks",
        "    server {",
        f"        listen {settings.healthz_port};",
        "        access_log off;",
        "        location = /healthz { return 200; }",
        "        location / { return 404; }",
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"
