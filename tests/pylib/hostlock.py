"""One machine-wide lock for the test modules that use what the host has
only once: the system's libvirtd (qemu:///system), LXC container names in
the host's cgroup tree, the LVM volume group "bastion" on loop devices.
tests/run.sh runs the plain and the sanitizer suites at the same time,
each in its own network namespace; everything else they use is their
own (temp dirs, ports in their namespace, dockerd with its own roots),
but these would collide. flock: released by the kernel if the holder
dies, so a crashed run never wedges the next one."""
import contextlib
import fcntl
import os

LOCK = "/run/lock/bastion-tests-host.lock"


@contextlib.contextmanager
def host_exclusive():
    os.makedirs(os.path.dirname(LOCK), exist_ok=True)
    fd = os.open(LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
