#!/usr/bin/env bash
# Benchmark: our hbal against Debian's (Ganeti 3.0) hbal on generated DRBD
# clusters with skewed placement. Prints each tool's wall time and final
# score, and the time ratio. It reports figures only and always exits 0.
#
#   scripts/bench-hbal.sh [SIZES...]      e.g. 50/1000 100/2500 200/5000
#   BENCH_TIMEOUT=600 (seconds allowed to each Debian hbal run)
#   BENCH_SEED=1
set -uo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(50/1000 100/2500 200/5000)
timeout_s=${BENCH_TIMEOUT:-600}
seed=${BENCH_SEED:-1}
if ! cargo build --release -q -p htools --bins --examples; then
    echo "bench: build failed; no figures"
    exit 0
fi
ours=target/release/hbal
gen=target/release/examples/gencluster
theirs=$(command -v hbal 2>/dev/null || true)
if [ -z "$theirs" ] || [ "$theirs" -ef "$ours" ]; then
    theirs=/usr/bin/hbal
fi
[ -x "$theirs" ] || { echo "bench: Debian's hbal not found (apt-get install ganeti-htools); only our figures"; theirs=""; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

final_score() {
    awk '/^Cluster score improved from/ {s=$NF} /^Initial score:/ {if (s=="") s=$3} END {print (s==""?"n/a":s)}' "$1"
}
now() { date +%s.%N; }

printf '%-10s %12s %14s %12s %14s %10s\n' nodes/insts ours_s ours_score ganeti_s ganeti_score speedup
for s in "${sizes[@]}"; do
    n=${s%/*}; i=${s#*/}
    f="$dir/c-$n-$i.data"
    "$gen" "$n" "$i" "$seed" > "$f"
    t0=$(now); "$ours" -t "$f" > "$dir/ours.out" 2>&1; t1=$(now)
    ot=$(awk "BEGIN{print $t1 - $t0}"); os=$(final_score "$dir/ours.out")
    gt="n/a"; gs="n/a"; ratio="n/a"
    if [ -n "$theirs" ]; then
        t0=$(now)
        if timeout "$timeout_s" "$theirs" -t "$f" > "$dir/theirs.out" 2>&1; then
            t1=$(now); gt=$(awk "BEGIN{print $t1 - $t0}"); gs=$(final_score "$dir/theirs.out")
            ratio=$(awk "BEGIN{print $gt / $ot}")
        else
            gt=">$timeout_s"; gs="timeout"
            ratio=">$(awk "BEGIN{printf \"%.0f\", $timeout_s / $ot}")"
        fi
    fi
    fmt() { [[ "$1" =~ ^[0-9.]+$ ]] && printf '%.2f' "$1" || printf '%s' "$1"; }
    printf '%-10s %12s %14s %12s %14s %10s\n' "$n/$i" "$(fmt "$ot")" "$os" "$(fmt "$gt")" "$gs" "$(fmt "$ratio")"
done
exit 0
