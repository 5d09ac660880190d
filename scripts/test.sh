#!/usr/bin/env bash
# Build and test everything, as CI does (.ci/run calls this and nothing else). Made for a fresh
# Debian 12 as root: installs what it needs (apt), then
#   format      every C file as .clang-format lays it out (clang-format; a diff fails)
#   build       build/       RelWithDebInfo
#   build-asan  build-asan/  -DKEDGE_SANITIZE=ON (ASan + UBSan; the integration tests load the
#                            ASan plugin into mosquitto with libasan preloaded)
#   build-matrix build-{Release-gcc,Release-clang,Debug-clang}/: compiled only
#   packages    the .deb packages from build/ (cpack, into build/debs/) checked by lintian:
#               its errors fail the phase, its warnings are printed
# Every tree is built with -DKEDGE_WERROR=ON (warnings are errors here, not in every build).
#   test        ctest in build/
#   test-asan   ctest in build-asan/
#   test-dockerd the tests labelled "engine" (those that run containers) once more in build/,
#               on Debian's dockerd instead of podman (KEDGE_TEST_ENGINE=dockerd: each test
#               starts its own dockerd, scripts/engine.sh); prints the time this adds
#   fuzz        bash fuzz/run.sh, if it exists (KEDGE_FUZZ_SECONDS per target, default 20)
#   valgrind    bash scripts/valgrind.sh, if it exists
# prints "phase <name>: <seconds>s" after each, checks that both trees ran the same number of
# tests, and exits non-zero if anything failed.
#
# Environment:
#   CI=true              always run apt-get (update + install), and never skip a phase
#   KEDGE_TEST_SKIP=a,b  local runs only: phases to skip (build-asan, test-asan, build-matrix,
#                        packages, test-dockerd, fuzz, valgrind; build-asan implies test-asan); ignored when
#                        CI=true
#   KEDGE_FUZZ_SECONDS   fuzzing time per target (default 20)
#   KEDGE_TEST_JOBS      parallel build and ctest jobs (default: number of CPUs, at most 2
#                        for ctest: every integration test runs its own broker)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CI=${CI:-false}
SKIP=${KEDGE_TEST_SKIP:-}
[[ $CI == true ]] && SKIP=
JOBS=${KEDGE_TEST_JOBS:-$(nproc)}
CTEST_JOBS=$((JOBS < 2 ? JOBS : 2))
export KEDGE_FUZZ_SECONDS=${KEDGE_FUZZ_SECONDS:-20}

# zlib1g-dev: the SPDY/3.1 header compression of kubectl exec/attach (cloudbridge/stream/);
# python3-websocket: a second WebSocket client for its interop test (tests/unit/rc_interop.py).
# dpkg-dev (dpkg-shlibdeps), lintian and help2man are for the .deb packages (cpack; the man pages).
# The last line is the container engine for edged's tests (scripts/engine.sh, docs/containers.md):
# podman with runc (its crun cannot run containers under our hybrid cgroups), busybox-static for
# the offline images and curl for engine.sh. With --no-install-recommends, two things podman
# needs for bridge networking and port publishing must be named: netavark (containers-common
# Depends only on the virtual container-network-stack, for which apt would then pick
# containernetworking-plugins, the CNI backend we did not verify) and iptables (only a Suggests,
# but netavark runs it for NAT and port forwarding; nothing else pulls it in). aardvark-dns (DNS
# on user-defined networks) and catatonit (podman's own pods, --init) are not used.
# docker.io is the second engine (phase test-dockerd; it brings containerd and tini);
# docker-registry (CNCF distribution) and apache2-utils (htpasswd -B) make the private registry
# with TLS and basic auth that test_pull pulls from.
PACKAGES=(build-essential cmake pkg-config mosquitto mosquitto-clients mosquitto-dev
          libmosquitto-dev libyajl-dev libsqlite3-dev libwebsockets-dev libssl-dev check
          libsystemd-dev zlib1g-dev libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev
          python3-grpcio python3-grpc-tools python3-websocket
          valgrind clang clang-format libclang-rt-14-dev sqlite3
          dpkg-dev lintian help2man
          podman runc netavark iptables busybox-static curl
          docker.io docker-registry apache2-utils)

LOG_DIR=$REPO/build/test-logs
FAILED=()

note() {
    echo "test.sh: $*"
}

missing_packages() {
    local p
    for p in "${PACKAGES[@]}"; do
        [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] ||
            echo "$p"
    done
}

install_packages() {
    local missing
    mapfile -t missing < <(missing_packages)
    if [[ $CI != true && ${#missing[@]} -eq 0 ]]; then
        note "all packages present; skipping apt"
        return 0
    fi
    if [[ $(id -u) -ne 0 ]]; then
        note "missing packages (run as root to install them): ${missing[*]}"
        return 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update &&
        apt-get install -y --no-install-recommends "${PACKAGES[@]}"
}

# Whether a phase is skipped (never under CI=true). No ASan tree means no ASan tests.
skipped() {
    [[ ,$SKIP, == *,$1,* ]] || [[ $1 == test-asan && ,$SKIP, == *,build-asan,* ]]
}

# run_phase NAME COMMAND...: time it, print "phase NAME: Ns", remember a failure.
run_phase() {
    local name=$1 start end ms
    shift
    if skipped "$name"; then
        note "phase $name skipped (KEDGE_TEST_SKIP)"
        return 0
    fi
    echo "=== phase $name"
    start=$(date +%s%N)
    if "$@"; then
        :
    else
        FAILED+=("$name")
    fi
    end=$(date +%s%N)
    ms=$(((end - start) / 1000000))
    printf 'phase %s: %d.%01ds\n' "$name" $((ms / 1000)) $((ms % 1000 / 100))
}

build_tree() {
    local dir=$1
    shift
    cmake -S "$REPO" -B "$REPO/$dir" -DKEDGE_WERROR=ON "$@" &&
        cmake --build "$REPO/$dir" -j "$JOBS"
}

# format: every C file as the repository's .clang-format (Debian's clang-format) lays it out;
# the files that differ are named, and the fix is `clang-format -i FILE`.
check_format() {
    local f bad=0
    while IFS= read -r f; do
        if ! clang-format "$REPO/$f" | cmp -s - "$REPO/$f"; then
            echo "format: $f differs from .clang-format (clang-format -i $f)"
            bad=1
        fi
    done < <(git -C "$REPO" ls-files '*.c' '*.h')
    return $bad
}

# build_matrix: the build types and compilers a packager or developer may pick, each
# warning-free (-Werror); compiled only, the test phases run the RelWithDebInfo and ASan trees.
build_matrix() {
    local cfg type cc
    mkdir -p "$LOG_DIR"
    for cfg in Release:gcc Release:clang Debug:clang; do
        type=${cfg%%:*} cc=${cfg##*:}
        echo "build-matrix: $type with $cc"
        build_tree "build-$type-$cc" -DCMAKE_BUILD_TYPE="$type" -DCMAKE_C_COMPILER="$cc" \
            >"$LOG_DIR/build-$type-$cc.log" 2>&1 || {
            tail -40 "$LOG_DIR/build-$type-$cc.log"
            return 1
        }
    done
}

# packages: the .debs (cmake/packaging.cmake) from build/, then lintian on them. lintian's exit
# status fails the phase on errors only; warnings and the cpack log are printed, not fatal.
build_packages() {
    local debs=$REPO/build/debs
    mkdir -p "$LOG_DIR"
    rm -rf "$debs"
    if ! (cd "$REPO/build" && cpack -G DEB -B "$debs") >"$LOG_DIR/cpack.log" 2>&1; then
        tail -40 "$LOG_DIR/cpack.log"
        return 1
    fi
    ls -l "$debs"/*.deb
    lintian --fail-on error "$debs"/*.deb
}

# ctest in one tree; its output is kept in $LOG_DIR/<dir>.log for the count check.
ctest_tree() {
    local dir=$1
    mkdir -p "$LOG_DIR"
    # the ASan tree's large pull is smaller: the loop-not-stalled figures come from build/
    [[ $dir == build-asan ]] && export KEDGE_PULL_BIG_MB=${KEDGE_PULL_BIG_MB:-64}
    ctest --test-dir "$REPO/$dir" --output-on-failure -j "$CTEST_JOBS" 2>&1 |
        tee "$LOG_DIR/$dir.log"
    return "${PIPESTATUS[0]}"
}

# The engine tests once more on dockerd (ctest label "engine"); the time it adds is the phase's
# own line, printed again here next to the count.
ctest_dockerd() {
    local start rc
    mkdir -p "$LOG_DIR"
    start=$SECONDS
    KEDGE_TEST_ENGINE=dockerd KEDGE_PULL_BIG_MB=${KEDGE_PULL_BIG_MB:-64} \
        ctest --test-dir "$REPO/build" -L engine --output-on-failure \
        -j "$CTEST_JOBS" 2>&1 | tee "$LOG_DIR/build-dockerd.log"
    rc=${PIPESTATUS[0]}
    note "test-dockerd: $(ran_count build-dockerd) engine tests on dockerd added $((SECONDS - start))s"
    return "$rc"
}

# N from ctest's "... tests failed out of N" line, or nothing.
ran_count() {
    sed -n 's/.*tests failed out of \([0-9][0-9]*\).*/\1/p' "$LOG_DIR/$1.log" 2>/dev/null |
        tail -n 1
}

registered_count() {
    ctest --test-dir "$REPO/$1" -N 2>/dev/null | sed -n 's/^Total Tests: *\([0-9][0-9]*\).*/\1/p'
}

check_counts() {
    local n a rn ra
    n=$(registered_count build)
    a=$(registered_count build-asan)
    rn=$(ran_count build)
    ra=$(ran_count build-asan)
    note "tests registered: build=${n:-?} build-asan=${a:-?}; run: build=${rn:-?} build-asan=${ra:-?}"
    if [[ -z $n || -z $a || $n -eq 0 ]]; then
        note "no tests registered"
        return 1
    fi
    if [[ $n != "$a" || $rn != "$n" || $ra != "$a" ]]; then
        note "the two trees did not run the same tests"
        return 1
    fi
}

optional_script() {
    local script=$1
    if [[ ! -f $REPO/$script ]]; then
        note "$script does not exist yet; nothing to run"
        return 0
    fi
    (cd "$REPO" && bash "$script")
}

main() {
    local total_start=$SECONDS
    cd "$REPO"
    run_phase deps install_packages
    if [[ ${#FAILED[@]} -gt 0 ]]; then
        note "cannot install the build dependencies"
        exit 1
    fi
    run_phase format check_format
    run_phase build build_tree build -DCMAKE_BUILD_TYPE=RelWithDebInfo
    run_phase build-asan build_tree build-asan -DKEDGE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
    run_phase build-matrix build_matrix
    run_phase packages build_packages
    run_phase test ctest_tree build
    run_phase test-asan ctest_tree build-asan
    run_phase test-dockerd ctest_dockerd
    run_phase fuzz optional_script fuzz/run.sh
    run_phase valgrind optional_script scripts/valgrind.sh
    if skipped build-asan || skipped test-asan; then
        note "test counts not compared (ASan tree skipped)"
    else
        run_phase counts check_counts
    fi
    printf 'phase total: %ds\n' $((SECONDS - total_start))
    if [[ ${#FAILED[@]} -gt 0 ]]; then
        note "FAILED phases: ${FAILED[*]}"
        exit 1
    fi
    note "all phases passed"
}

main "$@"
