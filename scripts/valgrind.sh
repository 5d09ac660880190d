#!/usr/bin/env bash
# Valgrind stage of scripts/test.sh: the unit suites in-process (CK_FORK=no) and one
# integration suite with the real broker and plugin under valgrind (KEDGE_VALGRIND=1 makes the
# harness wrap mosquitto; a leak or an error makes the broker exit non-zero, which the test
# asserts). Uses the normal tree in build/. Exits non-zero on any valgrind finding.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$REPO/build
VG=(valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=1)
failed=0

for t in "$BUILD"/tests/unit/unit_*; do
    [[ -x $t ]] || continue
    echo "valgrind: $(basename "$t")"
    if ! CK_FORK=no CK_TIMEOUT_MULTIPLIER=20 "${VG[@]}" "$t" >/dev/null; then
        echo "valgrind: $(basename "$t") FAILED"
        failed=1
    fi
done

echo "valgrind: test_twin with mosquitto + kedge_plugin.so under valgrind"
if ! KEDGE_VALGRIND=1 CK_DEFAULT_TIMEOUT=600 "$BUILD/tests/integration/test_twin"; then
    echo "valgrind: test_twin FAILED"
    failed=1
fi
exit $failed
