"""`python -m kubesvc.ingress`: the ingress controller, as ingress-nginx's container runs it.

Flags keep ingress-nginx's names. The API server's CA and a bearer token come from the
environment (KUBESVC_API_CA, KUBESVC_API_TOKEN: `kubesvc addons enable ingress` passes them
from a Secret); POD_NAME and POD_NAMESPACE (the downward API) find the node whose address
goes into the Ingresses' status.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import pwd
import resource
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from kubesvc.client.rest import Client
from kubesvc.ingress.controller import IngressController, Options
from kubesvc.ingress.nginx import Nginx, NginxError
from kubesvc.ingress.render import Settings

log = logging.getLogger("kubesvc.ingress")

# How long nginx gets to finish the requests in flight when the pod stops.
SHUTDOWN_GRACE = 10.0
# The user ingress-nginx's workers run as.
WORKER_USER = "www-data"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m kubesvc.ingress", description=__doc__)
    parser.add_argument("--apiserver-host", required=True,
                        help="The API server's URL, e.g. https://kubernetes.default.svc:6443.")
    parser.add_argument("--ingress-class", default="nginx",
                        help="The class name this controller serves (and the value of the "
                             "legacy kubernetes.io/ingress.class annotation it accepts).")
    parser.add_argument("--controller-class", default="k8s.io/ingress-nginx",
                        help="The IngressClass .spec.controller value this controller serves.")
    parser.add_argument("--http-port", type=int, default=80)
    parser.add_argument("--https-port", type=int, default=443)
    parser.add_argument("--healthz-port", type=int, default=10254)
    parser.add_argument("--publish-status-address", default="",
                        help="The address for the Ingresses' status (default: the node's).")
    parser.add_argument("--disable-access-log", action="store_true")
    return parser.parse_args(argv)


def _env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise SystemExit(f"kubesvc.ingress: environment variable {name} is not set")
    return value


def _worker_user() -> str:
    """ingress-nginx's unprivileged worker user when nginx starts as root and it exists."""
    if os.geteuid() != 0:
        return ""
    try:
        pwd.getpwnam(WORKER_USER)
    except KeyError:
        return ""
    return WORKER_USER


def _max_files() -> int:
    """The hard open-file limit, which nginx (root) may raise its workers to."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 1 << 20 if hard == resource.RLIM_INFINITY else hard


async def run(args: argparse.Namespace, workdir: Path) -> None:
    binary = shutil.which("nginx")
    if binary is None:
        raise SystemExit("kubesvc.ingress: nginx is not on PATH")
    ca = workdir / "ca.crt"
    ca.write_text(_env("KUBESVC_API_CA"))
    client = Client(args.apiserver_host, ca=ca, token=_env("KUBESVC_API_TOKEN"))
    settings = Settings(workdir=workdir, http_port=args.http_port, https_port=args.https_port,
                        healthz_port=args.healthz_port, user=_worker_user(),
                        access_log=not args.disable_access_log,
                        max_files=_max_files())
    options = Options(args.ingress_class, args.controller_class, settings,
                      args.publish_status_address, _env("POD_NAME"), _env("POD_NAMESPACE"))
    nginx = Nginx(binary, workdir)
    controller = IngressController(client, options, nginx)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # As PID 1 of its container, the controller gets no default action for these.
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    main = asyncio.ensure_future(controller.run())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({main, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if main.done():
            main.result()
    finally:
        for task in (main, stopping):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await main
        log.info("shutting down")
        await controller.shutdown()
        await nginx.stop(SHUTDOWN_GRACE)
        await client.close()


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    workdir = Path(tempfile.mkdtemp(prefix="ingress-nginx-"))
    try:
        # Workers (www-data) reach their temp directories; the key pairs stay root's.
        workdir.chmod(0o711)
        (workdir / "temp").mkdir(mode=0o711)
        (workdir / "ssl").mkdir(mode=0o700)
        asyncio.run(run(args, workdir))
    except NginxError as exc:
        log.error("%s", exc)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
