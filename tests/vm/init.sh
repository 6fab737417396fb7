#!/bin/busybox sh
# /init of the test VM (tests/vm/harness.py): load what mounting the host needs, mount the
# host's root read-only under a tmpfs overlay, lay that over this initramfs's root, run
# /vmshare/job.sh chrooted there, power off.
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for module in $(cat /boot-modules); do
    modprobe "$module" || echo "vm: modprobe $module failed"
done
ip link set lo up

finish() {
    echo "$1" > /share/rc
    sync
    poweroff -f
}

p9=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o "$p9" share /share || { echo "vm: no share"; poweroff -f; }
mount -t 9p -o "$p9,ro,cache=loose" host /host || { echo "vm: no host root"; finish 97; }
mount -t tmpfs -o size=512m tmpfs /upper
mkdir -p /upper/data /upper/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/upper/data,workdir=/upper/work /root \
    || { echo "vm: overlay failed"; finish 98; }
mount -t proc proc /root/proc
mount -t sysfs sysfs /root/sys
mount -t devtmpfs devtmpfs /root/dev
mount -t tmpfs tmpfs /root/run
mkdir -p /root/vmshare /root/run/netns
mount --bind /share /root/vmshare
# The overlay goes on top of this initramfs's root, as switch_root puts it, and the job runs
# chrooted there: a process that joins a mount namespace (nsenter --mount, which kubectl exec
# uses) gets the topmost mount on the namespace's root as its root, which must be the host's
# view rather than this initramfs. This shell keeps its root (it does not chroot), and so does
# the kernel's modprobe helper, which shares it: modules still load from the initramfs.
cd /root && mount --move . / || { echo "vm: cannot move the root"; finish 96; }
chroot . /bin/sh /vmshare/job.sh > /share/job.log 2>&1
finish $?
