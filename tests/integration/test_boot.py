"""The boot listener: iPXE scripts, dispatch by state, boot files and the
discovery report, against a real bastion with real SQLite and dnsmasq."""
import json
import os
import socket

from harness import sample_report

MAC = "52:54:00:12:34:56"


def test_boot_ipxe_chains_to_dispatch(bastion):
    r = bastion.boot("GET", "/boot.ipxe")
    assert r.status == 200
    assert r.text.startswith("#!ipxe\n")
    assert "http://10.77.0.1:%d/dispatch?mac=${netX/mac}" % bastion.boot_port in r.text
    assert "uuid=${uuid}" in r.text and "platform=${platform}" in r.text


def test_unknown_mac_becomes_discovering_and_is_told_the_image_is_missing(bastion):
    r = bastion.dispatch(MAC, uuid="6A3B8C2E-1111-2222-3333-444455556666",
                         serial="QEMU-1", arch="x86_64", platform="pcbios")
    assert r.status == 200
    assert "DISCOVERY IMAGE IS NOT INSTALLED" in r.text
    assert MAC in r.text
    # Waits for a person instead of looping: no kernel, no automatic chain.
    assert "kernel" not in r.text
    assert "prompt --key r" in r.text
    m = bastion.admin("GET", "/api/v1/machines/" + MAC).json()
    assert m["state"] == "discovering"
    assert m["uuid"] == "6a3b8c2e-1111-2222-3333-444455556666"
    assert m["platform"] == "pcbios" and m["arch"] == "x86_64"
    ev = bastion.admin("GET", "/api/v1/machines/%s/events" % MAC).json()
    assert len(ev) == 1 and ev[0]["state"] == "discovering"


def test_discovery_script_when_image_present(bastion):
    os.makedirs(bastion.discovery_dir, exist_ok=True)
    for name, data in (("vmlinuz", b"KERNEL" * 100), ("initrd.img", b"INITRD" * 50)):
        with open(os.path.join(bastion.discovery_dir, name), "wb") as f:
            f.write(data)
    r = bastion.dispatch(MAC)
    base = "http://10.77.0.1:%d" % bastion.boot_port
    assert "kernel %s/boot/discovery/vmlinuz" % base in r.text
    assert "initrd %s/boot/discovery/initrd.img" % base in r.text
    assert "bastion.mac=%s" % MAC in r.text
    k = bastion.boot("GET", "/boot/discovery/vmlinuz")
    assert k.status == 200 and k.body == b"KERNEL" * 100
    assert bastion.boot("GET", "/boot/discovery/initrd.img").body == b"INITRD" * 50


def test_boot_files_are_an_allowlist(bastion):
    for path in ("/boot/discovery/..%2f..%2fetc%2fpasswd", "/boot/discovery/other",
                 "/boot/../etc/passwd", "/boot/passwd", "/boot/ipxe.efi/x"):
        r = bastion.boot("GET", path)
        assert r.status == 404, path
        assert "error" in r.json()
    r = bastion.boot("GET", "/boot/ipxe.efi")
    assert r.status == 200
    with open("/usr/lib/ipxe/ipxe.efi", "rb") as f:
        assert r.body == f.read()


def test_every_mac_spelling_is_one_machine(bastion):
    for spelling in ("52:54:00:AB:CD:EF", "52-54-00-ab-cd-ef", "5254.00ab.cdef",
                     "525400abcdef", "01-52-54-00-ab-cd-ef"):
        assert bastion.dispatch(spelling).status == 200
    macs = [m["mac"] for m in bastion.admin("GET", "/api/v1/machines").json()]
    assert macs == ["52:54:00:ab:cd:ef"]


def test_bad_dispatch_input_is_a_json_4xx(bastion):
    for q in ("", "mac=", "mac=zz:zz:zz:zz:zz:zz", "mac=01:00:5e:00:00:01",
              "mac=00:00:00:00:00:00", "mac=52:54:00:12:34:56&uuid=not%20a%20uuid",
              "mac=52:54:00:12:34:56&arch=" + "x" * 40,
              "mac=52:54:00:12:34:56&serial=%22%3Bquote",
              "mac=52:54:00:12:34:56&ip=999.1.1.1"):
        r = bastion.boot("GET", "/dispatch?" + q)
        assert r.status == 400, q
        err = r.json()["error"]
        assert err["code"] == "bad_request" and err["message"]
    assert bastion.admin("GET", "/api/v1/machines").json() == []


def test_unknown_routes_and_methods(bastion):
    r = bastion.boot("GET", "/nope")
    assert r.status == 404 and r.json()["error"]["code"] == "not_found"
    r = bastion.boot("POST", "/dispatch?mac=" + MAC)
    assert r.status == 405 and r.json()["error"]["code"] == "method_not_allowed"
    # The operator API is not on the boot listener.
    assert bastion.boot("GET", "/api/v1/machines").status == 404
    assert bastion.alive()


def test_discovery_report_moves_machine_to_discovered(bastion):
    bastion.dispatch(MAC)
    rep = sample_report(MAC.upper())
    r = bastion.boot("POST", "/api/v1/discover", rep)
    assert r.status == 200, r
    assert r.json() == {"mac": MAC, "state": "discovered"}
    m = bastion.admin("GET", "/api/v1/machines/" + MAC).json()
    assert m["state"] == "discovered"
    assert m["hardware"]["cpu"]["threads"] == 2
    assert m["hardware"]["nics"][0]["mac"] == MAC   # normalised
    # Discovered machines go to the next boot device.
    d = bastion.dispatch(MAC)
    assert "exit" in d.text and "kernel" not in d.text
    # The inventory is the one taken in discovering: a later report is
    # refused and changes nothing.
    rep["memory"]["total_bytes"] = 2 * 1073741824
    r = bastion.boot("POST", "/api/v1/discover", rep)
    assert r.status == 409 and r.json()["error"]["code"] == "wrong_state", r
    m = bastion.admin("GET", "/api/v1/machines/" + MAC).json()
    assert m["hardware"]["memory"]["total_bytes"] == 1073741824


def test_discovery_report_errors_change_nothing(bastion):
    bastion.dispatch(MAC)
    cases = [
        (b"{not json", 400, "bad_json"),
        (b"[]", 400, "bad_json"),
        (b"", 400, "bad_request"),
        (json.dumps(sample_report("52:54:00:99:99:99")).encode(), 404, "unknown_machine"),
        (json.dumps(sample_report(MAC, firmware="coreboot")).encode(), 422, "invalid_report"),
        (json.dumps(sample_report(MAC, cpu={"sockets": 1})).encode(), 422, "invalid_report"),
        (json.dumps(sample_report(MAC, disks=[{"name": "vda"}])).encode(), 422, "invalid_report"),
        (json.dumps(sample_report(MAC, nics=[{"name": "e", "mac": "bogus"}])).encode(), 422, "invalid_report"),
        (json.dumps(sample_report(MAC, disks=[{"name": "d%d" % i, "size_bytes": 1} for i in range(300)])).encode(), 422, "invalid_report"),
    ]
    for body, status, code in cases:
        r = bastion.boot("POST", "/api/v1/discover", body,
                         headers={"Content-Type": "application/json"})
        assert r.status == status, (body[:80], r)
        assert r.json()["error"]["code"] == code
    # Refused from the Content-Length alone, before the body is read.
    with socket.create_connection((bastion.boot_host, bastion.boot_port), timeout=5) as s:
        s.sendall(b"POST /api/v1/discover HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 2000000\r\n\r\n")
        head = s.recv(4096)
    assert head.startswith(b"HTTP/1.1 413") and b'"too_large"' in head
    # Chunked uploads have no length up front: cut off at the cap.
    with socket.create_connection((bastion.boot_host, bastion.boot_port), timeout=10) as s:
        s.sendall(b"POST /api/v1/discover HTTP/1.1\r\nHost: x\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 65536
        try:
            for _ in range(20):
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            s.sendall(b"0\r\n\r\n")
        except OSError:
            pass
        head = s.recv(4096)
    assert head.startswith(b"HTTP/1.1 413") and b'"too_large"' in head
    m = bastion.admin("GET", "/api/v1/machines/" + MAC).json()
    assert m["state"] == "discovering" and m["hardware"] is None
    assert bastion.alive()


def test_ca_pem_is_published_on_the_boot_listener(bastion):
    r = bastion.boot("GET", "/ca.pem")
    with open(bastion.ca_pem, "rb") as f:
        assert r.status == 200 and r.body == f.read()


def test_duplicate_macs_across_machines_are_refused(bastion):
    a, b = "52:54:00:d0:00:01", "52:54:00:d0:00:02"
    spare = "52:54:00:d0:00:99"
    bastion.dispatch(a)
    bastion.dispatch(b)
    nic = lambda m: {"name": "eth%d" % int(m[-1], 16), "mac": m, "driver": "virtio_net"}
    r = bastion.boot("POST", "/api/v1/discover", sample_report(a, nics=[nic(a), nic(spare)]))
    assert r.status == 200, r
    # b claims a's spare NIC: refused, nothing stored for b.
    r = bastion.boot("POST", "/api/v1/discover", sample_report(b, nics=[nic(b), nic(spare)]))
    assert r.status == 409 and r.json()["error"]["code"] == "duplicate_mac"
    assert spare in r.json()["error"]["message"] and a in r.json()["error"]["message"]
    # b claims a's own (booting) MAC as a second NIC: refused too.
    r = bastion.boot("POST", "/api/v1/discover", sample_report(b, nics=[nic(b), nic(a)]))
    assert r.status == 409 and a in r.json()["error"]["message"]
    m = bastion.admin("GET", "/api/v1/machines/" + b).json()
    assert m["state"] == "discovering" and m["hardware"] is None
    # b with its own NICs only: taken.
    assert bastion.boot("POST", "/api/v1/discover",
                        sample_report(b, nics=[nic(b)])).status == 200
