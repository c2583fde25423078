"""Privilege separation: the process that parses the network (the HTTP
worker) runs as the unprivileged user bastion and cannot read the CA or
job keys; the root parent supervises it, the signer and dnsmasq."""
import os
import pwd
import signal
import subprocess

from agents import wait_for
from harness import pid_running


def proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def worker(b):
    pid = b.child_pid("bastion-http")
    assert pid, "no HTTP worker under bastion %d:\n%s" % (b.proc.pid, b.log())
    return pid


def test_http_worker_is_unprivileged_and_cannot_read_the_keys(bastion):
    user = pwd.getpwnam("bastion")
    pid = worker(bastion)
    st = proc_status(pid)
    uids = [int(x) for x in st["Uid"].split()]
    gids = [int(x) for x in st["Gid"].split()]
    assert uids == [user.pw_uid] * 4 and user.pw_uid != 0
    assert gids == [user.pw_gid] * 4
    assert st["Groups"].strip() == ""
    assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0
    # It is the one that listens: the admin socket is its own...
    assert os.stat(bastion.admin_sock).st_uid == user.pw_uid
    # ...and it holds no key: none open, and with its credentials the
    # key files cannot be opened at all.
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        assert "/ca/" not in target, target
    for key in ("ca.key", "jobs.key"):
        path = os.path.join(bastion.state, "ca", key)
        assert os.path.exists(path)
        r = subprocess.run(["setpriv", "--reuid=%d" % uids[0], "--regid=%d" % gids[0],
                            "--clear-groups", "--", "cat", path],
                           capture_output=True, text=True)
        assert r.returncode != 0 and "Permission denied" in r.stderr, r
    # The parent stays root, the signer too: they hold what the worker may not.
    assert proc_status(bastion.proc.pid)["Uid"].split()[0] == "0"
    signer = bastion.child_pid("bastion-signer")
    assert signer and proc_status(signer)["Uid"].split()[0] == "0"
    # And it still serves: signing goes through the signer.
    assert bastion.admin("GET", "/api/v1/readyz").status == 200
    r = bastion.admin("GET", "/api/v1/doctor")
    checks = {c["name"]: c for c in r.json()["checks"]}
    assert checks["ca key"]["status"] == "ok", checks["ca key"]


def test_existing_root_owned_database_is_handed_to_the_worker(make_bastion):
    b = make_bastion()
    b.start()
    b.admin("GET", "/api/v1/machines")
    b.stop()
    db = os.path.join(b.state, "bastion.db")
    os.chown(db, 0, 0)      # as an older, unseparated bastion left it
    b.start()
    assert os.stat(db).st_uid == pwd.getpwnam("bastion").pw_uid
    assert b.admin("GET", "/api/v1/machines").status == 200


def test_lost_worker_stops_the_parent(make_bastion):
    b = make_bastion()
    b.start()
    dq = b.dnsmasq_pid()
    assert dq
    pid = worker(b)
    os.kill(pid, signal.SIGKILL)
    b.proc.wait(timeout=30)
    assert b.proc.returncode != 0
    assert "the HTTP worker %d killed by signal 9 (Killed); stopping" % pid in b.log()
    # Nothing it supervised is left behind.
    wait_for(lambda: not os.path.exists("/proc/%d" % dq), what="dnsmasq to stop")
    b.stop(expect_clean=False)


def test_config_set_goes_through_the_parent(bastion):
    # The worker cannot write bastion.conf when it is root's: the parent
    # validates, writes and reloads it.
    os.chown(bastion.conf, 0, 0)
    os.chmod(bastion.conf, 0o600)
    r = bastion.ctl("config", "set", "agent.heartbeat_interval", "17")
    assert r.returncode == 0, r
    with open(bastion.conf) as f:
        assert "heartbeat_interval = 17" in f.read()
    wait_for(lambda: bastion.ctl("config", "get", "agent.heartbeat_interval")
             .stdout.strip() == "17", what="the worker to take the new config")
    bad = bastion.ctl("config", "set", "agent.heartbeat_interval", "nope")
    assert bad.returncode == 1 and "heartbeat_interval" in bad.stderr
    assert bastion.alive()


def private_bytes(path):
    """The raw private key of a PEM key file: the EC scalar or the Ed25519
    seed, as openssl prints it."""
    out = subprocess.run(["openssl", "pkey", "-in", path, "-noout", "-text"],
                         capture_output=True, text=True, check=True).stdout
    hexes, on = [], False
    for line in out.splitlines():
        if line.startswith("priv:"):
            on = True
            continue
        if on:
            if not line.startswith(" "):
                break
            hexes.append(line.strip().replace(":", ""))
    raw = bytes.fromhex("".join(hexes))
    return raw[-32:]


def memory_holds(pid, key):
    """key, as written or reversed (OpenSSL keeps EC scalars as
    little-endian words), anywhere in pid's readable memory. Mappings over
    1 GiB are passed over: they are reservations (the sanitizers' shadow
    and allocator space), whose used parts show as mappings of their own.
    The signer's memory is the control that this finds a key."""
    needles = (key, key[::-1])
    chunk = 32 << 20
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            addr, perms = line.split()[:2]
            if "r" not in perms:
                continue
            start, end = (int(x, 16) for x in addr.split("-"))
            if end - start > 1 << 30:
                continue
            at, tail = start, b""
            while at < end:
                try:
                    mem.seek(at)
                    data = tail + mem.read(min(chunk, end - at))
                except (OSError, ValueError, OverflowError):
                    break
                if any(n in data for n in needles):
                    return True
                tail = data[-(len(key) - 1):]
                at += chunk
    return False


def test_worker_memory_never_held_the_keys(bastion):
    """The worker is forked before the parent loads any key, so not even a
    freed copy of the CA or job key can be in its memory; the signer's is
    the control that the search finds a key where one is."""
    ca_key = private_bytes(os.path.join(bastion.state, "ca", "ca.key"))
    jobs_key = private_bytes(os.path.join(bastion.state, "ca", "jobs.key"))
    assert len(ca_key) == 32 and len(jobs_key) == 32
    signer = bastion.child_pid("bastion-signer")
    assert memory_holds(signer, ca_key) and memory_holds(signer, jobs_key)
    pid = worker(bastion)
    # Sign something first, so the worker has used the signer.
    assert bastion.admin("POST", "/api/v1/tokens", {"uses": 1}).status == 201
    assert not memory_holds(pid, ca_key)
    assert not memory_holds(pid, jobs_key)


# bastion.service's capability bounding set: no CAP_KILL. The worker and
# dnsmasq (nobody) run as other users, so the parent signals them through
# a child that becomes their user (lib/sigas.c).
UNIT_CAPS = "net_bind_service,net_admin,net_raw,setuid,setgid,chown"


def unit_capped(make_bastion):
    caps = ",".join("+" + c for c in UNIT_CAPS.split(","))
    return make_bastion(wrap=["setpriv", "--bounding-set=-all," + caps,
                              "--inh-caps=-all", "--no-new-privs", "--"])


def cap_kill(pid):
    return bool(int(proc_status(pid)["CapEff"], 16) & (1 << 5))


def test_without_cap_kill_stop_and_reload_reach_worker_and_dnsmasq(make_bastion):
    b = unit_capped(make_bastion)
    b.start()
    assert not cap_kill(b.proc.pid)
    dq = b.dnsmasq_pid()
    assert dq
    nobody = str(pwd.getpwnam("nobody").pw_uid)
    wait_for(lambda: proc_status(dq)["Uid"].split() == [nobody] * 4,
             what="dnsmasq to drop to nobody")
    # Another dhcp_mode restarts dnsmasq (TFTP only): the old one is stopped
    # (SIGTERM as nobody) before the new one starts.
    with open(b.conf) as f:
        conf = f.read()
    with open(b.conf, "w") as f:
        f.write(conf.replace("dhcp_mode = full", "dhcp_mode = off"))
    b.proc.send_signal(signal.SIGHUP)
    try:
        wait_for(lambda: b.dnsmasq_pid() not in (None, dq), what="dnsmasq restart")
    except AssertionError:
        raise AssertionError("\n".join(
            l for l in b.log().splitlines() if "readyz" not in l)[-3000:])
    assert not pid_running(dq)
    dq = b.dnsmasq_pid()
    wk = worker(b)
    # The stop reaches both: a clean exit, nothing left behind.
    b.stop()
    assert not pid_running(dq) and not pid_running(wk)
    text = b.log()
    assert "cannot kill" not in text and "did not stop" not in text, text[-3000:]
    assert "ignored SIGTERM" not in text, text[-3000:]


def test_without_cap_kill_a_killed_bastion_leaves_no_dnsmasq(make_bastion):
    b = unit_capped(make_bastion)
    b.start()
    dq = b.dnsmasq_pid()
    assert dq
    nobody = str(pwd.getpwnam("nobody").pw_uid)
    wait_for(lambda: proc_status(dq)["Uid"].split() == [nobody] * 4,
             what="dnsmasq to drop to nobody")
    os.kill(b.proc.pid, signal.SIGKILL)
    b.proc.wait(timeout=30)
    # Its watcher (root, without CAP_KILL) ends the dnsmasq that is nobody's.
    wait_for(lambda: not pid_running(dq), timeout=15,
             what="dnsmasq to end with its bastion")
    b.stop(expect_clean=False)


def test_lease_hook_init_reaches_the_worker_without_dac_override(make_bastion):
    # dnsmasq runs `lease-hook init` itself, as root, before it drops to
    # nobody; root without CAP_DAC_OVERRIDE (bastion.service) cannot open
    # the worker's 0600 admin socket, so the hook becomes its owner.
    b = unit_capped(make_bastion)
    b.start()       # ready: the leases were given back (init answered)
    text = b.log()
    assert "lease-init script returned" not in text, text[-3000:]
    assert b.admin("GET", "/api/v1/readyz").json()["dnsmasq"].get("pid")
    b.stop()
