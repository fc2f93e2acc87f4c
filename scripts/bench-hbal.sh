#!/usr/bin/env bash
# Benchmark: our hbal against Debian's (Ganeti 3.0) hbal on generated
# clusters (equal nodes, DRBD instances striped over all nodes, with a share
# of the primaries piled on the first tenth of the nodes; see
# htools::gen::StripedSpec). For each size it prints each tool's wall time,
# number of moves and final score, and the time ratio; then the same for the
# first move alone (-l 1), which Ganeti finishes even where the whole run
# times out. Our CPU time is shown too: the machine may be shared. It
# reports figures only and always exits 0.
#
#   scripts/bench-hbal.sh [SIZES...]      default 50/1000 100/2500 200/5000 1000/25000
#       a size is NODES/INSTANCES[/SKEW[/HOT_PERCENT]]; e.g. 200/5000/5/12
#       needs only 2 moves, so Debian's hbal can finish it (in about an
#       hour here: BENCH_TIMEOUT=7200)
#   BENCH_TIMEOUT=600   seconds allowed to each Debian hbal run
#   BENCH_SKEW=10       per mille of the instances placed on the hot nodes
#                       (10 percent of the nodes, from the first)
#   BENCH_GANETI_MAX=200  largest node count Debian's hbal is run on
#
# Debian's results are cached under target/hbal-bench-cache, keyed by the
# cluster file's checksum, the options and the timeout (delete it to rerun).
set -uo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(50/1000 100/2500 200/5000 1000/25000)
timeout_s=${BENCH_TIMEOUT:-600}
skew=${BENCH_SKEW:-10}
gmax=${BENCH_GANETI_MAX:-200}
if ! cargo build --release -q -p htools --bins --examples; then
    echo "bench: build failed; no figures"
    exit 0
fi
ours=target/release/hbal
gen=target/release/examples/genstriped
theirs=/usr/bin/hbal
[ -x "$theirs" ] || { echo "bench: Debian's hbal not found (apt-get install ganeti-htools); only our figures"; theirs=""; }
cache=target/hbal-bench-cache
mkdir -p "$cache"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

now() { date +%s.%N; }
# run TOOL FILE OUT [ARGS...]: prints the wall time, or "timeout"; the
# CPU time (user + system) goes to OUT.cpu
run() {
    local tool=$1 f=$2 out=$3; shift 3
    local t0 t1
    t0=$(now)
    if timeout "$timeout_s" /usr/bin/time -f '%U %S' -o "$out.cpu" "$tool" -t "$f" "$@" > "$out" 2>&1; then
        t1=$(now); awk "BEGIN{printf \"%.3f\", $t1 - $t0}"
    else
        echo timeout
    fi
}
cpu() { awk '{printf "%.3f", $1 + $2}' "$1.cpu" 2>/dev/null || echo n/a; }
# Debian's hbal, through the cache
run_theirs() {
    local f=$1 out=$2; shift 2
    local key
    key=$(sha256sum "$f" | cut -c1-16)-$(echo "$* t$timeout_s" | tr ' /' '_-')
    if [ ! -f "$cache/$key.time" ]; then
        run "$theirs" "$f" "$cache/$key.out" "$@" > "$cache/$key.time"
    fi
    cp "$cache/$key.out" "$out"
    cat "$cache/$key.time"
}
final_score() {
    awk '/^Cluster score improved from/ {s=$NF} /^Initial score:/ {if (s=="") s=$3} END {print (s==""?"n/a":s)}' "$1"
}
moves() {
    awk -F= '/^Solution length=/ {m=$2} END {print (m==""?"n/a":m)}' "$1"
}
ratio() {
    if [[ "$1" =~ ^[0-9.]+$ && "$2" =~ ^[0-9.]+$ ]]; then
        awk "BEGIN{printf \"%.0fx\", $1 / $2}"
    elif [ "$1" = timeout ] && [[ "$2" =~ ^[0-9.]+$ ]]; then
        awk "BEGIN{printf \">%.0fx\", $timeout_s / $2}"
    else
        echo n/a
    fi
}

for mode in full first; do
    if [ $mode = full ]; then
        echo "== whole run (hbal -t FILE), Debian's timeout ${timeout_s}s"
        args=()
    else
        echo "== first move only (hbal -t FILE -l 1)"
        args=(-l 1)
    fi
    printf '%-15s %9s %9s %6s %11s | %9s %6s %11s | %8s\n' size ours_s ours_cpu moves score ganeti_s moves score speedup
    for s in "${sizes[@]}"; do
        IFS=/ read -r n i sk ht <<< "$s"
        sk=${sk:-$skew}; ht=${ht:-10}
        f="$dir/c-$n-$i-$sk-$ht.data"
        [ -f "$f" ] || "$gen" "$n" "$i" "$sk" "$ht" > "$f"
        ot=$(run "$ours" "$f" "$dir/ours.out" "${args[@]}")
        gt=skipped; gm=-; gs=-
        if [ -n "$theirs" ] && [ "$n" -le "$gmax" ]; then
            gt=$(run_theirs "$f" "$dir/theirs.out" "${args[@]}")
            if [ "$gt" = timeout ]; then gm=-; gs=-; else gm=$(moves "$dir/theirs.out"); gs=$(final_score "$dir/theirs.out"); fi
        fi
        printf '%-15s %9s %9s %6s %11s | %9s %6s %11s | %8s\n' "$s" "$ot" "$(cpu "$dir/ours.out")" "$(moves "$dir/ours.out")" \
            "$(final_score "$dir/ours.out")" "$gt" "$gm" "$gs" "$(ratio "$gt" "$ot")"
    done
done
exit 0
