#!/usr/bin/env bash
# e2e-timeout: 420
# The .deb as a user gets it: built with cpack from this build, lintian-clean
# (0 errors), dependencies that every distro in the README's table has (no
# libbpf, libxdp or libfmt: they are inside the binary), a unit that
# `systemd-analyze verify` accepts, and, installed for real with dpkg -i, a
# binary that runs scripts/demo.sh (attach through the statically linked
# libxdp, UDP and TCP balancing, detach). Purged at the end; a machine that
# already has a portmux package installed is left alone (skipped).
E2E_TIME_LIMIT=${E2E_TIME_LIMIT:-400}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_root
require_portmux
require_tools cpack lintian dpkg-deb systemd-analyze setpriv file gzip
trap package_cleanup EXIT

BUILD_DIR=$(cd "$(dirname "$PORTMUX")/.." && pwd)
INSTALLED=0
package_cleanup() {
    if ((INSTALLED)); then
        dpkg --purge portmux >/dev/null 2>&1 || echo "package_install: dpkg --purge portmux failed" >&2
    fi
    e2e_cleanup
}

if dpkg-query -W -f='${db:Status-Status}' portmux 2>/dev/null | grep -q installed; then
    printf 'SKIP %s: a portmux package is already installed here; not replacing it\n' "$E2E_NAME"
    exit 77
fi
e2e_setup

prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$BUILD_DIR/CMakeCache.txt")
[[ $prefix == /usr ]] ||
    die "$BUILD_DIR is configured with CMAKE_INSTALL_PREFIX=$prefix; the package needs /usr (scripts/build.sh sets it)"

# ------------------------------------------------------------------ build
OUT=$E2E_WORKDIR/deb
mkdir -p "$OUT"
assert_ok "cpack builds the .deb" cpack --config "$BUILD_DIR/CPackConfig.cmake" -B "$OUT" || finish
DEB=$(ls "$OUT"/portmux_*.deb)
log "package: $(basename "$DEB") ($(stat -c %s "$DEB") bytes)"

# ---------------------------------------------------------------- lintian
# lintian refuses nothing as root but says it should not run so: run it as nobody.
chmod 755 "$E2E_WORKDIR" "$OUT"
chmod 644 "$DEB"
lintian_out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME=/tmp \
              lintian --display-level '>=warning' "$DEB" 2>&1)
printf '%s\n' "${lintian_out:-(no tags at warning level or above)}" | sed 's/^/    lintian | /'
assert_eq 0 "$(grep -c '^E: ' <<<"$lintian_out")" "lintian errors"

# ------------------------------------------------------- package contents
contents=$(dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's|^\./|/|')
for path in /usr/sbin/portmux /etc/portmux/ /usr/lib/systemd/system/portmux@.service \
            /usr/share/man/man8/portmux.8.gz /usr/share/doc/portmux/copyright \
            /usr/share/doc/portmux/changelog.Debian.gz /usr/share/bash-completion/completions/portmux; do
    assert_match "the package has $path" "^$path\$" "$contents"
done
assert_no_match "nothing under /usr/etc or /usr/local" '^/usr/(etc|local)/' "$contents"
extract=$E2E_WORKDIR/extract
dpkg-deb -x "$DEB" "$extract"
assert_match "/usr/sbin/portmux is stripped" ', stripped' "$(file -L "$extract/usr/sbin/portmux")"
assert_ok "the man page is valid gzip" gzip -t "$extract/usr/share/man/man8/portmux.8.gz"
changelog_version=$(gzip -dc "$extract/usr/share/doc/portmux/changelog.Debian.gz" | sed -n '1s/^portmux (\([^)]*\)).*/\1/p')
assert_eq "$(dpkg-deb -f "$DEB" Version)" "$changelog_version" "changelog's latest entry is the package version"

# ----------------------------------------------------------- dependencies
depends=$(dpkg-deb -f "$DEB" Depends)
log "Depends: $depends"
assert_no_match "Depends names no libbpf, libxdp or libfmt (linked in)" 'libbpf|libxdp|libfmt' "$depends"
assert_ok "no libbpf, libxdp or libfmt among the binary's shared libraries" \
    bash -c '! objdump -p "$1" | grep -E "NEEDED +(libbpf|libxdp|libfmt)"' _ "$extract/usr/sbin/portmux"
# The oldest distro the README's table says portmux runs on is Ubuntu 22.04:
# the versions it ships of every library the package may depend on. A new
# dependency fails here until someone has checked 22.04 has it.
declare -A JAMMY=(
    [libc6]=2.35-0ubuntu3 [libelf1]=0.186-1build1 [libgcc-s1]=12.1.0-2ubuntu1~22.04
    [libstdc++6]=12.1.0-2ubuntu1~22.04 [zlib1g]=1:1.2.11.dfsg-2ubuntu9
    [libmicrohttpd12]=0.9.75-3ubuntu1 [libsystemd0]=249.11-0ubuntu3
)
IFS=',' read -ra entries <<<"$depends"
for entry in "${entries[@]}"; do
    read -r name op version <<<"$(sed -E 's/^ *([^ (]+) *(\(([<>=]+) *([^)]+)\))?.*/\1 \3 \4/' <<<"$entry")"
    if [[ -z ${JAMMY[$name]:-} ]]; then
        fail "dependency $name: not in this test's table of Ubuntu 22.04 versions"
    elif [[ -z $op ]] || dpkg --compare-versions "${JAMMY[$name]}" "$op" "$version"; then
        pass "dependency $name ${op:+($op $version) }is met by Ubuntu 22.04's ${JAMMY[$name]}"
    else
        fail "dependency $name ($op $version) is not met by Ubuntu 22.04's ${JAMMY[$name]}"
    fi
done

# ----------------------------------------------------------------- install
assert_ok "dpkg -i installs it" dpkg -i "$DEB" || finish
INSTALLED=1
assert_match "installed: portmux --version names libbpf and libxdp" '^libbpf .*' "$(/usr/sbin/portmux --version)"
assert_ok "man finds the installed man page" man -w portmux
assert_ok "/etc/portmux exists" test -d /etc/portmux

# systemd-analyze verify wants an instance of the template: a copy named for one.
units=$E2E_WORKDIR/units
mkdir -p "$units"
cp /usr/lib/systemd/system/portmux@.service "$units/portmux@pmxverify0.service"
verify_out=$(systemd-analyze verify "$units/portmux@pmxverify0.service" 2>&1)
verify_rc=$?
printf '%s\n' "$verify_out" | sed 's/^/    systemd-analyze | /'
assert_eq "0 0" "$verify_rc $(grep -c . <<<"$verify_out")" "systemd-analyze verify: exit status and lines of complaints"

# ------------------------------------------------------------------- demo
demo_out=$(PORTMUX=/usr/sbin/portmux NO_COLOR=1 timeout 120 "$REPO_ROOT/scripts/demo.sh" 2>&1)
demo_rc=$?
printf '%s\n' "$demo_out" | tail -25 | sed 's/^/    demo | /'
assert_eq 0 "$demo_rc" "scripts/demo.sh with the installed /usr/sbin/portmux"
assert_match "the demo attached with the installed binary" 'attached to lo' "$demo_out"

# ------------------------------------------------------------------ remove
assert_ok "dpkg --purge removes it" dpkg --purge portmux && INSTALLED=0
assert_ok "nothing of it is left in /usr/sbin or /etc" \
    bash -c '! test -e /usr/sbin/portmux && ! test -e /etc/portmux'
finish
