"""bastionctl machines install|reprovision, the install block of machines
show, templates list|render and roles list against a real bastion, and
templates render --template (the local renderer, no server at all)."""
import base64
import json
import os
import re
import struct
import subprocess
import time

import pytest

from agents import wait_for

from harness import BIN, ROOT, sample_report

CTL = os.path.join(BIN, "bastionctl")
MAC = "52:54:00:aa:10:01"
OTHER = "52:54:00:aa:10:02"
KEY_HEX = re.compile(r"k=([0-9a-f]{64})")
NO_SERVER = {"BASTION_SOCKET": "/nonexistent/admin.sock"}


def pubkey(comment, seed, kind="ssh-ed25519"):
    """A well-formed OpenSSH public key line (the server checks the shape
    and that the blob's embedded type matches, not the curve point)."""
    t = kind.encode()
    blob = struct.pack(">I", len(t)) + t + struct.pack(">I", 32) + bytes([seed]) * 32
    return "%s %s %s" % (kind, base64.b64encode(blob).decode(), comment)


K1 = pubkey("ops@bastion", 1)
K2 = pubkey("alice@laptop", 2)
K3 = pubkey("bob@desk", 3)


def run(*args, env=None, input=None, text=True, timeout=30, cwd=None):
    """bastionctl with a clean environment (no BASTION_* from outside)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    e.update(env or {})
    return subprocess.run([CTL] + list(args), capture_output=True, text=text,
                          env=e, timeout=timeout, input=input, cwd=cwd)


def ok(r):
    assert r.returncode == 0, "exit %d\nstdout: %s\nstderr: %s" % (
        r.returncode, r.stdout, r.stderr)
    return r


def discovered(b, mac=MAC):
    assert b.dispatch(mac).status == 200
    r = b.boot("POST", "/api/v1/discover", sample_report(mac))
    assert r.status == 200, r
    return mac


def machine(b, mac=MAC):
    r = b.admin("GET", "/api/v1/machines/" + mac)
    assert r.status == 200, r
    return r.json()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def key_files(tmp_path):
    """Two keys in one file (with a comment, blank lines, CRLF and stray
    blanks) and one in another."""
    a = write(tmp_path / "team.pub", "# the ops team\n\n%s\r\n  %s  \n\n" % (K1, K2))
    b = write(tmp_path / "bob.pub", K3 + "\n")
    return a, b


def install(b, mac=MAC, *extra):
    return b.ctl("machines", "install", mac, "--hostname", "node1.lab",
                 "--role", "worker", *extra)


def drive_to_done(b, mac=MAC):
    """Boot the installer, fetch the kickstart with its key, report done."""
    r = b.dispatch(mac)
    m = KEY_HEX.search(r.text)
    assert m, r.text
    key = m.group(1)
    assert b.boot("GET", "/ks/%s?k=%s" % (mac, key)).status == 200
    r = b.boot("POST", "/api/v1/progress/%s?k=%s" % (mac, key),
               {"stage": "done", "percent": 100})
    assert r.status == 200, r
    assert machine(b, mac)["state"] == "installed"
    return key


# --- machines install ---------------------------------------------------------

def test_install_with_key_files(bastion, tmp_path):
    discovered(bastion)
    a, b = key_files(tmp_path)
    r = ok(install(bastion, MAC, "--ssh-key", a, "--ssh-key=" + b))
    lines = r.stdout.splitlines()
    assert len(lines) == 1, r.stdout
    assert lines[0].startswith("queued install of %s: node1.lab as worker" % MAC)
    assert "on vda" in lines[0] and "3 SSH keys" in lines[0]
    assert r.stderr == ""
    m = machine(bastion)
    assert m["state"] == "queued" and m["hostname"] == "node1.lab"
    assert m["install"]["ssh_keys"] == [K1, K2, K3]
    assert m["install"]["role"] == "worker" and m["install"]["reprovision"] is False


def test_install_json_os_disk_and_stdin(bastion):
    discovered(bastion)
    r = ok(bastion.ctl("machines", "install", MAC.upper().replace(":", "-"),
                       "--json", "--hostname", "db1.lab", "--role", "infra",
                       "--os", "fedora-40", "--disk", "vdb", "--ssh-key", "-",
                       input="%s\n# not this one\n%s\n" % (K2, K1)))
    got = json.loads(r.stdout)
    assert got == machine(bastion)
    assert got["install"]["ssh_keys"] == [K2, K1]
    assert got["install"]["disk"] == "vdb" and got["install"]["os"] == "fedora-40"
    assert got["install"]["role"] == "infra"


def test_install_without_keys_sends_none(bastion):
    discovered(bastion)
    r = ok(install(bastion))
    assert "0 SSH keys" in r.stdout
    assert machine(bastion)["install"]["ssh_keys"] == []


def test_install_bad_hostname_prints_the_servers_message(bastion):
    discovered(bastion)
    api = bastion.admin("POST", "/api/v1/machines/%s/install" % MAC,
                        {"hostname": "Bad_Host", "role": "worker", "ssh_keys": []})
    assert api.status == 422
    msg = api.json()["error"]["message"]
    r = bastion.ctl("machines", "install", MAC, "--hostname", "Bad_Host",
                    "--role", "worker")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == "bastionctl: %s\n" % msg
    r = bastion.ctl("machines", "install", MAC, "--hostname", "n1", "--role", "nope")
    assert r.returncode == 1 and "unknown role 'nope'" in r.stderr
    assert machine(bastion)["state"] == "discovered"


def test_install_bad_key_and_unknown_machine(bastion, tmp_path):
    discovered(bastion)
    bad = write(tmp_path / "bad.pub", "ssh-foo AAAA x\n")
    r = install(bastion, MAC, "--ssh-key", bad)
    assert r.returncode == 1 and "ssh_keys[0]" in r.stderr, r.stderr
    r = install(bastion, OTHER)
    assert r.returncode == 1 and r.stderr == "bastionctl: no machine %s\n" % OTHER
    assert machine(bastion)["state"] == "discovered"


def test_key_files_checked_locally(bastion, tmp_path):
    """Nothing reaches the server when a key file is wrong; a private key
    never leaves the machine."""
    discovered(bastion)
    priv = write(tmp_path / "id_ed25519",
                 "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA\n"
                 "-----END OPENSSH PRIVATE KEY-----\n")
    empty = write(tmp_path / "empty.pub", "# nothing\n\n")
    big = write(tmp_path / "big.pub", (K1 + "\n") * 1000)
    cases = [
        (priv, "id_ed25519:1: this is a private key"),
        (empty, "empty.pub: no SSH public key in it"),
        (big, "big.pub: larger than 64 KiB"),
        (str(tmp_path / "missing.pub"), "missing.pub: No such file or directory"),
        (str(tmp_path), "Is a directory"),
    ]
    for path, want in cases:
        r = install(bastion, MAC, "--ssh-key", path)
        assert r.returncode == 1 and r.stdout == "", (path, r)
        assert r.stderr.startswith("bastionctl: ") and want in r.stderr, r.stderr
    r = install(bastion, MAC, "--ssh-key", "-", "--ssh-key", "-")
    assert r.returncode == 1 and "only once" in r.stderr
    m = machine(bastion)
    assert m["state"] == "discovered" and m["install"] is None


@pytest.mark.parametrize("args", [
    ["machines", "install", MAC, "--role", "worker"],
    ["machines", "install", MAC, "--hostname", "n1"],
    ["machines", "install", "--hostname", "n1", "--role", "worker"],
    ["machines", "install", MAC, "--hostname", "n1", "--role", "worker", "--bogus"],
    ["machines", "install", MAC, "--hostname", "n1", "--role", "worker", "--ssh-key"],
    ["machines", "install", MAC, MAC, "--hostname", "n1", "--role", "worker"],
    ["machines", "reprovision"],
    ["machines", "reprovision", MAC, "--disk", "vda"],
    ["machines", "reprovision", MAC, "--json=1"],
    ["templates", "list", "x"],
    ["templates", "render"],
    ["templates", "render", "--mac", MAC, "--template", "t"],
    ["templates", "render", "--mac", MAC, "--ipxe", "--kickstart"],
    ["templates", "render", "--mac", MAC, "--data", "d.json"],
    ["templates", "render", "--template", "t"],
    ["templates", "render", "--template", "t", "--data", "d", "--json"],
    ["templates", "bogus"],
    ["roles", "list", "--bogus"],
])
def test_usage_errors_exit_2(args):
    r = run(*args, env=NO_SERVER)
    assert r.returncode == 2, r
    assert r.stdout == "" and "usage: bastionctl" in r.stderr


def test_too_many_key_files_is_a_usage_error():
    args = ["machines", "install", MAC, "--hostname", "n1", "--role", "worker"]
    r = run(*(args + ["--ssh-key", "/dev/null"] * 33), env=NO_SERVER)
    assert r.returncode == 2 and "more than 32 times" in r.stderr


def test_help_lists_the_new_commands():
    r = ok(run("--help"))
    for cmd in ("machines install", "machines reprovision", "templates list",
                "templates render", "roles list"):
        assert cmd in r.stdout, cmd
    r = ok(run("templates", "render", "--help"))
    assert "--template FILE --data JSONFILE" in r.stdout and r.stderr == ""
    r = ok(run("help", "templates"))
    assert "templates list" in r.stdout and "templates render" in r.stdout


# --- reprovision and machines show ------------------------------------------

def test_reprovision_after_an_install_is_done(bastion, tmp_path):
    discovered(bastion)
    a, b = key_files(tmp_path)
    # Not installed yet: the server says why.
    r = bastion.ctl("machines", "reprovision", MAC)
    assert r.returncode == 1 and "never installed" in r.stderr
    ok(install(bastion, MAC, "--ssh-key", a))
    r = bastion.ctl("machines", "reprovision", MAC)
    assert r.returncode == 1 and "reprovision needs" in r.stderr, r.stderr
    drive_to_done(bastion)
    r = ok(bastion.ctl("machines", "reprovision", MAC, "--role", "infra"))
    assert r.stdout.startswith("queued reprovision of %s: node1.lab as infra" % MAC)
    assert "2 SSH keys" in r.stdout and "preserved volumes are kept" in r.stdout
    m = machine(bastion)
    assert m["state"] == "queued"
    assert m["install"]["reprovision"] is True and m["install"]["role"] == "infra"
    assert m["install"]["ssh_keys"] == [K1, K2]     # kept without --ssh-key
    # Again, with new keys and host name, as JSON.
    drive_to_done(bastion)
    r = ok(bastion.ctl("machines", "reprovision", MAC, "--ssh-key", b,
                       "--hostname", "node2.lab", "--json"))
    got = json.loads(r.stdout)
    assert got == machine(bastion)
    assert got["install"]["ssh_keys"] == [K3]
    assert got["install"]["hostname"] == "node2.lab"
    assert got["install"]["role"] == "infra"


def test_show_install_block(bastion):
    discovered(bastion)
    discovered(bastion, OTHER)
    assert "Install:" not in ok(bastion.ctl("machines", "show", OTHER)).stdout
    ok(install(bastion))
    out = ok(bastion.ctl("machines", "show", MAC)).stdout
    block = out[out.index("\nInstall:\n"):out.index("\nHardware")]
    fields = dict(re.match(r"\s+(\S[^:]*):\s+(.*)$", line).groups()
                  for line in block.strip().splitlines()[1:])
    assert fields["Role"] == "worker" and fields["Hostname"] == "node1.lab"
    assert fields["Disk"] == "vda" and fields["Status"] == "queued"
    assert fields["Progress"] == "[----------] 0%"
    assert fields["Reprovision"] == "no" and fields["Installer boots"] == "0"
    # Installing, halfway through.
    m = KEY_HEX.search(bastion.dispatch(MAC).text)
    key = m.group(1)
    assert bastion.boot("GET", "/ks/%s?k=%s" % (MAC, key)).status == 200
    r = bastion.boot("POST", "/api/v1/progress/%s?k=%s" % (MAC, key),
                     {"stage": "packages", "percent": 55, "message": "installing"})
    assert r.status == 200
    api = machine(bastion)["install"]
    out = ok(bastion.ctl("machines", "show", MAC)).stdout
    assert re.search(r"^  Progress:\s+\[#####-----\] 55%$", out, re.M), out
    assert re.search(r"^  Stage:\s+packages$", out, re.M)
    assert re.search(r"^  Status:\s+%s$" % api["status"], out, re.M)
    assert re.search(r"^  Installer boots:\s+%d$" % api["boots"], out, re.M)
    assert re.search(r"^State:\s+installing$", out, re.M)
    assert "\nHardware" in out      # the rest is still there


# --- templates ---------------------------------------------------------------

def test_templates_list_and_override(bastion):
    lines = ok(bastion.ctl("templates", "list")).stdout.splitlines()
    assert lines[0].split() == ["NAME", "SOURCE", "PATH"]
    rows = [line.split() for line in lines[1:]]
    names = [row[0] for row in rows]
    assert names == sorted(names)
    by = {row[0]: row for row in rows}
    assert by["install.ks"][1:] == ["builtin", os.path.join(ROOT, "kickstart",
                                                            "install.ks.mustache")]
    assert by["idle.ipxe"][1] == "builtin"
    api = bastion.admin("GET", "/api/v1/templates").json()
    assert json.loads(ok(bastion.ctl("templates", "list", "--json")).stdout) == api
    assert sorted(t["name"] for t in api) == names

    tdir = os.path.join(bastion.state, "templates")
    os.makedirs(tdir, exist_ok=True)
    path = write(os.path.join(tdir, "idle.ipxe.mustache"), "#!ipxe\nexit\n")
    # The server re-checks files at most once a second.
    wait_for(lambda: "override" in bastion.ctl("templates", "list").stdout,
             what="the override to be listed")
    lines = ok(bastion.ctl("templates", "list")).stdout.splitlines()
    by = {line.split()[0]: line.split() for line in lines[1:]}
    assert by["idle.ipxe"][1:] == ["override", path]
    assert by["install.ks"][1] == "builtin"
    assert len(lines) == len(rows) + 1


def test_templates_render_mac(bastion):
    discovered(bastion)
    ok(install(bastion))
    before = bastion.admin("GET", "/api/v1/machines/%s/events" % MAC).json()
    api = bastion.admin("POST", "/api/v1/templates/render", {"mac": MAC}).json()
    assert api["kickstart"] and api["ipxe"].startswith("#!ipxe")
    out = ok(bastion.ctl("templates", "render", "--mac", MAC)).stdout
    ipxe = api["ipxe"] if api["ipxe"].endswith("\n") else api["ipxe"] + "\n"
    assert out.startswith(ipxe)
    rest = out[len(ipxe):]
    sep, ks = rest.split("\n", 1)
    assert "kickstart" in sep and ks == api["kickstart"]
    r = ok(bastion.ctl("templates", "render", "--mac", MAC, "--kickstart"))
    assert r.stdout == api["kickstart"] and r.stderr == ""
    r = ok(bastion.ctl("templates", "render", "--mac=" + MAC.upper(), "--ipxe"))
    assert r.stdout == api["ipxe"]
    got = json.loads(ok(bastion.ctl("templates", "render", "--mac", MAC,
                                    "--json")).stdout)
    assert got == api
    # A dry run changes nothing.
    m = machine(bastion)
    assert m["state"] == "queued" and m["install"]["boots"] == 0
    assert bastion.admin("GET", "/api/v1/machines/%s/events" % MAC).json() == before


def test_templates_render_mac_without_install(bastion):
    discovered(bastion)
    api = bastion.admin("POST", "/api/v1/templates/render", {"mac": MAC}).json()
    assert api["kickstart"] is None
    r = ok(bastion.ctl("templates", "render", "--mac", MAC))
    assert r.stdout == api["ipxe"] and "kickstart" not in r.stdout
    r = bastion.ctl("templates", "render", "--mac", MAC, "--kickstart")
    assert r.returncode == 1 and r.stdout == ""
    assert "is discovered: it gets no kickstart now" in r.stderr
    r = bastion.ctl("templates", "render", "--mac", OTHER)
    assert r.returncode == 1 and r.stderr == "bastionctl: no machine %s\n" % OTHER
    r = bastion.ctl("templates", "render", "--mac", "../etc")
    assert r.returncode == 1 and "is not a MAC address" in r.stderr


# --- templates render --template (local) -------------------------------------

def test_render_template_locally_byte_exact(tmp_path):
    """Partials from the template's directory (nested, with standalone
    indentation), escaping, sections, no newline added; no server used."""
    d = tmp_path / "tpl"
    d.mkdir()
    tpl = write(d / "main.ks.mustache",
                "# {{host}} & {{{host}}}\n"
                "{{#keys}}\n"
                "  {{> key.ks}}\n"
                "{{/keys}}\n"
                "{{^none}}no-none{{/none}}\n"
                "{{! a comment }}\n"
                "end {{n}}")
    write(d / "key.ks.mustache", "sshkey \"{{{.}}}\"\n{{> tail.ks}}\n")
    write(d / "tail.ks.mustache", "# key done\n")
    data = write(tmp_path / "data.json",
                 json.dumps({"host": "a<b>", "keys": ["k1", "k2"], "n": 3}))
    want = ("# a&lt;b&gt; & a<b>\n"
            "  sshkey \"k1\"\n"
            "  # key done\n"
            "  sshkey \"k2\"\n"
            "  # key done\n"
            "no-none\n"
            "end 3")
    r = run("templates", "render", "--template", tpl, "--data", data,
            env=NO_SERVER, text=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout == want.encode() and r.stderr == b""
    # Relative paths: partials from the template's own directory.
    r = run("templates", "render", "--template", "tpl/main.ks.mustache",
            "--data", "data.json", cwd=str(tmp_path), env=NO_SERVER, text=False)
    assert r.returncode == 0 and r.stdout == want.encode(), r.stderr
    # --partials DIR: another set of partials.
    other = tmp_path / "other"
    other.mkdir()
    write(other / "key.ks.mustache", "K={{.}}\n")
    r = run("templates", "render", "--template", tpl, "--data", data,
            "--partials", str(other), env=NO_SERVER, text=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"# a&lt;b&gt; & a<b>\n  K=k1\n  K=k2\nno-none\nend 3"


def test_render_template_with_a_trailing_newline_and_utf8(tmp_path):
    tpl = write(tmp_path / "t.mustache", "h\u00e9llo {{x}}\n\n")
    data = write(tmp_path / "d.json", '{"x": "w\u00f6rld"}')
    r = run("templates", "render", "--template", tpl, "--data", data,
            env=NO_SERVER, text=False)
    assert r.returncode == 0 and r.stdout == "h\u00e9llo w\u00f6rld\n\n".encode()


def test_render_a_builtin_partial_like_the_server(bastion, tmp_path):
    """The local renderer and the server agree on the shipped templates."""
    discovered(bastion)
    ok(install(bastion, MAC, "--ssh-key", key_files(tmp_path)[0]))
    api = bastion.admin("POST", "/api/v1/templates/render", {"mac": MAC}).json()
    tpl = write(tmp_path / "keys.mustache", "{{> ssh-keys.ks}}")
    data = write(tmp_path / "d.json", json.dumps({"ssh_keys": [K1, K2]}))
    r = run("templates", "render", "--template", tpl, "--data", data,
            "--partials", os.path.join(ROOT, "kickstart"), env=NO_SERVER)
    assert r.returncode == 0, r.stderr
    want = 'sshkey --username=root "%s"\nsshkey --username=root "%s"\n' % (K1, K2)
    assert r.stdout == want
    assert want in api["kickstart"]


def test_render_template_errors(tmp_path):
    data = write(tmp_path / "d.json", '{"a": 1}')
    broken = write(tmp_path / "broken.mustache", "line one\n{{#open}}\nx\n")
    r = run("templates", "render", "--template", broken, "--data", data,
            env=NO_SERVER)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("bastionctl: %s:2: " % broken), r.stderr
    assert r.stderr.count("\n") == 1
    # A broken partial names the partial's file and line.
    write(tmp_path / "bad.mustache", "ok\n\nfoo {{/nope}}\n")
    top = write(tmp_path / "top.mustache", "{{> bad}}")
    r = run("templates", "render", "--template", top, "--data", data,
            env=NO_SERVER)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("bastionctl: %s:3: " % (tmp_path / "bad.mustache")), r.stderr
    # Partials stay in their directory.
    for name in ("../secret", "sub/x", ".."):
        t = write(tmp_path / "esc.mustache", "one\n{{> %s}}\n" % name)
        r = run("templates", "render", "--template", t, "--data", data,
                env=NO_SERVER)
        assert r.returncode == 1 and r.stdout == "", name
        assert r.stderr.startswith("bastionctl: %s:2: partial '%s' refused" % (t, name)), r.stderr
    # A missing partial renders as nothing (the spec), with a warning.
    t = write(tmp_path / "miss.mustache", "a{{> missing}}b")
    r = run("templates", "render", "--template", t, "--data", data,
            env=NO_SERVER)
    assert r.returncode == 0 and r.stdout == "ab"
    assert "warning: partial 'missing' not found" in r.stderr
    # Bad data: DATA:LINE.
    bad = write(tmp_path / "bad.json", '{\n"a": 1,\n}')
    r = run("templates", "render", "--template", t, "--data", bad, env=NO_SERVER)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("bastionctl: %s:3: " % bad), r.stderr
    # Missing files.
    r = run("templates", "render", "--template", str(tmp_path / "nope"),
            "--data", data, env=NO_SERVER)
    assert r.returncode == 1 and "No such file or directory" in r.stderr


def test_render_template_caps(tmp_path):
    data = write(tmp_path / "d.json", json.dumps({"l": list(range(2000)),
                                                  "s": "x" * 1000}))
    # Output: 2000 * 1000 bytes is over 1 MiB.
    t = write(tmp_path / "big-out.mustache", "{{#l}}{{s}}{{/l}}")
    r = run("templates", "render", "--template", t, "--data", data,
            env=NO_SERVER, text=False)
    assert r.returncode == 1 and r.stdout == b""
    assert b"exceeds" in r.stderr and t.encode() + b":1:" in r.stderr
    # Template and data files over 1 MiB.
    big = write(tmp_path / "big.mustache", "x" * (1024 * 1024 + 1))
    r = run("templates", "render", "--template", big, "--data", data, env=NO_SERVER)
    assert r.returncode == 1 and "larger than 1024 KiB" in r.stderr
    bigd = write(tmp_path / "big.json", '"%s"' % ("x" * (1024 * 1024)))
    r = run("templates", "render", "--template", t, "--data", bigd, env=NO_SERVER)
    assert r.returncode == 1 and "larger than 1024 KiB" in r.stderr
    # Recursive partials hit the nesting cap instead of looping.
    rec = write(tmp_path / "rec.mustache", "{{> rec}}")
    r = run("templates", "render", "--template", rec, "--data", data, env=NO_SERVER)
    assert r.returncode == 1 and "nesting deeper" in r.stderr


# --- roles -------------------------------------------------------------------

def test_roles_list(bastion):
    lines = ok(bastion.ctl("roles", "list")).stdout.splitlines()
    assert lines[0].split() == ["NAME", "BUILTIN", "VOLUMES"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {"worker", "infra"}
    col = lines[0].index("VOLUMES")
    assert rows["worker"][col:] == ("/ 20G xfs, /var 20G xfs, /home 10G xfs preserve, "
                                    "/srv 10G xfs preserve, "
                                    "/var/lib/longhorn grow xfs preserve")
    assert rows["infra"][col:].endswith("/var/lib/rancher grow xfs preserve")
    assert rows["worker"][lines[0].index("BUILTIN"):].split()[0] == "yes"
    api = bastion.admin("GET", "/api/v1/roles").json()
    assert json.loads(ok(bastion.ctl("roles", "list", "--json")).stdout) == api


def test_roles_from_config(make_bastion):
    b = make_bastion(extra_conf="[role gpu]\nvolume = / 30G xfs reformat\n"
                                "volume = swap 512M swap reformat\n"
                                "volume = /var/lib/gpu grow ext4 preserve\n")
    b.start()
    out = ok(b.ctl("roles", "list")).stdout
    row = next(line for line in out.splitlines() if line.startswith("gpu "))
    assert row.split()[1] == "no"
    assert row.endswith("/ 30G xfs, swap 512M swap, /var/lib/gpu grow ext4 preserve")
