"""The RBAC matrix (issue 6): every route of the route table, as every
role (cookie sessions) and every token scope, with read-only mode off and
on, against expectations written by hand below. A route that is added to
a table without an entry here fails this test: say who may call it.

Outcomes: 401 (who are you?), 403 (not allowed), 423 (read-only mode) or
"ok" (the request reached its handler, whatever the handler said)."""
import http.client
import json
import socket
import ssl

import pytest

# (method, pattern) -> (minimum role, token scope, mutates) for every route
# on the control listener and the admin socket. "none": open, the request
# carries its own credential (a password, a join token, a client
# certificate) or nothing secret is served.
EXPECT = {
    # machines and the install queue
    ("GET", "/api/v1/machines"): ("viewer", "read", False),
    ("GET", "/api/v1/machines/{mac}"): ("viewer", "read", False),
    ("DELETE", "/api/v1/machines/{mac}"): ("operator", "provision", True),
    ("GET", "/api/v1/machines/{mac}/events"): ("viewer", "read", False),
    ("POST", "/api/v1/machines/{mac}/install"): ("operator", "provision", True),
    ("POST", "/api/v1/machines/{mac}/reprovision"): ("operator", "provision", True),
    ("POST", "/api/v1/templates/render"): ("operator", "provision", False),
    ("GET", "/api/v1/templates"): ("viewer", "read", False),
    ("GET", "/api/v1/roles"): ("viewer", "read", False),
    ("GET", "/api/v1/os"): ("viewer", "read", False),
    # the appliance
    ("GET", "/api/v1/healthz"): ("viewer", "read", False),
    ("GET", "/api/v1/readyz"): ("viewer", "read", False),
    ("GET", "/api/v1/metrics"): ("viewer", "read", False),
    ("GET", "/api/v1/version"): ("viewer", "read", False),
    ("GET", "/api/v1/doctor"): ("viewer", "read", False),
    ("GET", "/api/v1/cluster"): ("viewer", "read", False),
    ("POST", "/api/v1/cluster/join"): ("admin", "admin", False),   # audited
    ("GET", "/api/v1/leases"): ("viewer", "read", False),
    ("GET", "/api/v1/config"): ("operator", "read", False),
    ("PUT", "/api/v1/config/{key}"): ("admin", "admin", True),       # socket only
    ("POST", "/api/v1/leases"): ("admin", "admin", True),            # socket only
    ("GET", "/ca.pem"): ("none", "read", False),
    ("GET", "/ca.crl"): ("none", "read", False),
    # accounts
    ("POST", "/api/v1/session"): ("none", "read", True),
    ("GET", "/api/v1/session"): ("viewer", "read", False),
    ("DELETE", "/api/v1/session"): ("viewer", "admin", True),
    ("GET", "/api/v1/sessions"): ("viewer", "read", False),
    ("DELETE", "/api/v1/sessions/{id}"): ("viewer", "admin", True),
    ("GET", "/api/v1/users"): ("admin", "read", False),
    ("POST", "/api/v1/users"): ("admin", "admin", True),
    ("PATCH", "/api/v1/users/{name}"): ("admin", "admin", True),
    ("PUT", "/api/v1/users/{name}/password"): ("viewer", "admin", True),
    ("GET", "/api/v1/apitokens"): ("viewer", "read", False),
    ("POST", "/api/v1/apitokens"): ("viewer", "admin", True),
    ("DELETE", "/api/v1/apitokens/{id}"): ("viewer", "admin", True),
    ("GET", "/api/v1/settings"): ("viewer", "read", False),
    ("PUT", "/api/v1/settings/{key}"): ("admin", "admin", True),
    ("GET", "/api/v1/audit"): ("admin", "read", False),
    ("GET", "/api/v1/audit/verify"): ("admin", "read", False),
    ("GET", "/api/v1/routes"): ("admin", "read", False),
    # agents, join tokens and jobs
    ("POST", "/api/v1/tokens"): ("operator", "provision", True),
    ("GET", "/api/v1/tokens"): ("viewer", "read", False),
    ("DELETE", "/api/v1/tokens/{id}"): ("operator", "provision", True),
    ("GET", "/api/v1/agents"): ("viewer", "read", False),
    ("GET", "/api/v1/agents/{id}"): ("viewer", "read", False),
    ("POST", "/api/v1/agents/{id}/revoke"): ("operator", "provision", True),
    ("POST", "/api/v1/jobs"): ("operator", "exec", True),
    ("GET", "/api/v1/jobs"): ("viewer", "read", False),
    ("GET", "/api/v1/jobs/{id}"): ("viewer", "read", False),
    ("GET", "/api/v1/jobs/{id}/output"): ("operator", "read", False),
    ("POST", "/api/v1/enroll"): ("none", "read", False),
    ("POST", "/agent/v1/heartbeat"): ("none", "read", False),
    ("PUT", "/agent/v1/inventory"): ("none", "read", False),
    ("GET", "/agent/v1/jobs"): ("none", "read", False),
    ("POST", "/agent/v1/jobs/{id}/output"): ("none", "read", False),
    ("POST", "/agent/v1/jobs/{id}/result"): ("none", "read", False),
    ("POST", "/agent/v1/renew"): ("none", "read", False),
    # fleet attention and alerts
    ("GET", "/api/v1/attention"): ("viewer", "read", False),
    ("GET", "/api/v1/alerts"): ("viewer", "read", False),
    ("GET", "/api/v1/silences"): ("viewer", "read", False),
    ("POST", "/api/v1/silences"): ("operator", "provision", True),
    ("GET", "/api/v1/channels"): ("operator", "read", False),
    ("GET", "/api/v1/channels/{name}/deliveries"): ("operator", "read", False),
    ("POST", "/api/v1/channels/{name}/test"): ("admin", "admin", True),
    # containers (DESIGN §12) and interactive streams
    ("POST", "/agent/v1/reports/docker"): ("none", "read", False),
    ("GET", "/agent/v1/streams/{id}/input"): ("none", "read", False),
    ("POST", "/agent/v1/streams/{id}/output"): ("none", "read", False),
    ("GET", "/api/v1/containers"): ("viewer", "read", False),
    ("GET", "/api/v1/agents/{id}/containers"): ("viewer", "read", False),
    ("GET", "/api/v1/agents/{id}/containers/{ref}"): ("viewer", "read", False),
    ("GET", "/api/v1/streams/{id}/output"): ("operator", "exec", False),
    ("POST", "/api/v1/streams/{id}/input"): ("operator", "exec", False),
    ("POST", "/api/v1/agents/{id}/containers/{ref}/start"): ("operator", "exec", True),
    ("POST", "/api/v1/agents/{id}/containers/{ref}/stop"): ("operator", "exec", True),
    ("POST", "/api/v1/agents/{id}/containers/{ref}/restart"): ("operator", "exec", True),
    ("POST", "/api/v1/agents/{id}/containers/{ref}/pause"): ("operator", "exec", True),
    ("POST", "/api/v1/agents/{id}/containers/{ref}/unpause"): ("operator", "exec", True),
    ("POST", "/api/v1/agents/{id}/containers/{ref}/kill"): ("operator", "exec", True),
    ("POST", "/api/v1/agents/{id}/containers/{ref}/remove"): ("operator", "exec", True),
    ("POST", "/api/v1/agents/{id}/containers/{ref}/logs"): ("operator", "exec", True),
    ("POST", "/api/v1/agents/{id}/containers/{ref}/inspect"): ("operator", "exec", True),
    ("POST", "/api/v1/agents/{id}/containers/{ref}/exec"): ("operator", "exec", True),
    # guests (DESIGN §13): libvirt VMs and LXC containers
    ("POST", "/agent/v1/reports/guests"): ("none", "read", False),
    ("GET", "/api/v1/guests"): ("viewer", "read", False),
    ("GET", "/api/v1/agents/{id}/guests"): ("viewer", "read", False),
    ("GET", "/api/v1/agents/{id}/guests/{guest}"): ("viewer", "read", False),
    ("POST", "/api/v1/agents/{id}/guests/{guest}/start"): ("operator", "exec", True),
    ("POST", "/api/v1/agents/{id}/guests/{guest}/shutdown"): ("operator", "exec", True),
    ("POST", "/api/v1/agents/{id}/guests/{guest}/stop"): ("operator", "exec", True),
    ("POST", "/api/v1/agents/{id}/guests/{guest}/reboot"): ("operator", "exec", True),
    ("POST", "/api/v1/agents/{id}/guests/{guest}/suspend"): ("operator", "exec", True),
    ("POST", "/api/v1/agents/{id}/guests/{guest}/resume"): ("operator", "exec", True),
    ("POST", "/api/v1/agents/{id}/guests/{guest}/snapshot"): ("operator", "exec", True),
    ("POST", "/api/v1/agents/{id}/guests/{guest}/rollback"): ("operator", "exec", True),
    ("POST", "/api/v1/agents/{id}/guests/{guest}/snapshot-delete"): ("operator", "exec", True),
    ("POST", "/api/v1/agents/{id}/guests/{guest}/guard"): ("operator", "exec", True),
    ("POST", "/api/v1/agents/{id}/guests/{guest}/console"): ("operator", "exec", True),
    # the web panel's static files (no data; the API behind them is not open)
    ("GET", "/"): ("none", "read", False),
    ("GET", "/ui/{name}"): ("none", "read", False),
    ("GET", "/ui/vendor/{name}"): ("none", "read", False),
}

# Mutations that read-only mode lets through: logging in and out, ending
# one's sessions and revoking tokens (closing doors stays possible).
READ_ONLY_EXEMPT = {
    ("POST", "/api/v1/session"), ("DELETE", "/api/v1/session"),
    ("DELETE", "/api/v1/sessions/{id}"), ("DELETE", "/api/v1/apitokens/{id}"),
    ("POST", "/api/v1/leases"),
}

# The boot listener: open, by design (firmware cannot log in).
BOOT_ROUTES = {
    ("GET", "/boot.ipxe"), ("GET", "/dispatch"), ("GET", "/boot/discovery/{name}"),
    ("GET", "/boot/{name}"), ("POST", "/api/v1/discover"), ("GET", "/ca.pem"),
    ("GET", "/ks/{mac}"), ("POST", "/api/v1/progress/{mac}"), ("GET", "/ca.crl"),
    ("GET", "/boot/agent/{name}"), ("GET", "/install/{mac}/plan"),
    ("GET", "/boot/os/{name}/{file}"), ("GET", "/boot/installer/{name}"),
}

ROLES = {"viewer": 1, "operator": 2, "admin": 3}
# Which route scope a token scope covers (auth.h): read is covered by
# every scope, admin covers everything, provision and exec only themselves.
COVERS = {"read": {"read"}, "provision": {"read", "provision"},
          "exec": {"read", "exec"},
          "admin": {"read", "provision", "exec", "admin"}}
PARAMS = {"{mac}": "52:54:00:ff:ff:01", "{id}": "999999", "{name}": "nobody",
          "{key}": "bogus"}
AUTH_CODES = {"unauthenticated", "forbidden", "insufficient_scope", "csrf",
              "read_only", "password_change_required", "production_mode",
              "confirmation_required", "address_not_allowed"}


def expected(route, who, read_only):
    role, scope, mutates = EXPECT[route]
    if role != "none":
        if who is None:
            return 401
        if ROLES[who["role"]] < ROLES[role]:
            return 403
        if who["scope"] is not None and scope not in COVERS[who["scope"]]:
            return 403
    if read_only and mutates and route not in READ_ONLY_EXEMPT:
        return 423
    return "ok"


def outcome(status, body):
    try:
        code = json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = None
    if status == 401 and code == "unauthenticated":
        return 401
    if status == 403 and code in ("forbidden", "insufficient_scope"):
        return 403
    if status == 423 and code == "read_only":
        return 423
    assert code not in AUTH_CODES, (status, body)
    return "ok"


class Client:
    """Keep-alive HTTPS to the control listener (the matrix is ~1000
    requests); reconnects when the server closed the connection."""

    def __init__(self, b):
        self.b = b
        self.ctx = ssl.create_default_context(cafile=b.ca_pem)
        self.conn = None

    def request(self, method, path, body, headers):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(
                    "127.0.0.1", self.b.control_port, context=self.ctx, timeout=20)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, data
            except (http.client.HTTPException, ConnectionError, socket.timeout,
                    ssl.SSLError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


def make_principals(b):
    """Cookie sessions of each role and tokens of each scope. Tokens of an
    admin test the scope alone; the others test that a token never
    outgrows its user's role."""
    out = [("anonymous", None)]
    for role in ("viewer", "operator", "admin"):
        name = "m-" + role
        b.add_user(name, role, name + " password")
        out.append(("session:" + role, {"role": role, "scope": None, "user": name,
                                        "password": name + " password"}))
    for scope in ("read", "provision", "exec", "admin"):
        out.append(("token:admin/" + scope, {"role": "admin", "scope": scope,
                                             "token": b.make_token("m-admin", scope)}))
    for role, scope in (("viewer", "read"), ("operator", "provision"),
                        ("operator", "exec")):
        out.append(("token:%s/%s" % (role, scope), {
            "role": role, "scope": scope, "token": b.make_token("m-" + role, scope)}))
    return out


def login(b, who):
    r = b.control("POST", "/api/v1/session", {"username": who["user"],
                                              "password": who["password"]}, auth=None)
    assert r.status == 200, r
    sid = r.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    return sid, r.json()["csrf_token"]


def test_rbac_matrix(bastion):
    b = bastion
    table = b.admin("GET", "/api/v1/routes").json()
    # Every row says who may call it, and agrees with the expectations.
    api = [rt for rt in table if set(rt["listeners"]) & {"control", "admin"}]
    seen = set()
    for rt in table:
        key = (rt["method"], rt["pattern"])
        assert rt["declared"], "%s %s has no role in its route table" % key
        if "boot" in rt["listeners"]:
            assert key in BOOT_ROUTES, "boot route %s %s is not expected" % key
    for rt in api:
        key = (rt["method"], rt["pattern"])
        assert key in EXPECT, "%s %s: add it to EXPECT in %s" % (key + (__file__,))
        role, scope, mutates = EXPECT[key]
        assert (rt["role"], rt["scope"], rt["mutates"]) == (role, scope, mutates), key
        assert rt["read_only_exempt"] == (key in READ_ONLY_EXEMPT) or \
            key == ("PUT", "/api/v1/settings/{key}"), key
        seen.add(key)
    assert seen == set(EXPECT), "routes gone: %s" % (set(EXPECT) - seen)

    principals = make_principals(b)
    sessions = {}
    for name, who in principals:
        if who and "user" in who:
            sessions[name] = login(b, who)
    client = Client(b)
    failures, checked = [], 0
    control = [rt for rt in api if "control" in rt["listeners"]]
    for read_only in (False, True):
        assert b.admin("PUT", "/api/v1/settings/read_only",
                       {"value": "on" if read_only else "off"}).status == 200
        for rt in control:
            key = (rt["method"], rt["pattern"])
            path = rt["pattern"]
            for k, v in PARAMS.items():
                path = path.replace(k, v)
            body = None
            if rt["method"] not in ("GET", "HEAD", "DELETE"):
                body = json.dumps({"rbac_probe": True})
            for name, who in principals:
                headers = {"Content-Type": "application/json"} if body else {}
                if who and "token" in who:
                    headers["Authorization"] = "Bearer " + who["token"]
                elif who:
                    # Logging out ends the session: use a throwaway one.
                    sid, csrf = (login(b, who) if key == ("DELETE", "/api/v1/session")
                                 else sessions[name])
                    headers["Cookie"] = "bastion_session=" + sid
                    headers["X-CSRF-Token"] = csrf
                status, data = client.request(rt["method"], path, body, headers)
                want = expected(key, who, read_only)
                got = outcome(status, data)
                checked += 1
                if got != want:
                    failures.append("%s %s as %s, read-only %s: want %s, got %d %s" % (
                        rt["method"], rt["pattern"], name, read_only, want, status,
                        data[:160]))
    b.admin("PUT", "/api/v1/settings/read_only", {"value": "off"})
    assert not failures, "\n".join(failures)
    assert checked >= 2 * 11 * 40

    # The admin socket is admin: only read-only mode stops it.
    for read_only in (False, True):
        b.admin("PUT", "/api/v1/settings/read_only", {"value": "on" if read_only else "off"})
        for rt in (rt for rt in api if "admin" in rt["listeners"]):
            key = (rt["method"], rt["pattern"])
            if key == ("PUT", "/api/v1/config/{key}"):
                continue    # would rewrite the config file; test_daemon covers it
            path = rt["pattern"]
            for k, v in PARAMS.items():
                path = path.replace(k, v)
            body = {"rbac_probe": True} if rt["method"] not in ("GET", "DELETE") else None
            r = b.admin(rt["method"], path, body)
            want = 423 if (read_only and EXPECT[key][2] and key not in READ_ONLY_EXEMPT) \
                else "ok"
            assert outcome(r.status, r.body) == want, (key, read_only, r)
    b.admin("PUT", "/api/v1/settings/read_only", {"value": "off"})


def test_boot_routes_stay_open(bastion):
    table = bastion.admin("GET", "/api/v1/routes").json()
    boot = {(rt["method"], rt["pattern"]) for rt in table if "boot" in rt["listeners"]}
    assert boot == BOOT_ROUTES
    bastion.admin("PUT", "/api/v1/settings/read_only", {"value": "on"})
    for method, pattern in sorted(boot):
        path = pattern
        for k, v in PARAMS.items():
            path = path.replace(k, v)
        path = path.replace("{name}", "nope")
        r = bastion.boot(method, path, {"rbac_probe": True} if method == "POST" else None)
        assert r.status != 401 and r.status != 423, (method, pattern, r)
        try:
            c = r.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            c = None
        assert c not in ("unauthenticated", "insufficient_scope", "csrf"), r
        # What machines report (discovery, progress) waits out read-only
        # mode (503); everything else is answered.
        if method == "POST":
            assert r.status == 503 and c == "read_only", (method, pattern, r)
        else:
            assert c != "read_only", r
    assert bastion.boot("GET", "/boot.ipxe").status == 200
    # The operator API is not on the boot listener at all.
    for path in ("/api/v1/machines", "/api/v1/users", "/api/v1/audit", "/api/v1/session"):
        assert bastion.boot("GET", path).status in (404, 405)


@pytest.mark.parametrize("path", ["/api/v1/machines", "/api/v1/nope", "/nope", "/api/v1/users"])
def test_unauthenticated_control_requests_get_401_json(bastion, path):
    r = bastion.control("GET", path, auth=None)
    assert r.status == 401
    assert r.headers["Content-Type"] == "application/json"
    assert r.json()["error"]["code"] == "unauthenticated"


def test_job_env_values_only_for_those_who_run_jobs(bastion, agents):
    """exec jobs' env values are often secrets: viewers and tokens that
    cannot run jobs see the names, each value masked, in every rendering of
    a job (list, one, output)."""
    from agents import enrolled_agent
    b = bastion
    a = enrolled_agent(b)
    agents.append(a)
    a.stop()                # the job stays queued
    r = b.admin("POST", "/api/v1/jobs", {"target": "node1", "kind": "exec",
                "args": {"argv": ["true"], "env": {"DB_PASSWORD": "hunter2",
                                                   "MODE": "fast"}}})
    assert r.status == 201, r
    jid = r.json()["id"]
    sees = {"session:viewer": False, "session:operator": True,
            "session:admin": True, "token:admin/read": False,
            "token:admin/provision": False, "token:admin/exec": True,
            "token:admin/admin": True, "token:viewer/read": False,
            "token:operator/provision": False, "token:operator/exec": True}
    for name, who in make_principals(b):
        if who is None:
            continue
        if "token" in who:
            get = lambda p: b.control("GET", p, auth=who["token"])  # noqa: E731
        else:
            s = b.login(who["user"], who["password"])
            get = lambda p: s.request("GET", p)  # noqa: E731
        views = [get("/api/v1/jobs").json()[0], get("/api/v1/jobs/%d" % jid).json()]
        out = get("/api/v1/jobs/%d/output" % jid)
        if out.status == 200:
            views.append(out.json()["job"])
        for job in views:
            env = job["args"]["env"]
            assert set(env) == {"DB_PASSWORD", "MODE"}, (name, job)
            if sees[name]:
                assert env == {"DB_PASSWORD": "hunter2", "MODE": "fast"}, name
            else:
                assert env == {"DB_PASSWORD": "********", "MODE": "********"}, name
        body = b"".join([get("/api/v1/jobs").body,
                         get("/api/v1/jobs/%d" % jid).body, out.body])
        assert (b"hunter2" in body) == sees[name], name
    # The admin socket is admin.
    assert b.admin("GET", "/api/v1/jobs/%d" % jid).json()["args"]["env"]["DB_PASSWORD"] == "hunter2"
