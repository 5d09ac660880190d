#!/usr/bin/env bash
# Build the libFuzzer targets with clang in build-fuzz/ and run each for
# ${KEDGE_FUZZ_SECONDS:-20} seconds on a scratch copy of its seed corpus (the committed corpus
# is never modified). Any crash, leak, timeout or failed property makes the script exit
# non-zero and print the reproducer; rerun one with `build-fuzz/fuzz/<target> <file>`.
#
# Environment: KEDGE_FUZZ_SECONDS (per target), KEDGE_FUZZ_BUILD (build dir, default
# build-fuzz), KEDGE_FUZZ_TARGETS (space-separated subset), KEDGE_FUZZ_JOBS (build jobs).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${KEDGE_FUZZ_SECONDS:-20}
build=${KEDGE_FUZZ_BUILD:-$root/build-fuzz}
targets=${KEDGE_FUZZ_TARGETS:-fuzz_topic fuzz_twin_update fuzz_json fuzz_coalesce fuzz_kebody fuzz_podspec fuzz_grpc fuzz_dmi_convert fuzz_rc_ws fuzz_rc_spdy fuzz_stream_frame}
jobs=${KEDGE_FUZZ_JOBS:-$(nproc)}

dict_for() {
    case "$1" in
    fuzz_topic) echo "$root/fuzz/topic.dict" ;;
    fuzz_podspec) echo "$root/fuzz/podspec.dict" ;;
    *) echo "$root/fuzz/twin.dict" ;;
    esac
}

echo "fuzz: configuring $build with clang"
mkdir -p "$build"
CC=clang cmake -S "$root" -B "$build" -DKEDGE_FUZZ=ON -DKEDGE_TESTS=OFF -DKEDGE_WERROR=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build/configure.log" 2>&1 || {
    cat "$build/configure.log"
    echo "fuzz: configure failed" >&2
    exit 1
}
# shellcheck disable=SC2086 # word splitting of the target list is intended
cmake --build "$build" -j"$jobs" --target $targets

scratch=$(mktemp -d /tmp/kedge-fuzz-XXXXXX)
trap 'rm -rf "$scratch"' EXIT
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"

failed=0
for t in $targets; do
    corpus="$scratch/$t"
    rm -rf "${artifacts:?}/$t"
    mkdir -p "$corpus" "$artifacts/$t"
    cp -R "$root/fuzz/corpus/$t/." "$corpus/"
    log="$artifacts/$t.log"
    echo "fuzz: $t for ${seconds}s ($(find "$corpus" -type f | wc -l) seeds)"
    if "$build/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -dict="$(dict_for "$t")" -artifact_prefix="$artifacts/$t/" -print_final_stats=1 \
        "$corpus" >"$log" 2>&1; then
        grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "$log" | tail -2 || true
    else
        failed=1
        echo "fuzz: $t FAILED; log: $log" >&2
        grep -E 'ERROR|SUMMARY|Test unit written|==[0-9]+==' "$log" | head -20 >&2 || true
        for f in "$artifacts/$t"/*; do
            [ -f "$f" ] && echo "fuzz: reproducer: $f  (run: $build/fuzz/$t $f)" >&2
        done
    fi
done
exit $failed
