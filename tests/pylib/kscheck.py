"""A strict structural check of the kickstarts bastion renders.

pykickstart's ksvalidator is not packaged in Debian 12, so this encodes,
from the Fedora 40 / RHEL 9 kickstart reference, the commands and options
bastion's templates use, and rejects anything else: an unknown command or
option, a section not closed by %end, a logvol name used twice, a size that
is not a positive whole number of MiB. check() returns a list of problems.
"""
import re
import shlex

# command -> {option: takes a value?}; positional args allowed per command.
COMMANDS = {
    "text": ({}, 0),
    "url": ({"--url": True, "--proxy": True, "--noverifyssl": False}, 0),
    "lang": ({"--addsupport": True}, 1),
    "keyboard": ({"--vckeymap": True, "--xlayouts": True, "--switch": True}, 0),
    "timezone": ({"--utc": False, "--isUtc": False, "--nontp": False}, 1),
    "network": ({"--bootproto": True, "--device": True, "--hostname": True,
                 "--activate": False, "--onboot": True, "--ip": True,
                 "--netmask": True, "--gateway": True, "--nameserver": True}, 0),
    "rootpw": ({"--lock": False, "--iscrypted": False, "--plaintext": False,
                "--allow-ssh": False}, -1),
    "sshkey": ({"--username": True}, 1),
    "selinux": ({"--enforcing": False, "--permissive": False, "--disabled": False}, 0),
    "firewall": ({"--enabled": False, "--disabled": False, "--service": True,
                  "--port": True, "--ssh": False}, 0),
    "services": ({"--enabled": True, "--disabled": True}, 0),
    "firstboot": ({"--disable": False, "--enable": False}, 0),
    "skipx": ({}, 0),
    "zerombr": ({}, 0),
    "ignoredisk": ({"--only-use": True, "--drives": True}, 0),
    "bootloader": ({"--boot-drive": True, "--location": True, "--append": True,
                    "--timeout": True}, 0),
    "reboot": ({"--eject": False, "--kexec": False}, 0),
    "clearpart": ({"--all": False, "--none": False, "--initlabel": False,
                   "--drives": True, "--disklabel": True, "--list": True,
                   "--linux": False}, 0),
    "part": ({"--fstype": True, "--size": True, "--grow": False, "--maxsize": True,
              "--ondisk": True, "--onpart": True, "--label": True,
              "--noformat": False, "--asprimary": False, "--fsoptions": True}, 1),
    "volgroup": ({"--useexisting": False, "--noformat": False, "--pesize": True,
                  "--reserved-space": True, "--reserved-percent": True}, -1),
    "logvol": ({"--vgname": True, "--name": True, "--fstype": True, "--size": True,
                "--grow": False, "--maxsize": True, "--useexisting": False,
                "--noformat": False, "--label": True, "--percent": True,
                "--fsoptions": True}, 1),
}
SECTIONS = {"%packages", "%pre", "%pre-install", "%post", "%onerror"}
SECTION_OPTIONS = {"--interpreter", "--log", "--erroronfail", "--nochroot",
                   "--ignoremissing", "--excludedocs"}
FSTYPES = {"xfs", "ext4", "ext3", "ext2", "swap", "vfat", "efi", "biosboot"}
LV_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def _options(cmd, args, problems, lineno):
    opts, npos = COMMANDS[cmd]
    values, positional = {}, []
    for a in args:
        if a.startswith("--"):
            key, eq, val = a.partition("=")
            if key not in opts:
                problems.append("line %d: %s: unknown option %s" % (lineno, cmd, key))
                continue
            if opts[key] and not eq:
                problems.append("line %d: %s: %s needs a value" % (lineno, cmd, key))
            if not opts[key] and eq:
                problems.append("line %d: %s: %s takes no value" % (lineno, cmd, key))
            if key in values:
                problems.append("line %d: %s: %s given twice" % (lineno, cmd, key))
            values[key] = val
        else:
            positional.append(a)
    if npos >= 0 and len(positional) != npos:
        problems.append("line %d: %s: expected %d arguments, got %r"
                        % (lineno, cmd, npos, positional))
    return values, positional


def check(text, storage_only=False):
    """Problems found in a kickstart (or, storage_only, in the storage
    commands a %pre writes)."""
    problems = []
    section = None
    logvols, mounts = set(), set()
    seen = set()
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if section:
            if line == "%end":
                section = None
            elif line.startswith("%") and line.split()[0] in SECTIONS:
                problems.append("line %d: %s opened inside %s" % (lineno, line.split()[0], section))
            continue
        if not line or line.startswith("#"):
            continue
        try:
            words = shlex.split(line)
        except ValueError as e:
            problems.append("line %d: %s" % (lineno, e))
            continue
        cmd, args = words[0], words[1:]
        if cmd in SECTIONS:
            if storage_only:
                problems.append("line %d: section in storage commands" % lineno)
            for a in args:
                if a.partition("=")[0] not in SECTION_OPTIONS:
                    problems.append("line %d: %s: unknown option %s" % (lineno, cmd, a))
            section = cmd
            continue
        if cmd == "%include":
            if len(args) != 1:
                problems.append("line %d: %%include takes one file" % lineno)
            continue
        if cmd == "%end":
            problems.append("line %d: %%end without a section" % lineno)
            continue
        if cmd not in COMMANDS:
            problems.append("line %d: unknown command %s" % (lineno, cmd))
            continue
        values, pos = _options(cmd, args, problems, lineno)
        seen.add(cmd)
        if "--size" in values and not re.fullmatch(r"[1-9][0-9]*", values["--size"]):
            problems.append("line %d: size %r is not a positive number of MiB"
                            % (lineno, values["--size"]))
        if "--fstype" in values and values["--fstype"] not in FSTYPES:
            problems.append("line %d: unknown fstype %s" % (lineno, values["--fstype"]))
        if cmd == "logvol":
            name = values.get("--name", "")
            if not values.get("--vgname") or not LV_NAME.match(name):
                problems.append("line %d: logvol needs --vgname and a plain --name" % lineno)
            if name in logvols:
                problems.append("line %d: logvol name %s used twice" % (lineno, name))
            logvols.add(name)
            existing = "--useexisting" in values or "--noformat" in values
            if not existing and "--size" not in values and "--percent" not in values:
                problems.append("line %d: new logvol %s has no size" % (lineno, name))
            if "--noformat" in values and "--useexisting" not in values:
                problems.append("line %d: --noformat without --useexisting" % lineno)
        if cmd in ("logvol", "part") and pos:
            if pos[0] in mounts:
                problems.append("line %d: mount point %s used twice" % (lineno, pos[0]))
            mounts.add(pos[0])
            if cmd == "part" and "--onpart" not in values and "--size" not in values:
                problems.append("line %d: new partition without --size" % lineno)
        if cmd == "volgroup":
            if "--useexisting" in values and len(pos) != 1:
                problems.append("line %d: volgroup --useexisting takes no partitions" % lineno)
            if "--useexisting" not in values and len(pos) < 2:
                problems.append("line %d: a new volgroup needs partitions" % lineno)
        if cmd == "clearpart" and ("--all" in values) == ("--none" in values):
            problems.append("line %d: clearpart needs exactly one of --all, --none" % lineno)
    if section:
        problems.append("%s not closed by %%end" % section)
    if not storage_only:
        for required in ("url", "lang", "keyboard", "timezone", "rootpw",
                         "bootloader", "network"):
            if required not in seen:
                problems.append("required command %s missing" % required)
    elif "/" not in mounts:
        problems.append("no / in the storage layout")
    return problems


def sections(text, name):
    """The bodies of every section called name (e.g. "%pre")."""
    out, cur = [], None
    for line in text.splitlines():
        if cur is None and line.split()[:1] == [name]:
            cur = []
        elif cur is not None and line.strip() == "%end":
            out.append("\n".join(cur) + "\n")
            cur = None
        elif cur is not None:
            cur.append(line)
    return out
