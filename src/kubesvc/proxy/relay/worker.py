"""A relay worker: one process per core, relaying the Service ports the control process gives.

Started as `python -m kubesvc.proxy.relay` by the pool (pool.py) with two inherited
descriptors: its end of a SOCK_SEQPACKET control socket and the shared counters. It joins the
node's network namespace first, so the backend connections it makes start there. Each control
message is JSON, with the listening sockets of new ports attached (SCM_RIGHTS):

    {"seq": n, "listen": [port ids, in the order of the attached sockets],
     "set": [PortConfig.to_json()...], "drop": [port ids]}

and is answered with {"ack": n} once applied. The worker exits when the control socket
closes: its parent is gone, or wants it gone.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import signal
import socket

from kubesvc.kernel.netns import CLONE_NEWNET, netns_path, setns
from kubesvc.proxy.relay.balancer import Balancer
from kubesvc.proxy.relay.loop import IN, EventLoop
from kubesvc.proxy.relay.shared import EVERY_WORKER, Counters, PortConfig
from kubesvc.proxy.relay.tcp import TcpPort
from kubesvc.proxy.relay.udp import UdpPort

log = logging.getLogger(__name__)

BUFFER_SIZE = 65536
MAX_MESSAGE = 1 << 20
MAX_FDS = 253  # SCM_MAX_FD
AFFINITY_SWEEP = 10.0  # seconds between sweeps of expired ClientIP affinities


class Worker:
    def __init__(self, index: int, control: socket.socket, counters: Counters) -> None:
        self.index = index
        self.control = control
        self.counters = counters
        self.loop = EventLoop()
        # Every socket read lands here and is sent on at once (or copied if it cannot be).
        self.buffer = bytearray(BUFFER_SIZE)
        self.view = memoryview(self.buffer)
        self.ports: dict[int, TcpPort | UdpPort] = {}
        control.setblocking(False)
        self.loop.add(control.fileno(), IN, self.on_control)
        self.loop.call_later(AFFINITY_SWEEP, self._sweep)

    def run(self) -> None:
        self.loop.run()

    def on_control(self, events: int) -> None:
        try:
            data, fds, _, _ = socket.recv_fds(self.control, MAX_MESSAGE, MAX_FDS)
        except BlockingIOError:
            return
        if not data:
            self.loop.running = False
            return
        message = json.loads(data)
        for port_id, fd in zip(message["listen"], fds, strict=True):
            sock = socket.socket(fileno=fd)
            sock.setblocking(False)
            self.ports[port_id] = (TcpPort(self, sock) if sock.type == socket.SOCK_STREAM
                                   else UdpPort(self, sock))
        for data in message["set"]:
            config = PortConfig.from_json(data)
            port = self.ports.get(config.id)
            if port is None:
                log.error("no listening socket for port %d; ignoring its configuration",
                          config.id)
                continue
            balancer = Balancer(config, self.counters, self.index, port.balancer)
            port.configure(balancer, config.owner in (EVERY_WORKER, self.index))
        for port_id in message["drop"]:
            dropped = self.ports.pop(port_id, None)
            if dropped is not None:
                dropped.close()
        self.control.send(json.dumps({"ack": message["seq"]}).encode())

    def _sweep(self) -> None:
        for port in self.ports.values():
            if port.balancer is not None and port.balancer.affinity:
                port.balancer.expire()
        self.loop.call_later(AFFINITY_SWEEP, self._sweep)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m kubesvc.proxy.relay")
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--counters-fd", type=int, required=True)
    parser.add_argument("--netns", help="the node's network namespace (default: this one)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING,
                        format=f"%(asctime)s %(levelname)s relay[{args.index}]: %(message)s")
    # Ctrl-C reaches the whole process group; the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if args.netns:
        setns(netns_path(args.netns), CLONE_NEWNET)
    # Two descriptors per relayed connection: take every one the hard limit allows.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    control = socket.socket(fileno=args.control_fd)
    Worker(args.index, control, Counters(args.counters_fd, args.workers)).run()
