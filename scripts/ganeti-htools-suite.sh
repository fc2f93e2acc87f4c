#!/usr/bin/env bash
# Ganeti's own htools shell test suite (test/hs/offline-test.sh and
# test/hs/shelltests/*.test of Ganeti's source), run unchanged against our
# htools binaries. A developer's tool: it needs a Ganeti checkout and
# Debian's `shelltestrunner`; it fetches nothing and CI does not run it.
#
#   scripts/ganeti-htools-suite.sh [-b BINDIR] [-f FILE]... [GANETI_SRC]
#
#   GANETI_SRC  a Ganeti source tree (3.0.x), or $GANETI_SRC; without one the
#               script says so and exits 0
#   -b BINDIR   where the htools binaries are (default: target/release of this
#               repository if hbal is there, else target/debug); pointing it
#               at Debian's /usr/lib/ganeti/3.0/usr/bin runs Ganeti's own
#   -f FILE     run only shelltests/htools-FILE.test (repeatable); default: all
#               files but mon-collector (ganeti-mond's collectors are not
#               htools)
#   -v          print the output of failing cases (shelltest's report)
#
# The test tree is copied to a temporary directory, where test/hs/hpc-htools
# and test/hs/<tool> become wrappers that exec BINDIR/<tool>; the Ganeti
# tree itself is not modified. Prints, per file, the cases that passed and
# failed, then the total; exits 1 if any case failed.
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
bindir="" files=() verbose=0
while getopts "b:f:v" o; do
    case "$o" in
        b) bindir="$OPTARG" ;;
        f) files+=("$OPTARG") ;;
        v) verbose=1 ;;
        *) sed -n '7,18p' "$0" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
src="${1:-${GANETI_SRC:-}}"

if [ -z "$src" ]; then
    echo "no Ganeti source tree given (argument or \$GANETI_SRC); nothing to run" >&2
    exit 0
fi
if [ ! -f "$src/test/hs/offline-test.sh" ]; then
    echo "$src: not a Ganeti source tree (no test/hs/offline-test.sh)" >&2
    exit 2
fi
if ! command -v shelltest >/dev/null; then
    echo "shelltest is missing (Debian: apt-get install shelltestrunner)" >&2
    exit 2
fi
if [ -z "$bindir" ]; then
    bindir="$repo/target/release"
    [ -x "$bindir/hbal" ] || bindir="$repo/target/debug"
fi
bindir="$(cd "$bindir" 2>/dev/null && pwd)" || { echo "no such directory: $bindir" >&2; exit 2; }
tools=(hail hbal hcheck hinfo hroller hscan hspace hsqueeze harep)
# Debian installs hail as an iallocator, outside the bin directory.
tool_path() {
    if [ ! -x "$bindir/$1" ] && [ -x "$bindir/../lib/ganeti/iallocators/$1" ]; then
        echo "$bindir/../lib/ganeti/iallocators/$1"
    else
        echo "$bindir/$1"
    fi
}
for t in "${tools[@]}"; do
    [ -x "$(tool_path "$t")" ] || echo "warning: $bindir/$t is missing (cargo build -p htools --bins)" >&2
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/test"
cp -r "$src/test/hs" "$src/test/data" "$work/test/"
# The suite calls the tools both as test/hs/<tool> and through
# test/hs/hpc-htools with $HTOOLS naming the tool (Ganeti's coverage build).
for t in "${tools[@]}"; do
    printf '#!/bin/sh\nexec %q "$@"\n' "$(tool_path "$t")" >"$work/test/hs/$t"
done
{
    echo '#!/bin/sh'
    echo 'case "$HTOOLS" in'
    for t in "${tools[@]}"; do
        printf '    %s) exec %q "$@" ;;\n' "$t" "$(tool_path "$t")"
    done
    echo '    *) echo "hpc-htools: unknown tool: $HTOOLS" >&2; exit 1 ;;'
    echo 'esac'
} >"$work/test/hs/hpc-htools"
for t in "${tools[@]}" hpc-htools; do chmod +x "$work/test/hs/$t"; done

if [ ${#files[@]} -eq 0 ]; then
    for f in "$work"/test/hs/shelltests/htools-*.test; do
        f="${f##*/htools-}"
        f="${f%.test}"
        [ "$f" = mon-collector ] || files+=("$f")
    done
fi

total_pass=0 total_fail=0 status=0
printf '%-16s %6s %6s\n' file passed failed
for f in "${files[@]}"; do
    # offline-test.sh builds its data files, then runs shelltest on the
    # file(s) its argument names.
    out="$(cd "$work" && SHELLTESTARGS="${SHELLTESTARGS:-}" ./test/hs/offline-test.sh "$f" 2>&1)"
    # shelltest's summary: " Passed  N  N" and " Failed  M  M".
    pass="$(sed -n 's/^ *Passed  *\([0-9]*\) .*/\1/p' <<<"$out" | tail -n1)"
    fail="$(sed -n 's/^ *Failed  *\([0-9]*\) .*/\1/p' <<<"$out" | tail -n1)"
    if [ -z "$pass" ]; then
        printf '%-16s %s\n' "$f" "did not run: $(grep -m1 -i fail <<<"$out")"
        status=1
        continue
    fi
    printf '%-16s %6s %6s\n' "$f" "$pass" "$fail"
    total_pass=$((total_pass + pass))
    total_fail=$((total_fail + fail))
    [ "$fail" -eq 0 ] || status=1
    [ "$verbose" -eq 0 ] || [ "$fail" -eq 0 ] || grep -v '^:.*\[OK\]$' <<<"$out"
done
printf '%-16s %6s %6s\n' total "$total_pass" "$total_fail"
exit "$status"
