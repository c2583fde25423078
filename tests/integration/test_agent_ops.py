"""Operating nodes through their agents, with real agentd processes over
real mTLS: reboot, reprovision and inventory from the CLI (agentd's reboot
and efibootmgr are harmless stand-ins that leave a mark), the heartbeat
interval setting and stale agents, the signer restarted after it dies,
agent and job changes audited in their own transaction, and install join
tokens that are alive whenever a kickstart carries them."""
import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
import time

from agents import Agent, enrolled_agent, job_done, token, wait_for, waiting_polls
from harness import BIN, sample_report

MAC = "52:54:00:b0:00:01"
KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGmiGf1hhbxbcvYOUcw0WlcRbFhRLfP0"
       "uj9dCkpWxrJ9 ops@bastion")


def db(b):
    return sqlite3.connect(os.path.join(b.state, "bastion.db"), timeout=10)


def script(path, body):
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, stat.S_IRWXU)
    return path


def stand_ins(b, name):
    """reboot_command and efibootmgr that only write down that they ran,
    and an inventory root that makes the node look UEFI."""
    d = os.path.join(b.tmp, "standin-" + name)
    os.makedirs(os.path.join(d, "root", "sys", "firmware", "efi"))
    marks = os.path.join(d, "marks")
    reboot = script(os.path.join(d, "reboot"), "echo reboot >> %s\n" % marks)
    efi = script(os.path.join(d, "efibootmgr"),
                 'if [ "$1" = --bootnext ]; then echo "bootnext $2" >> %s; exit 0; fi\n'
                 'printf "BootCurrent: 0001\\nBootOrder: 0001,0003\\n'
                 'Boot0001* debian\\nBoot0003* UEFI PXEv4 (MAC:525400b00001)\\n"\n'
                 % marks)
    extra = ("reboot_command = %s\nefibootmgr = %s\ninventory_root = %s\n"
             % (reboot, efi, os.path.join(d, "root")))
    return extra, marks


def marks(path):
    try:
        with open(path) as f:
            return f.read().split("\n")
    except OSError:
        return []


def installed(b, mac=MAC, hostname="node1.lab"):
    """A machine bastion installed: discovered, queued, done."""
    assert b.dispatch(mac).status == 200
    assert b.boot("POST", "/api/v1/discover", sample_report(mac)).status == 200
    r = b.admin("POST", "/api/v1/machines/%s/install" % mac,
                {"hostname": hostname, "role": "worker", "ssh_keys": [KEY]})
    assert r.status == 202, r
    key = re.search(r"k=([0-9a-f]{64})", b.dispatch(mac).text).group(1)
    assert b.boot("GET", "/ks/%s?k=%s" % (mac, key)).status == 200
    r = b.boot("POST", "/api/v1/progress/%s?k=%s" % (mac, key),
               {"stage": "done", "percent": 100, "message": "done"})
    assert r.status == 200, r
    assert b.admin("GET", "/api/v1/machines/" + mac).json()["state"] == "installed"


def audit_rows(b, action):
    return [r for r in json.loads(b.ctl("audit", "list", "--json").stdout)
            if r["action"] == action]


# --- reboot, inventory, reprovision ----------------------------------------

def test_agents_reboot_runs_the_nodes_reboot_command(bastion, agents):
    extra, mk = stand_ins(bastion, "n1")
    agents.append(enrolled_agent(bastion, extra=extra))
    r = bastion.ctl("agents", "reboot", "node1")
    assert r.returncode == 0, r
    assert re.match(r"node1: rebooting \(job \d+\)", r.stdout), r.stdout
    wait_for(lambda: "reboot" in marks(mk), what="the reboot stand-in")
    # --detach prints the job id only; --json the job as queued.
    r = bastion.ctl("agents", "reboot", "node1", "--detach")
    assert r.returncode == 0 and r.stdout.strip().isdigit(), r
    assert job_done(bastion, int(r.stdout))["kind"] == "reboot"
    r = bastion.ctl("agents", "reboot", "node1", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["kind"] == "reboot"
    # Bad targets: a clear message and exit 1; no target: usage, exit 2.
    r = bastion.ctl("agents", "reboot", "nosuchnode")
    assert r.returncode == 1 and "no agent nosuchnode" in r.stderr, r
    assert bastion.ctl("agents", "reboot").returncode == 2


def test_agents_reboot_refused_by_local_policy(bastion, agents):
    agents.append(enrolled_agent(bastion, extra="accept = exec\n"))
    r = bastion.ctl("agents", "reboot", "node1")
    assert r.returncode == 1 and "refused" in r.stderr and "local policy" in r.stderr, r


def test_agents_inventory_updates_the_stored_inventory(bastion, agents):
    agents.append(enrolled_agent(bastion))
    wait_for(lambda: bastion.admin("GET", "/api/v1/agents/node1").json()["inventory"],
             what="the first inventory")
    # The agent's own PUT of its inventory comes before its first long
    # poll: once that waits, nothing overwrites the row behind the test.
    wait_for(lambda: waiting_polls(bastion) == 1, what="the agent's long poll")
    with db(bastion) as c:
        c.execute("UPDATE agents SET inventory = '{}', inventory_ms = 1")
    c.close()
    before = bastion.admin("GET", "/api/v1/agents/node1").json()
    assert before["inventory"] == {}
    r = bastion.ctl("agents", "inventory", "node1")
    assert r.returncode == 0 and r.stdout.startswith("node1: done (job "), r
    after = bastion.admin("GET", "/api/v1/agents/node1").json()
    assert after["inventory"].get("cpu") and after["inventory"].get("memory"), after
    assert after["inventory_at"] > "2000"


def test_agents_reprovision_queues_and_reboots_into_network_boot(bastion, agents):
    installed(bastion)
    extra, mk = stand_ins(bastion, "n1")
    agents.append(enrolled_agent(bastion, mac=MAC, extra=extra,
                                  tok=token(bastion, mac=MAC)))
    assert bastion.admin("GET", "/api/v1/machines/" + MAC).json()["state"] == "active"
    r = bastion.ctl("agents", "reprovision", "node1")
    assert r.returncode == 0, r
    assert ("queued reprovision of %s: node1.lab as worker" % MAC) in r.stdout, r.stdout
    assert re.search(r"%s: UEFI: BootNext = Boot0003 \(network\); rebooting \(job \d+\)"
                     % MAC, r.stdout), r.stdout
    wait_for(lambda: "bootnext 0003" in marks(mk) and "reboot" in marks(mk),
             what="efibootmgr --bootnext and the reboot")
    m = bastion.admin("GET", "/api/v1/machines/" + MAC).json()
    assert m["state"] == "queued" and m["install"]["reprovision"] is True
    # Its next network boot gets the installer, not the local disk.
    assert "inst.ks=" in bastion.dispatch(MAC).text
    # One audited action: the reprovision, naming the reboot.
    rows = audit_rows(bastion, "machine.reprovision")
    assert len(rows) == 1 and "reboots it into network boot" in rows[0]["detail"], rows
    assert audit_rows(bastion, "job.create") == []


def test_reprovision_reboot_needs_an_agent_and_changes_nothing_without(bastion, agents):
    installed(bastion)
    r = bastion.ctl("machines", "reprovision", MAC, "--reboot")
    assert r.returncode == 1 and "no enrolled agent" in r.stderr, r
    assert bastion.admin("GET", "/api/v1/machines/" + MAC).json()["state"] == "installed"
    r = bastion.admin("POST", "/api/v1/machines/%s/reprovision" % MAC, {"reboot": "yes"})
    assert r.status == 422 and r.json()["error"]["code"] == "invalid", r
    assert bastion.ctl("machines", "reprovision", MAC, "--detach").returncode == 2


def test_reprovision_reboot_needs_the_exec_scope_too(bastion, agents):
    installed(bastion)
    agents.append(enrolled_agent(bastion, mac=MAC, tok=token(bastion, mac=MAC)))
    bastion.add_user("ops", "operator")
    url = "/api/v1/machines/%s/reprovision" % MAC
    r = bastion.control("POST", url, {"reboot": True},
                        auth=bastion.make_token("ops", "provision"))
    assert r.status == 403 and r.json()["error"]["code"] == "insufficient_scope", r
    assert "scope admin" in r.json()["error"]["message"], r
    assert bastion.admin("GET", "/api/v1/machines/" + MAC).json()["state"] == "active"
    assert bastion.admin("GET", "/api/v1/jobs").json() == []
    # Without reboot the provision scope is enough, as before.
    r = bastion.control("POST", url, {}, auth=bastion.make_token("ops", "provision"))
    assert r.status == 202 and "job" not in r.json(), r


def test_machines_reprovision_reboot_in_production_mode(bastion, agents):
    installed(bastion)
    extra, mk = stand_ins(bastion, "n1")
    agents.append(enrolled_agent(bastion, mac=MAC, extra=extra,
                                  tok=token(bastion, mac=MAC)))
    assert bastion.ctl("settings", "set", "production", "on").returncode == 0
    r = bastion.ctl("machines", "reprovision", MAC, "--role", "infra", "--reboot")
    assert r.returncode == 1 and "--confirm" in r.stderr, r
    assert bastion.admin("GET", "/api/v1/machines/" + MAC).json()["state"] == "active"
    r = bastion.ctl("--confirm", MAC, "machines", "reprovision", MAC, "--role",
                    "infra", "--reboot")
    assert r.returncode == 0 and "as infra" in r.stdout and "BootNext" in r.stdout, r
    # The agent-addressed form is confirmed with the MAC too.
    assert bastion.ctl("agents", "reboot", "node1").returncode == 1
    assert bastion.ctl("--confirm", "node1", "agents", "reboot", "node1").returncode == 0


# --- the heartbeat interval ---------------------------------------------

def heartbeat(b, a):
    r = subprocess.run(["curl", "-s", "--cacert", b.ca_pem,
                        "--cert", os.path.join(a.state, "cert.pem"),
                        "--key", os.path.join(a.state, "key.pem"),
                        "-X", "POST", "-H", "Content-Type: application/json",
                        "-d", "{}", "https://127.0.0.1:%d/agent/v1/heartbeat"
                        % b.control_port], capture_output=True, text=True)
    return json.loads(r.stdout)


def test_heartbeat_interval_setting_reload_and_stale_agents(make_bastion, agents):
    b = make_bastion(extra_conf="[agent]\nheartbeat_interval = 7\n").start()
    a = enrolled_agent(b)
    agents.append(a)
    assert heartbeat(b, a)["interval"] == 7
    a.stop()
    # Heartbeats are written behind: a read through the API writes what
    # waits, so the change below is not overwritten by it.
    assert b.admin("GET", "/api/v1/agents/node1").json()["last_heartbeat_at"]
    # Last heard of 4 intervals ago: stale. 3 intervals of 30 s: not.
    with db(b) as c:
        c.execute("UPDATE agents SET last_seen_ms = last_seen_ms - 28000")
    c.close()
    assert b.admin("GET", "/api/v1/agents/node1").json()["stale"] is True
    out = b.ctl("agents", "list")
    assert re.search(r"node1\s+52:54:00:a0:00:01\s+stale", out.stdout), out.stdout
    with open(b.conf) as f:
        text = f.read()
    with open(b.conf, "w") as f:
        f.write(text.replace("heartbeat_interval = 7", "heartbeat_interval = 30"))
    b.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: b.admin("GET", "/api/v1/agents/node1").json()["stale"] is False,
             what="the reload")
    assert "enrolled" in b.ctl("agents", "show", "node1").stdout
    assert heartbeat(b, a)["interval"] == 30


def test_heartbeat_interval_out_of_bounds_is_a_config_error(tmp_path):
    conf = tmp_path / "b.conf"
    for bad in ("4", "3601", "often"):
        conf.write_text("[bastion]\nstate_dir = %s\n[agent]\nheartbeat_interval = %s\n"
                        % (tmp_path / "s", bad))
        r = subprocess.run([os.path.join(BIN, "bastion"), "-n", "-f", str(conf)],
                           capture_output=True, text=True)
        assert r.returncode == 1 and ("%s:4:" % conf) in r.stderr, r
        assert "heartbeat_interval" in r.stderr, r.stderr


# --- the signer -----------------------------------------------------------

def signer_pid(b):
    return b.child_pid("bastion-signer")


def test_signer_killed_is_restarted_and_signing_works_again(bastion, agents):
    a = enrolled_agent(bastion)
    agents.append(a)
    first = signer_pid(bastion)
    assert first
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: "signer process %d killed by signal 9" % first in bastion.log(),
             what="bastion to notice the signer died")
    second = wait_for(lambda: (lambda p: p if p and p != first else None)(
        signer_pid(bastion)), what="a new signer")
    with open("/proc/%d/cmdline" % second, "rb") as f:
        assert b"--signer" in f.read()
    assert "started again" in bastion.log()
    # Enrollment (certificates) and jobs (signatures) work again.
    agents.append(enrolled_agent(bastion, name="node2", mac="52:54:00:a0:00:02"))
    r = bastion.ctl("exec", "node1", "--", "echo", "signed")
    assert r.returncode == 0 and r.stdout == "signed\n", r
    assert bastion.boot("GET", "/ca.crl").status == 200


def test_hung_signer_gives_503_not_a_hang(bastion, agents):
    agents.append(enrolled_agent(bastion))
    pid = signer_pid(bastion)
    os.kill(pid, signal.SIGSTOP)
    try:
        t = time.time()
        r = bastion.admin("POST", "/api/v1/jobs", {"target": "node1", "kind": "exec",
                          "args": {"argv": ["true"]}}, timeout=30)
        assert r.status == 503 and r.json()["error"]["code"] == "signer_unavailable", r
        assert time.time() - t < 15
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    # The failed job is on record, audited once as an error.
    rows = audit_rows(bastion, "job.create")
    assert len(rows) == 1 and rows[0]["result"] == "error", rows
    wait_for(lambda: signer_pid(bastion) not in (None, pid), what="a new signer")
    r = bastion.admin("POST", "/api/v1/jobs", {"target": "node1", "kind": "exec",
                      "args": {"argv": ["true"]}})
    assert r.status == 201, r
    assert job_done(bastion, r.json()["id"])["status"] == "done"
    assert bastion.ctl("audit", "verify").returncode == 0



def test_hung_signer_does_not_hold_the_stop(bastion):
    """At stop the signer gets its EOF; one that cannot take it (stopped,
    stuck) is killed after a while rather than waited for for ever."""
    pid = signer_pid(bastion)
    os.kill(pid, signal.SIGSTOP)
    try:
        t = time.time()
        assert bastion.stop() == 0
        assert time.time() - t < 10
        assert "signer process %d did not exit; killing it" % pid in bastion.log()
        assert not os.path.exists("/proc/%d" % pid)
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


# --- audit ----------------------------------------------------------------

def test_agent_and_job_changes_audited_once_each(bastion, agents):
    agents.append(enrolled_agent(bastion))
    assert len(audit_rows(bastion, "agent.enroll")) == 1
    assert len(audit_rows(bastion, "jointoken.create")) == 1
    assert len(audit_rows(bastion, "jointoken.revoke")) == 0
    r = bastion.admin("POST", "/api/v1/jobs", {"target": "node1", "kind": "exec",
                      "args": {"argv": ["true"]}})
    assert r.status == 201
    job_done(bastion, r.json()["id"])
    rows = audit_rows(bastion, "job.create")
    assert len(rows) == 1 and rows[0]["result"] == "ok", rows
    assert len(audit_rows(bastion, "job.result")) == 1
    assert bastion.ctl("agents", "revoke", "node1").returncode == 0
    rows = audit_rows(bastion, "agent.revoke")
    assert len(rows) == 1 and rows[0]["result"] == "ok", rows
    tid = json.loads(bastion.ctl("tokens", "create", "--json").stdout)["id"]
    assert bastion.ctl("tokens", "revoke", tid).returncode == 0
    assert len(audit_rows(bastion, "jointoken.create")) == 2
    assert len(audit_rows(bastion, "jointoken.revoke")) == 1
    r = bastion.ctl("audit", "verify")
    assert r.returncode == 0, r
    # The rows are in the same transactions as the changes: the chain
    # head file agrees with the table.
    with db(bastion) as c:
        n = c.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    c.close()
    with open(os.path.join(bastion.state, "audit.head")) as f:
        assert int(f.read().split()[0]) == n


# --- install join tokens ---------------------------------------------------

def kickstart_token(b, mac=MAC):
    key = re.search(r"k=([0-9a-f]{64})", b.dispatch(mac).text).group(1)
    r = b.boot("GET", "/ks/%s?k=%s" % (mac, key))
    assert r.status == 200, r
    m = re.search(r"^token = ([0-9a-f]{64})$", r.text, re.M)
    assert m, r.text
    return m.group(1)


def install_tokens(b):
    return [t for t in json.loads(b.ctl("tokens", "list", "--json").stdout)
            if t["comment"] == "install"]


def test_install_token_dies_24h_after_queueing(bastion, agents):
    assert bastion.dispatch(MAC).status == 200
    assert bastion.boot("POST", "/api/v1/discover", sample_report(MAC)).status == 200
    install = lambda: bastion.admin("POST", "/api/v1/machines/%s/install" % MAC,
                                    {"hostname": "node1.lab", "role": "worker",
                                     "ssh_keys": [KEY]})
    assert install().status == 202
    # Queued 25 h ago: the token minted then is dead, and a kickstart
    # never extends it (issue 11): 409, nothing handed out.
    with db(bastion) as c:
        c.execute("UPDATE join_tokens SET created_ms = created_ms - 90000000,"
                  " expires_ms = expires_ms - 90000000")
    c.close()
    assert install_tokens(bastion)[0]["state"] == "expired"
    key = re.search(r"k=([0-9a-f]{64})", bastion.dispatch(MAC).text).group(1)
    r = bastion.boot("GET", "/ks/%s?k=%s" % (MAC, key))
    assert r.status == 409 and r.json()["error"]["code"] == "no_join_token", r
    assert install_tokens(bastion)[0]["state"] == "expired"
    # Queued again: a live token, which the kickstart carries.
    assert install().status == 202
    tok = kickstart_token(bastion)
    t = install_tokens(bastion)
    assert sorted(x["state"] for x in t) == ["active", "revoked"], t
    # The token the kickstart carries enrolls a real agentd.
    a = Agent(bastion, "node1", tok, MAC)
    agents.append(a)
    r = a.enroll()
    assert r.returncode == 0, r.stderr
    assert sorted(x["state"] for x in install_tokens(bastion)) == ["revoked", "used"]


def test_requeued_install_revokes_the_earlier_token(bastion):
    assert bastion.dispatch(MAC).status == 200
    assert bastion.boot("POST", "/api/v1/discover", sample_report(MAC)).status == 200
    for role in ("worker", "infra"):
        r = bastion.admin("POST", "/api/v1/machines/%s/install" % MAC,
                          {"hostname": "node1.lab", "role": role, "ssh_keys": [KEY]})
        assert r.status == 202, r
    states = sorted(t["state"] for t in install_tokens(bastion))
    assert states == ["active", "revoked"], install_tokens(bastion)
    kickstart_token(bastion)
    assert sorted(t["state"] for t in install_tokens(bastion)) == ["active", "revoked"]
