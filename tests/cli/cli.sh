#!/usr/bin/env bash
# The command line a user meets before anything touches the kernel: --mode
# takes names only, --version says what was built from what, the bash
# completion completes, and the man page documents every option --help lists.
# No root needed; nothing is attached (the one attach aims at an interface
# that does not exist and must fail on it).
#   PORTMUX=binary MAN_PAGE=configured-man-page VERSION=x.y.z LIBXDP_VERSION=a.b.c cli.sh
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
: "${PORTMUX:?} ${MAN_PAGE:?} ${VERSION:?} ${LIBXDP_VERSION:?}"

passed=0 failed=0
pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
# check WHAT COMMAND...: COMMAND must succeed
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }

# ------------------------------------------------------------------- --mode
config=$root/examples/demo.json
for number in 0 1 2; do
    out=$("$PORTMUX" attach lo --config "$config" --mode "$number" 2>&1)
    rc=$?
    check "--mode $number rejected as a usage error (exit $rc)" test "$rc" -eq 2
    check "--mode $number: the error names --mode and the three names" \
        grep -q -- "--mode: $number not in {native,generic,auto}" <<<"$out"
done
help=$("$PORTMUX" attach --help)
check "attach --help shows --mode native|generic|auto" grep -q -- "--mode native|generic|auto" <<<"$help"
check "attach --help shows no enum numbers" bash -c '! grep -qE -- "->|\{[0-9]" <<<"$1"' _ "$help"
# A name, in any case, gets past the command line: the attach then fails on
# the interface that does not exist (exit 1), never on --mode (exit 2).
missing_iface=pmxnone$$
out=$("$PORTMUX" attach "$missing_iface" --config "$config" --mode NATIVE 2>&1)
rc=$?
check "--mode NATIVE accepted; attach fails on the missing interface instead (exit $rc)" test "$rc" -eq 1
check "... and the error is not about --mode" bash -c '! grep -q -- "--mode" <<<"$1"' _ "$out"

# ---------------------------------------------------------------- --version
version=$("$PORTMUX" --version)
rc=$?
echo "$version" | sed 's/^/    /'
check "--version exits 0" test "$rc" -eq 0
check "--version: portmux $VERSION" grep -qx "portmux $VERSION" <<<"$version"
check "--version: a commit" grep -qE '^commit ([0-9a-f]{7,}(-dirty)?|unknown \(not built from a git checkout\))$' <<<"$version"
if git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
    head=$(git -C "$root" rev-parse --short=12 HEAD)
    check "--version: the commit is HEAD ($head)" grep -q "^commit $head" <<<"$version"
fi
check "--version: the libbpf version" grep -qE '^libbpf [0-9]+\.[0-9]+ \(built against [0-9.]+\)$' <<<"$version"
check "--version: libxdp $LIBXDP_VERSION" grep -qx "libxdp $LIBXDP_VERSION" <<<"$version"

# The verbs, as --help lists them: completion and man page must know each.
verbs=$("$PORTMUX" --help | sed -n '/^Subcommands:/,$s/^  \([a-z][a-z-]*\) .*/\1/p')
check "--help lists the verbs ($(xargs <<<"$verbs"))" test -n "$verbs"

# --------------------------------------------------------------- completion
# complete WORDS...: what the completion offers for the last word
complete_words() {
    bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
             _portmux; printf "%s\n" "${COMPREPLY[@]}"' _ "$root/scripts/bash-completion/portmux" "$@"
}
check "completion: 'portmux at' -> attach" test "$(complete_words portmux at)" = attach
check "completion: 'portmux st' -> stats status" test "$(complete_words portmux st | sort | xargs)" = "stats status"
check "completion: 'portmux attach lo --mode ' -> the three modes" \
    test "$(complete_words portmux attach lo --mode '' | xargs)" = "native generic auto"
check "completion: 'portmux stats --format p' -> prometheus" test "$(complete_words portmux stats --format p)" = prometheus
offered=$(complete_words portmux '')
for verb in $verbs; do
    check "completion offers the $verb command" grep -qx "$verb" <<<"$offered"
done
check "completion: 'portmux detach ' offers the interfaces" grep -qx lo <<<"$(complete_words portmux detach '')"
check "completion: 'portmux attach lo --c' -> --config" test "$(complete_words portmux attach lo --c)" = --config
check "completion: 'portmux check examples/demo' -> the JSON file" \
    bash -c 'cd "$1" && grep -qx examples/demo.json <<<"$2"' _ "$root" "$(cd "$root" && complete_words portmux check examples/demo)"

# ----------------------------------------------------------------- man page
check "man page: version $VERSION in its title" grep -q "\"portmux $VERSION\"" "$MAN_PAGE"
check "man page: every @VARIABLE@ filled in" bash -c '! grep -q "@[A-Z_]*@" "$1"' _ "$MAN_PAGE"
check "man page: an OPTIONS section" grep -qx '.SH OPTIONS' "$MAN_PAGE"
check "man page: an EXAMPLES section" grep -qx '.SH EXAMPLES' "$MAN_PAGE"
warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$MAN_PAGE" 2>&1 >/dev/null)
check "man page: groff has no warnings${warnings:+: $warnings}" test -z "$warnings"
# Every long option any --help lists is described in the man page.
rendered=$(LC_ALL=C.UTF-8 MANWIDTH=200 man -l "$MAN_PAGE" 2>/dev/null)
for verb in "" $verbs; do
    for option in $("$PORTMUX" $verb --help | grep -oE -- '--[a-z][a-z-]+' | sort -u); do
        check "man page documents ${verb:-portmux} $option" grep -qE -- "^ +(-[a-z]( [A-Z]+)?, )?$option\b" <<<"$rendered"
    done
done
for verb in $verbs; do
    check "man page documents the $verb command" grep -qE "^ +(portmux )?$verb\b" <<<"$rendered"
done

echo "$passed passed, $failed failed"
((failed == 0 && passed > 0))
