# Bastion — build, test, run. See README.md.
# Sources are found by wildcard: bastionctl/*.c form bastionctl,
# bastion/main.c is the daemon's main, every other bastion/*.c is the daemon
# library (also linked into unit tests and fuzz targets), agentd/*.c the
# node agent and lib/*.c what more than one of them shares.

VERSION  := 0.1.0
PREFIX   ?= /usr/local
SBINDIR  ?= $(PREFIX)/sbin
BINDIR   ?= $(PREFIX)/bin
MANDIR   ?= $(PREFIX)/share/man
DATADIR  ?= $(PREFIX)/share/bastion
SYSCONFDIR ?= /etc
DESTDIR  ?=

BUILD    ?= build
CC       ?= gcc
# Each program links only the libraries it uses.
DAEMON_PKGS:= libmicrohttpd sqlite3 libpq jansson openssl inih gnutls libargon2 libcurl nettle hogweed
CTL_PKGS   := libcurl jansson openssl inih nettle hogweed
AGENT_PKGS := libcurl jansson openssl inih blkid nettle hogweed libzstd
PKGS       := $(sort $(DAEMON_PKGS) $(CTL_PKGS) $(AGENT_PKGS))
# The node agent's TLS and own cryptography (agentd/client_tls.c,
# agentd/crypto.c). Debian ships no .pc file for mbedTLS 2.28.
MBEDTLS_LIBS := -lmbedtls -lmbedx509 -lmbedcrypto
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
DAEMON_LIBS:= $(shell pkg-config --libs $(DAEMON_PKGS) 2>/dev/null) -lpthread
CTL_LIBS   := $(shell pkg-config --libs $(CTL_PKGS) 2>/dev/null)
AGENT_LIBS := $(shell pkg-config --libs $(AGENT_PKGS) 2>/dev/null) $(MBEDTLS_LIBS) -lpthread

WARN     := -Wall -Wextra -Wformat=2 -Wshadow -Wmissing-prototypes \
            -Wstrict-prototypes -Wno-unused-parameter -Werror
HARDEN   := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
OPT      ?= -O2 -g
CFLAGS   ?=
CFLAGS   += -std=gnu11 $(OPT) $(WARN) $(HARDEN) -Ilib \
            $(PKG_CFLAGS) -DBASTION_VERSION='"$(VERSION)"' \
            -DBASTION_DATADIR='"$(DATADIR)"'
LDFLAGS  += -pie -Wl,-z,relro,-z,now
LIBS     := $(PKG_LIBS) $(MBEDTLS_LIBS) -lpthread

LIB_SRC     := $(sort $(wildcard lib/*.c))
CTL_SRC     := $(sort $(wildcard bastionctl/*.c))
DAEMON_SRC  := $(filter-out bastion/main.c,$(sort $(wildcard bastion/*.c)))
AGENT_SRC   := $(sort $(wildcard agentd/*.c))
AGENT_MAIN  := $(filter agentd/main.c,$(AGENT_SRC))
AGENT_LIBSRC:= $(filter-out agentd/main.c,$(AGENT_SRC))
UNIT_SRC    := $(sort $(wildcard tests/unit/test_*.c))
FUZZ_SRC    := $(sort $(wildcard tests/fuzz/fuzz_*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIB_A    := $(BUILD)/libcommon.a
DAEMON_A := $(BUILD)/libbastiond.a
AGENT_A  := $(BUILD)/libagentd.a
BINS     := $(BUILD)/bin/bastion $(BUILD)/bin/bastionctl $(BUILD)/bin/agentd \
            $(BUILD)/bin/agentd-static
UNIT_BINS:= $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))


.PHONY: FORCE all deps test unit integration e2e sanitize fuzz fuzz-short analyze \
        run lab-vm install clean image bench browser-deps deb iso iso-test

all: $(BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(LIB_A): $(call obj,$(LIB_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(DAEMON_A): $(call obj,$(DAEMON_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(AGENT_A): $(call obj,$(AGENT_LIBSRC)) $(LIB_A)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $(call obj,$(AGENT_LIBSRC))

$(BUILD)/bin/bastion: $(call obj,bastion/main.c) $(DAEMON_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -Wl,--as-needed -o $@ $^ $(DAEMON_LIBS)

$(BUILD)/bin/bastionctl: $(call obj,$(CTL_SRC)) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -Wl,--as-needed -o $@ $^ $(CTL_LIBS)

$(BUILD)/bin/agentd: $(call obj,$(AGENT_MAIN)) $(AGENT_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -Wl,--as-needed -o $@ $^ $(AGENT_LIBS)

# agentd-static: the node agent the kickstart installs. No libcurl (its
# Debian build cannot be linked statically) and no OpenSSL (OpenSSL 3's
# code and heap kept it over its memory goal, issue 13): client_tls.c
# talks HTTPS on mbedTLS, crypto.c makes its key and CSR on mbedTLS, and
# lib/ verifies job signatures and codes base64 with Nettle. Fully static,
# so it runs on any x86_64 Linux (RHEL's glibc is older than ours, and
# RHEL has no libinih). The sanitizer build links it dynamically (ASan
# cannot be static) but runs the same code.
STATIC_PKGS    := jansson inih blkid hogweed nettle libzstd
# DT_RELR (-z pack-relative-relocs, glibc 2.36): the relative
# relocations a static-pie applies to itself at start-up packed as
# bitmaps, 7 KB instead of 485 KB of .rela.dyn read in at every start.
STATIC_LDFLAGS ?= -static-pie -Wl,-z,relro,-z,now -Wl,-z,pack-relative-relocs
STATIC_CPPFLAGS ?=
STATIC_LIBS    := $(MBEDTLS_LIBS) $(shell pkg-config --static --libs $(STATIC_PKGS) 2>/dev/null)
sobj = $(patsubst %.c,$(BUILD)/obj-static/%.o,$(1))

$(BUILD)/obj-static/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DAGENTD_STATIC -MMD -MP -c -o $@ $<

$(BUILD)/bin/agentd-static: $(call sobj,$(AGENT_SRC)) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(STATIC_LDFLAGS) -o $@ $^ $(STATIC_LIBS) 2>$(BUILD)/obj-static/link.log || \
	    { cat $(BUILD)/obj-static/link.log >&2; rm -f $@; exit 1; }
	@# glibc warns about what would need its own version's NSS modules
	@# at run time: getaddrinfo() (http1.c never calls it for an address,
	@# which is what kickstarts write). Anything else the linker says
	@# fails the build (OpenSSL's dlopen() and gethostbyname() would).
	@if grep -v -e ': in function ' -e "warning: Using 'getaddrinfo' in statically linked" \
	    $(BUILD)/obj-static/link.log | grep -q .; then cat $(BUILD)/obj-static/link.log >&2; rm -f $@; exit 1; fi

$(BUILD)/tests/%: tests/unit/%.c $(DAEMON_A) $(AGENT_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Ibastion -Iagentd $(LDFLAGS) -DTEST_SRCDIR='"$(CURDIR)"' -o $@ $< \
	    $(DAEMON_A) $(AGENT_A) $(LIB_A) $(LIBS) -lcmocka

-include $(shell find $(BUILD)/obj $(BUILD)/obj-static -name '*.d' 2>/dev/null)

# Objects that bake in paths or the version are rebuilt when the flags
# change (make install PREFIX=/usr after a plain make, for instance).
$(BUILD)/flags: FORCE
	@mkdir -p $(BUILD)
	@echo '$(CFLAGS)' | cmp -s - $@ || echo '$(CFLAGS)' > $@
$(call obj,bastion/config.c bastion/main.c $(CTL_SRC) $(AGENT_MAIN)) \
    $(call sobj,$(AGENT_MAIN)): $(BUILD)/flags
FORCE:

# --- dependencies ---------------------------------------------------------
deps:
	./appliance/deps.sh

# --- tests ----------------------------------------------------------------
# make test = unit + integration + e2e, then the same unit and integration
# suites under ASan+UBSan, short fuzz runs and static analysis.
# The discovery image is built (downloading two Debian packages the first
# time) before the suites enter their network namespaces.
test: all image deb browser-deps panel-deps $(UNIT_BINS)
	./tests/run.sh all

# The browser test's node modules (tests/integration/test_panel.py), from
# the committed lock file; only when it changed.
browser-deps: tests/browser/node_modules/.package-lock.json

# The panel's third-party modules (panel/package-lock.json: xterm.js for
# the guests' console) copied into webroot/vendor, served as /ui/vendor/.
PANEL_VENDOR := webroot/vendor/xterm.js webroot/vendor/xterm.css
panel-deps: $(PANEL_VENDOR)
panel/node_modules/.package-lock.json: panel/package-lock.json
	cd panel && npm ci --no-audit --no-fund --loglevel=error
	@touch $@
webroot/vendor/xterm.js: panel/node_modules/.package-lock.json
	install -d webroot/vendor
	install -m 0644 panel/node_modules/@xterm/xterm/lib/xterm.mjs $@
webroot/vendor/xterm.css: panel/node_modules/.package-lock.json
	install -d webroot/vendor
	install -m 0644 panel/node_modules/@xterm/xterm/css/xterm.css $@
tests/browser/node_modules/.package-lock.json: tests/browser/package-lock.json
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

unit: all $(UNIT_BINS)
	./tests/run.sh unit

integration: all image browser-deps panel-deps
	./tests/run.sh integration

e2e: all image deb
	./tests/run.sh e2e

# The appliance ISO installed and booted in QEMU (BIOS and UEFI) alone
# (make test and make e2e run it with the rest of the e2e suite).
iso-test: all iso
	./tests/run.sh e2e tests/e2e/test_appliance_iso.py

# libtirpc is linked in from the start: ASan's xdr interceptors find
# their real functions when the program starts, and libvirt (which agentd
# loads for a VM's console) would otherwise call through a null one.
sanitize:
	$(MAKE) BUILD=build/asan CC=clang \
	    OPT='-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all' \
	    HARDEN= LDFLAGS='-fsanitize=address,undefined -Wl,--no-as-needed -ltirpc -Wl,--as-needed' \
	    STATIC_LDFLAGS='-fsanitize=address,undefined' all \
	    $(patsubst $(BUILD)/%,build/asan/%,$(UNIT_BINS))

FUZZ_CFLAGS := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
fuzz-build:
	$(MAKE) BUILD=build/fuzz CC=clang OPT='$(FUZZ_CFLAGS)' HARDEN= \
	    LDFLAGS= build/fuzz/libbastiond.a build/fuzz/libcommon.a build/fuzz/libagentd.a
	@mkdir -p build/fuzz/bin
	set -e; for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	  clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -std=gnu11 -Ilib -Ibastion -Iagentd \
	    -DFUZZ_SRCDIR='"$(CURDIR)"' -DBASTION_VERSION='"$(VERSION)"' \
	    $(PKG_CFLAGS) -o build/fuzz/bin/$$n $$f build/fuzz/libbastiond.a \
	    build/fuzz/libagentd.a build/fuzz/libcommon.a $(LIBS); done

# make fuzz T=mac [SECONDS=600]
fuzz: fuzz-build
	./tests/fuzz/run.sh $(T) $(or $(SECONDS),600)

analyze:
	./tests/analyze.sh

# --- running --------------------------------------------------------------
run: all
	./appliance/make-run.sh

lab-vm: all
	./appliance/lab-vm.sh

# The discovery image, the debian-12 OS image (mmdebstrap, cached; its
# root also as an XFS image) and the installer's tools taken from it.
image:
	./image/build.sh
	./image/os.sh debian-12
	./image/os-fs.sh debian-12
	./image/build.sh --installer

# Debian packages into build/debs/ (debian/, appliance/deb.sh) and the
# appliance's installer ISO into build/images/ (image/iso.sh).
deb: image panel-deps
	./appliance/deb.sh

iso: deb
	./image/iso.sh

$(BUILD)/bench/%: bench/%.c $(DAEMON_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Ibastion $(LDFLAGS) -o $@ $< $(DAEMON_A) $(LIB_A) $(LIBS)

bench: all
	@echo "benchmarks: bench/dispatch, bench/render, bench/discovery, bench/agents, bench/fleet (see docs/benchmarks.md)"

# --- install (FHS, DESTDIR-aware) -----------------------------------------
install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(SYSCONFDIR)/bastion $(DESTDIR)$(DATADIR) \
	    $(DESTDIR)/lib/systemd/system
	install -m 0755 $(BUILD)/bin/bastion $(DESTDIR)$(SBINDIR)/bastion
	install -m 0755 $(BUILD)/bin/bastionctl $(DESTDIR)$(BINDIR)/bastionctl
	install -m 0755 $(BUILD)/bin/agentd $(DESTDIR)$(SBINDIR)/agentd
	install -m 0755 $(BUILD)/bin/agentd-static $(DESTDIR)$(SBINDIR)/agentd-static
	install -m 0644 docs/man/*.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 docs/man/*.8 $(DESTDIR)$(MANDIR)/man8/
	[ -e $(DESTDIR)$(SYSCONFDIR)/bastion/bastion.conf ] || \
	    install -m 0640 appliance/bastion.conf $(DESTDIR)$(SYSCONFDIR)/bastion/bastion.conf
	sed 's|/usr/local/sbin/|$(SBINDIR)/|g' appliance/bastion.service \
	    > $(DESTDIR)/lib/systemd/system/bastion.service
	chmod 0644 $(DESTDIR)/lib/systemd/system/bastion.service
	install -d $(DESTDIR)$(DATADIR)/kickstart $(DESTDIR)$(DATADIR)/ipxe
	install -m 0644 kickstart/*.mustache $(DESTDIR)$(DATADIR)/kickstart/
	install -m 0644 ipxe/*.mustache $(DESTDIR)$(DATADIR)/ipxe/
	install -d $(DESTDIR)$(DATADIR)/webroot
	install -m 0644 $(wildcard webroot/*.*) $(DESTDIR)$(DATADIR)/webroot/
	@for f in $(PANEL_VENDOR); do [ -s $$f ] || { \
	    echo "$$f is missing: make panel-deps (make deps installs it)" >&2; \
	    exit 1; }; done
	install -d $(DESTDIR)$(DATADIR)/webroot/vendor
	install -m 0644 $(PANEL_VENDOR) $(DESTDIR)$(DATADIR)/webroot/vendor/
	install -d $(DESTDIR)$(DATADIR)/appliance
	install -m 0644 appliance/agentd.service $(DESTDIR)$(DATADIR)/appliance/

clean:
	rm -rf build
