"""A throwaway QEMU VM with Debian's stock kernel, for tests of kernel features this machine's
kernel lacks (IPVS: no CONFIG_IP_VS here).

- The kernel is the package `linux-image-amd64` depends on, fetched with `apt-get download`
  and unpacked, never installed. Its modules for netfilter (IPVS, nftables, conntrack),
  bridges, veth, dummy, 9p and overlayfs, with everything they depend on, go into a small
  initramfs built here (a newc cpio written by Python) with busybox-static, whose depmod
  writes modules.dep and whose modprobe the kernel then calls to load modules on demand.
  Kernel and initramfs are cached (CACHE) per kernel version, the initramfs under a digest of
  what it is built from (/init and this module), so checkouts with different ones that share
  the cache never boot each other's.
- The guest mounts the host's root read-only over 9p with a tmpfs overlay on top and runs a
  job there as root, in a chroot: the project, its virtualenv, ip, nft and Python all work
  unchanged, and nothing the job writes reaches the host except through a shared directory
  (mounted at /vmshare) that also carries job.sh in and job.log and rc out. The overlay is
  laid over the initramfs's root, so a process that enters a mount namespace (nsenter, as
  `kubectl exec` does) finds the host's view there too.
- The VM has no network device at all (-nic none): its traffic cannot leave it. There is no
  KVM for a stock kernel here, so QEMU emulates (TCG); Python in the guest is ~20x slower.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import shlex
import shutil
import stat
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("KUBESVC_VM_CACHE", "/var/cache/kubesvc/vm"))
INIT = Path(__file__).with_name("init.sh")
# Module trees to offer (each module also brings what it depends on).
MODULE_DIRS = ("net/netfilter", "net/ipv4/netfilter", "net/ipv6/netfilter", "net/bridge",
               "net/9p", "fs/9p", "fs/overlayfs", "drivers/virtio")
MODULES = ("veth", "dummy", "crc32c_generic")
# Loaded by /init in this order: crc32c_generic, which libcrc32c (nf_conntrack's dependency)
# wants first but busybox modprobe does not know; what mounting the host needs; br_netfilter,
# whose sysctls a node sets (the rest loads on demand: the chroot has no modprobe to call).
BOOT_MODULES = ("crc32c_generic", "virtio_pci", "9pnet_virtio", "9p", "overlay", "br_netfilter")
TOOLS = ("qemu-system-x86_64", "apt-get", "apt-cache", "dpkg-deb")
BUSYBOX = Path("/bin/busybox")
STALE_AFTER = 24 * 3600.0  # seconds after its last use that an initramfs is removed


class VMError(Exception):
    pass


@dataclass(frozen=True)
class Image:
    version: str
    kernel: Path
    initrd: Path


@dataclass(frozen=True)
class Result:
    rc: int
    console: str
    log: str


def missing_tools() -> list[str]:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if not BUSYBOX.exists() or subprocess.run(["ldd", str(BUSYBOX)], capture_output=True
                                              ).returncode == 0:
        missing.append("busybox-static")
    return missing


def _run(*argv: str, cwd: Path | None = None) -> str:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise VMError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
    return result.stdout


def kernel_package() -> str:
    """linux-image-<version>: what the linux-image-amd64 metapackage currently depends on."""
    for line in _run("apt-cache", "depends", "linux-image-amd64").splitlines():
        name = line.strip().removeprefix("Depends: ")
        if name.startswith("linux-image-") and name[len("linux-image-")].isdigit():
            return name
    raise VMError("no kernel package found for linux-image-amd64 (run apt-get update)")


def modinfo(path: Path) -> dict[str, str]:
    """The .modinfo section of a kernel module (an ELF64 relocatable), as key=value pairs."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise VMError(f"{path}: not an ELF64 kernel module")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    entsize, count, names_index = struct.unpack_from("<HHH", data, 0x3A)

    def section(i: int) -> tuple[int, int, int]:
        name, _, _, _, offset, size = struct.unpack_from("<IIQQQQ", data, shoff + i * entsize)
        return name, offset, size

    names_offset = section(names_index)[1]
    for i in range(count):
        name, offset, size = section(i)
        end = data.index(b"\0", names_offset + name)
        if data[names_offset + name:end] == b".modinfo":
            info: dict[str, str] = {}
            for item in data[offset:offset + size].split(b"\0"):
                key, sep, value = item.decode(errors="replace").partition("=")
                if sep:
                    info.setdefault(key, value)
            return info
    return {}


def _modules(tree: Path) -> tuple[list[Path], list[str]]:
    """Every module to ship (the chosen ones and their dependencies), and the boot ones."""
    index = {p.name.removesuffix(".ko").replace("-", "_"): p for p in tree.rglob("*.ko")}
    wanted = [name for name, path in index.items()
              if any(str(path.relative_to(tree)).startswith(d + "/") for d in MODULE_DIRS)]
    wanted += [*MODULES, *BOOT_MODULES]
    chosen: set[str] = set()
    while wanted:
        name = wanted.pop().replace("-", "_")
        if name in chosen:
            continue
        if name not in index:
            raise VMError(f"kernel module {name} not found (built in?)")
        chosen.add(name)
        wanted += [d for d in modinfo(index[name]).get("depends", "").split(",") if d]
    return sorted(index[name] for name in chosen), list(BOOT_MODULES)


class Cpio:
    """A 'newc' archive, the format the kernel unpacks an initramfs from."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.inode = 0

    def add(self, name: str, mode: int, content: bytes = b"") -> None:
        self.inode += 1
        fields = (self.inode, mode, 0, 0, 1, 0, len(content), 0, 0, 0, 0, len(name) + 1, 0)
        self.data += b"070701" + "".join(f"{v:08X}" for v in fields).encode()
        self.data += name.encode() + b"\0"
        self.data += b"\0" * (-len(self.data) % 4) + content
        self.data += b"\0" * (-len(self.data) % 4)

    def directories(self, path: str, made: set[str]) -> None:
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent not in made:
                made.add(parent)
                self.add(parent, stat.S_IFDIR | 0o755)

    def finish(self) -> bytes:
        self.add("TRAILER!!!", 0)
        return bytes(self.data)


def build_initramfs(tree: Path, version: str, out: Path) -> None:
    """/init, busybox and the modules from an unpacked kernel package at `tree`."""
    modules_root = tree / "lib/modules" / version
    modules, boot = _modules(modules_root / "kernel")
    with tempfile.TemporaryDirectory(prefix="kubesvc-vm-") as stage:
        staged = Path(stage) / "lib/modules" / version
        for module in modules:
            target = staged / module.relative_to(modules_root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(module, target)
        _run(str(BUSYBOX), "depmod", "-b", stage, version)
        cpio = Cpio()
        made: set[str] = set()
        for d in ("bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "sys", "run", "tmp",
                  "host", "share", "upper", "root"):
            cpio.directories(f"{d}/x", made)
        cpio.add("bin/busybox", stat.S_IFREG | 0o755, BUSYBOX.read_bytes())
        cpio.add("bin/sh", stat.S_IFLNK | 0o777, b"busybox")
        cpio.add("init", stat.S_IFREG | 0o755, INIT.read_bytes())
        cpio.add("boot-modules", stat.S_IFREG | 0o644, "\n".join(boot).encode() + b"\n")
        for path in sorted(Path(stage).rglob("*")):
            if path.is_file():
                name = str(path.relative_to(stage))
                cpio.directories(name, made)
                cpio.add(name, stat.S_IFREG | 0o644, path.read_bytes())
        out.write_bytes(gzip.compress(cpio.finish(), compresslevel=1))


def _build_digest() -> str:
    """What the initramfs is made from besides the kernel: /init and this module."""
    return hashlib.sha256(INIT.read_bytes() + Path(__file__).read_bytes()).hexdigest()[:16]


def ensure_image(cache: Path = CACHE) -> Image:
    """The kernel and initramfs, built once per kernel version and build digest into `cache`.

    Files appear whole (written aside, then renamed), as another test run may boot from the
    same cache at the same time; an initramfs that no run has used for a day goes.
    """
    missing = missing_tools()
    if missing:
        raise VMError(f"missing: {', '.join(missing)} (apt-get install qemu-system-x86 "
                      "busybox-static)")
    package = kernel_package()
    version = package.removeprefix("linux-image-")
    home = cache / version
    image = Image(version, home / "vmlinuz", home / f"initramfs-{_build_digest()}.gz")
    if image.kernel.exists() and image.initrd.exists():
        os.utime(image.initrd)  # in use, so not stale
        return image
    home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kubesvc-vm-", dir=cache) as work:
        _run("apt-get", "download", "-q", package, cwd=Path(work))
        (deb,) = Path(work).glob("*.deb")
        tree = Path(work) / "tree"
        _run("dpkg-deb", "-x", str(deb), str(tree))
        build_initramfs(tree, version, Path(work) / image.initrd.name)
        os.replace(tree / "boot" / f"vmlinuz-{version}", image.kernel)
        os.replace(Path(work) / image.initrd.name, image.initrd)
    for other in home.glob("initramfs-*.gz"):
        with contextlib.suppress(FileNotFoundError):  # another run may remove it too
            if other != image.initrd and time.time() - other.stat().st_mtime > STALE_AFTER:
                other.unlink()
    return image


def _argv(image: Image, share: Path) -> list[str]:
    p9 = "virtio-9p-pci"
    return [
        "qemu-system-x86_64", "-nodefaults", "-no-user-config", "-display", "none",
        "-no-reboot", "-nic", "none", "-machine", "q35", "-accel", "tcg,thread=multi",
        "-cpu", "max", "-m", "1024", "-smp", "2", "-serial", "stdio", "-monitor", "none",
        "-kernel", str(image.kernel), "-initrd", str(image.initrd),
        "-append", "console=ttyS0 quiet loglevel=3 panic=-1",
        "-fsdev", f"local,id=share,path={share},security_model=none",
        "-device", f"{p9},fsdev=share,mount_tag=share",
        "-fsdev", "local,id=host,path=/,security_model=none,readonly=on,multidevs=remap",
        "-device", f"{p9},fsdev=host,mount_tag=host",
    ]


def run(image: Image, job: str, share: Path, timeout: float) -> Result:
    """Boot, run `job` (a shell script) as root in the guest's view of the host, power off.

    `share` is the guest's /vmshare. The VM is killed if it outlives `timeout` seconds.
    """
    (share / "job.sh").write_text(job)
    for name in ("rc", "job.log"):
        (share / name).unlink(missing_ok=True)
    with tempfile.TemporaryFile() as console:
        proc = subprocess.Popen(_argv(image, share), stdin=subprocess.DEVNULL,
                                stdout=console, stderr=subprocess.STDOUT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise VMError(f"the VM did not finish within {timeout:.0f}s") from None
        console.seek(0)
        output = console.read().decode(errors="replace")
    rc_file = share / "rc"
    log = (share / "job.log").read_text(errors="replace") if (share / "job.log").exists() else ""
    if not rc_file.exists():
        raise VMError(f"the VM stopped without finishing its job:\n{output[-3000:]}")
    return Result(int(rc_file.read_text().strip() or 1), output, log)


def python_job(project: Path, python: str, argv: Iterable[str]) -> str:
    """A job that runs `python argv...` from `project` (with this process's PYTHONPATH).

    Python writes bytecode (into the tmpfs overlay, never to the host): the project's modules
    are then compiled once per boot, not in each of the job's Python processes (a cluster
    starts many), which under emulation costs seconds apiece when the host's tree holds none.
    """
    path = os.environ.get("PYTHONPATH")
    return "\n".join([
        "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "export HOME=/root PYTHONUNBUFFERED=1",
        *([f"export PYTHONPATH={shlex.quote(path)}"] if path else []),
        f"cd {shlex.quote(str(project))}",
        f"exec {shlex.join([python, *argv])}",
        "",
    ])
