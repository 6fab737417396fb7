#!/bin/busybox sh
# /init of the test VM (tests/vm/harness.py): load what mounting the host needs, mount the
# host's root read-only with a tmpfs overlay, run /vmshare/job.sh chrooted there, power off.
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
chroot /root /bin/sh /vmshare/job.sh > /share/job.log 2>&1
finish $?
