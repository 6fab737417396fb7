"""nginx configurations rendered from routing models, and nginx's own check of them."""

import shutil
import subprocess
from pathlib import Path

import pytest

from kubesvc.ingress.model import CATCH_ALL, Configuration, Location, Route, Server, Upstream
from kubesvc.ingress.render import (
    DEFAULT_KEY_PAIR,
    Settings,
    key_pair_path,
    quote,
    render,
    server_name,
)
from kubesvc.ingress.tls import default_key_pair

WEB = Upstream("default-web-80", ("10.244.0.2:8080", "10.244.0.3:8080"))
EMPTY = Upstream("default-empty-80", ())


def config() -> Configuration:
    tls_routes = [
        Location("", "/", Route(WEB.name, "default/a")),
        Location("=", "/open", Route(WEB.name, "default/a", ssl_redirect=False)),
        Location("", "/empty/", Route(EMPTY.name, "default/a", proxy_body_size="8m")),
    ]
    regex_routes = [
        Location("~*", '^/app(/|$)(.*)"\\d', Route(WEB.name, "default/b", rewrite_target="/$2",
                                                  rewrite_path="/app(/|$)(.*)")),
        Location("~*", "^/grpc", Route(WEB.name, "default/b", protocol="GRPCS")),
        Location("~*", "^/", Route("")),
    ]
    return Configuration(
        servers=[Server(CATCH_ALL, [Location("", "/", Route(""))]),
                 Server("*.wild.example", regex_routes),
                 Server("secure.example", tls_routes, tls=True, key_pair="default_cert")],
        upstreams=[EMPTY, WEB], key_pairs={}, ingresses=[], problems=[])


def test_quoting_and_server_names() -> None:
    assert quote('a"b\\c') == '"a\\"b\\\\c"'
    assert server_name("a.example") == '"a.example"'
    # One label for the wildcard, as Kubernetes means it (nginx's *. would match several).
    assert server_name("*.b.example") == '"~^(?<subdomain>[\\\\w-]+)\\\\.b\\\\.example$"'


def test_rendered_configuration(tmp_path: Path) -> None:
    text = render(config(), Settings(workdir=tmp_path, https_port=8443))
    assert "    upstream default-web-80 {\n        server 10.244.0.2:8080;\n" \
           "        server 10.244.0.3:8080;\n        keepalive 320;" in text
    assert "upstream default-empty-80" not in text
    assert "listen 80 default_server backlog=4096 deferred;" in text
    assert "listen 8443 ssl http2 default_server backlog=4096 deferred;" in text
    secure = text[text.index("## server secure.example"):]
    assert f"ssl_certificate {tmp_path}/ssl/default_cert.pem;" in secure
    root = secure[secure.index('location "/" {'):]
    assert root.index("return 308 https://$host:8443$request_uri;") < root.index(
        "proxy_pass http://default-web-80;")
    open_location = secure[secure.index('location = "/open"'):secure.index('location "/empty/"')]
    assert "return 308" not in open_location
    empty = secure[secure.index('location "/empty/"'):]
    assert "client_max_body_size 8m;" in empty
    assert "return 503;" in empty[:empty.index("        }\n")]
    wild = text[text.index("## server *.wild.example"):text.index("## server secure.example")]
    assert "return 308" not in wild
    assert 'rewrite "(?i)/app(/|$)(.*)" "/$2" break;' in wild
    assert 'location ~* "^/app(/|$)(.*)\\"\\\\d" {' in wild
    assert "grpc_pass grpcs://default-web-80;" in wild
    catch_all = text[text.index("## server _"):text.index("## server *.wild.example")]
    assert "return 404;" in catch_all
    assert "access_log /dev/stdout upstreaminfo" in text
    assert "access_log off;" in render(config(), Settings(workdir=tmp_path, access_log=False))


def test_nginx_accepts_the_configuration(tmp_path: Path) -> None:
    nginx = shutil.which("nginx", path="/usr/sbin:/usr/bin:/sbin:/bin")
    assert nginx is not None, "nginx is not installed (scripts/install.sh installs it)"
    for sub in ("ssl", "temp"):
        (tmp_path / sub).mkdir()
    settings = Settings(workdir=tmp_path, http_port=18080, https_port=18443, healthz_port=18254)
    pem = default_key_pair().pem
    for name in (DEFAULT_KEY_PAIR, "default_cert"):
        key_pair_path(settings, name).write_bytes(pem)
    conf = tmp_path / "nginx.conf"
    conf.write_text(render(config(), settings))
    result = subprocess.run([nginx, "-t", "-p", f"{tmp_path}/", "-c", str(conf), "-e",
                             "stderr"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("size,expected", [(10, 64), (40, 128), (200, 256)])
def test_long_host_names_get_a_bigger_hash_bucket(tmp_path: Path, size: int,
                                                   expected: int) -> None:
    cfg = config()
    cfg.servers.append(Server("h" * size, [Location("", "/", Route(""))]))
    assert f"server_names_hash_bucket_size {expected};" in render(cfg, Settings(workdir=tmp_path))
