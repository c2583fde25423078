"""bench/guests-console (run by it inside its network namespace): the
round trip of a keystroke on a guest's console — a byte typed until its
echo is back — through bastion (bastionctl on a pty → bastion → the
node's agentd long poll → the LXC guest's tty 0 → back the same way)
against `lxc-console` on the node itself, in the same run on the same
guest. Prints both distributions and the ratio of the medians.

    bench/guests-console [KEYS] [AGENT_BINARY]

KEYS keystrokes each (default 200); AGENT_BINARY agentd (the default:
the dynamically linked agent, the one that can load liblxc)."""
import os
import pty
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "pylib"))
from agents import enrolled_agent  # noqa: E402
from harness import BIN, Bastion  # noqa: E402

KEYS = int(sys.argv[1]) if len(sys.argv) > 1 else 200
AGENT = sys.argv[2] if len(sys.argv) > 2 else "agentd"


def run(*args, check=True):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=120)
    if check and r.returncode != 0:
        raise SystemExit("%s failed: %s" % (args[0], r.stderr))
    return r


def spawn(argv, env=None):
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(argv[0], argv, env or dict(os.environ))
    return pid, fd


def read_until(fd, needle, timeout=30):
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:         # the other side is gone
                break
            if not chunk:
                break
            seen += chunk
            if needle in seen:
                return seen
    raise SystemExit("never saw %r in %r" % (needle, seen[-500:]))


def keystrokes(fd, n):
    """n keystrokes typed one at a time into the shell on fd, each timed
    until its echo is read back: milliseconds."""
    times = []
    for i in range(n):
        c = b"abcdefghijklmnopqrstuvwxyz"[i % 26:i % 26 + 1]
        t0 = time.perf_counter()
        os.write(fd, c)
        got = b""
        while c not in got:
            r, _, _ = select.select([fd], [], [], 10)
            if not r:
                raise SystemExit("keystroke %d: no echo in 10 s" % i)
            got += os.read(fd, 4096)
        times.append((time.perf_counter() - t0) * 1000)
        if i % 40 == 39:            # keep the line short: erase it
            os.write(fd, b"\x15")
            time.sleep(0.05)
            while select.select([fd], [], [], 0.05)[0]:
                os.read(fd, 4096)
    return times


def stop(pid):
    try:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def summary(name, t):
    t = sorted(t)
    p95 = t[int(len(t) * 0.95) - 1]
    print("%-34s median %6.2f ms  p95 %6.2f ms  min %6.2f  max %6.2f  (n=%d)"
          % (name, statistics.median(t), p95, t[0], t[-1], len(t)))
    return statistics.median(t)


def main():
    path = tempfile.mkdtemp(prefix="bst-bench-lxc-", dir="/tmp")
    name = "bench-con-%s" % uuid.uuid4().hex[:6]
    b = None
    agent = None
    try:
        run("lxc-create", "-t", "busybox", "-n", name, "-P", path)
        conf = os.path.join(path, name, "config")
        with open(conf) as f:
            lines = [l for l in f.read().splitlines()
                     if not l.startswith(("lxc.net.0.", "lxc.apparmor."))]
        with open(conf, "w") as f:
            f.write("\n".join(lines + ["lxc.net.0.type = empty",
                                       "lxc.apparmor.profile = unconfined"]) + "\n")
        run("lxc-start", "-n", name, "-P", path)
        b = Bastion().start()
        agent = enrolled_agent(b, extra="lxc_path = %s\n" % path, binary=AGENT)
        env = dict(os.environ, BASTION_SOCKET=b.admin_sock, TERM="xterm")

        # Through bastion.
        pid, fd = spawn([os.path.join(BIN, "bastionctl"), "guests", "console",
                         "node1", name], env)
        read_until(fd, b"leaves")
        os.write(fd, b"\r")
        time.sleep(0.5)
        os.write(fd, b"echo READY\r")
        try:
            read_until(fd, b"READY\r")
        except SystemExit as e:
            raise SystemExit(str(e) + "\n" + agent.log()[-1500:] + "\n".join(
                l for l in b.log().splitlines() if "stream" in l or "console" in l))
        time.sleep(0.2)
        while select.select([fd], [], [], 0.1)[0]:
            os.read(fd, 4096)
        via = keystrokes(fd, KEYS)
        os.write(fd, b"\x15\x1d")
        read_until(fd, b"left the session")
        stop(pid)
        os.close(fd)

        # lxc-console on the node, the same guest and tty.
        direct = None
        for _ in range(50):          # until the agent has let go of it
            pid, fd = spawn([shutil.which("lxc-console"), "-n", name, "-P", path,
                             "-t", "0"])
            try:
                read_until(fd, b"Ctrl+a q", timeout=5)
            except SystemExit:
                stop(pid)
                os.close(fd)
                time.sleep(0.1)
                continue
            os.write(fd, b"echo READY2\r")
            read_until(fd, b"READY2\r")
            time.sleep(0.2)
            while select.select([fd], [], [], 0.1)[0]:
                os.read(fd, 4096)
            direct = keystrokes(fd, KEYS)
            os.write(fd, b"\x15\x01q")
            stop(pid)
            os.close(fd)
            break
        if direct is None:
            raise SystemExit("lxc-console never got the console")
        print("keystroke -> echo on tty 0 of an LXC guest, %d keys each "
              "(agent: %s)" % (KEYS, AGENT))
        m1 = summary("through bastion (bastionctl)", via)
        m2 = summary("lxc-console on the node", direct)
        print("ratio (median, bastion / lxc-console): %.1fx; bastion adds "
              "%.2f ms" % (m1 / m2, m1 - m2))
    finally:
        if agent:
            agent.stop()
        if b:
            b.cleanup()
        run("lxc-stop", "-k", "-n", name, "-P", path, check=False)
        run("lxc-destroy", "-n", name, "-P", path, check=False)
        shutil.rmtree(path, ignore_errors=True)


main()
