#!/usr/bin/env bash
# kedge benchmarks. Each one builds what it needs (RelWithDebInfo, in its own build tree so a
# developer's sanitizer build is never measured), runs brokers on 127.0.0.1 from generated
# configs in a scratch directory, prints baseline and kedge side by side with their ratio, and
# ends with one summary line. Targets are printed next to the figures; a missed target is not
# a failure: the exit status is non-zero only when the measurement itself broke.
#
# Environment:
#   KEDGE_BENCH_BUILD=DIR   build tree (default: <repo>/build-bench)
#   KEDGE_BENCH_REPS=N      alternating plain/kedge pairs per window (default 5; pods: 3)
#   KEDGE_KEEP_TMP=1        keep the scratch directory (broker logs, databases, configs)
#   KEDGE_BENCH_OFFLINE_N=N twin updates in the offline run (default 1000000)
#   MOSQUITTO=PATH          broker binary (default /usr/sbin/mosquitto)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${KEDGE_BENCH_BUILD:-$ROOT/build-bench}
MOSQ=${MOSQUITTO:-/usr/sbin/mosquitto}
REPS=${KEDGE_BENCH_REPS:-5}
NODE=kedge-bench
BRIDGE_PW=bench-$$-$RANDOM$RANDOM # the bridge identity's password, for the stand-in
WORK=
BROKER_PID=

usage() {
    cat <<EOF
usage: scripts/bench.sh BENCHMARK

benchmarks:
  twin    twin update round trips at 1 and 64 in flight vs. bare broker loopback (1000
          devices, QoS 1); broker RSS with 10k devices x 10 twins; broker start to first twin
          get answered with those 10k devices; 1 000 000 twin updates with no bridge attached
          (rate at the start and after them, outbox rows, kedge.db size). Ends with
          'twin: w64_ratio=R w1_p50_ratio=R w64_per_s=N rss_growth_mb=N startup_10k_ms=N
          offline_start_per_s=N offline_1m_per_s=N offline_outbox_rows=N'.
  relay   device -> cloud messages/s through broker + plugin + kedge-bridge to kedge-cloudsim
          (rate limit off and on) vs. bare loopback; the bridge's RSS idle and under load. Ends
          with 'relay: ratio=R per_s=N bridge_rss_idle_mb=N bridge_rss_load_mb=N'.

  pods    pod insert at kedge-cloudsim -> Running reported back, through kedge-bridge's Edged
          and a private podman engine (scripts/engine.sh; needs root and podman), for 1 and
          20 pods, vs. the same containers made straight through the engine's API; the
          bridge's RSS with 20 pods running. Ends with
          'pods: one_s=S twenty_s=S direct_ratio=R bridge_rss_mb=N'.

  dmi     ReportDeviceStatus calls/s through kedge-bridge's DMI socket for 1000 devices at 1
          and 64 in flight (64 streams on one connection), side by side with MQTT twin updates
          of the same content in the same run (target >= 0.5x MQTT). Ends with
          'dmi: w1_ratio=R w64_ratio=R w1_dmi_per_s=N w64_dmi_per_s=N w64_mqtt_per_s=N'.

environment: KEDGE_BENCH_BUILD, KEDGE_BENCH_REPS, KEDGE_KEEP_TMP=1, MOSQUITTO (see the header
of this script).
EOF
}

die() {
    echo "bench: $*" >&2
    exit 1
}

# cleanup [RC]: the exit status to keep (default: the one the EXIT trap was entered with)
cleanup() {
    local rc=${1:-$?}
    if [[ -n $BROKER_PID ]]; then
        kill -TERM "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
        BROKER_PID=
    fi
    if [[ -n $WORK && -d $WORK ]]; then
        if [[ ${KEDGE_KEEP_TMP:-0} == 1 ]]; then
            echo "bench: kept $WORK" >&2
        else
            rm -rf -- "$WORK"
        fi
    fi
    exit "$rc"
}

# ---- setup -----------------------------------------------------------------------------------

need_sqlite3() {
    command -v sqlite3 >/dev/null && return
    [[ $(id -u) == 0 ]] || die "the sqlite3 CLI is missing (apt-get install sqlite3)"
    echo "bench: installing the sqlite3 CLI" >&2
    { apt-get update -qq && apt-get install -y -qq sqlite3; } >&2 || die "cannot install sqlite3"
}

build() {
    echo "bench: building in $BUILD (RelWithDebInfo)" >&2
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKEDGE_SANITIZE=OFF \
        -DKEDGE_UNSAFE_PUBLISH_BEFORE_COMMIT=OFF -DKEDGE_TESTS=OFF >"$WORK/cmake.log" 2>&1 ||
        { cat "$WORK/cmake.log" >&2; die "cmake configure failed"; }
    cmake --build "$BUILD" -j2 --target kedge_plugin bench_twin >>"$WORK/cmake.log" 2>&1 ||
        { cat "$WORK/cmake.log" >&2; die "build failed"; }
    PLUGIN=$BUILD/kedge_plugin.so
    BENCH=$BUILD/bench/bench_twin
}

# KubeEdge's beego-era DDL (docs/kubeedge-wire.md §3.1): what an edgecore.db looks like, as the
# recorded fixture has it (unit_schema checks it against include/kedge/schema.h).
beego_ddl() {
    sed -n '/^CREATE TABLE/,/;$/p' "$ROOT/tests/fixtures/edgecore-meta.sql"
}

# seed_db FILE DEVICES DIGITS TWINS_PER_DEVICE(1|10): devices bench/dev-NNNN as edgecore
# stores them (the recursive-CTE template of spec/edgecore-recorded/seed.sql). With 1 twin it
# is the int "temperature"; with 10, a mix of int/float/boolean/string twins.
seed_db() {
    local file=$1 n=$2 digits=$3 twins=$4 tset
    if [[ $twins == 1 ]]; then
        tset="('temperature','int','20')"
    else
        tset="('temperature','int','20'),('humidity','float','40.5'),
              ('pressure','float','1013.25'),('switch','boolean','true'),('mode','string','auto'),
              ('setpoint','int','21'),('fan-speed','int','3'),('firmware','string','v1.2.3'),
              ('battery','float','87.5'),('door-open','boolean','false')"
    fi
    {
        beego_ddl
        if ((n > 0)); then cat <<EOF
BEGIN;
WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM c WHERE i+1 < $n)
  INSERT INTO device (id,name,description,state,last_online)
  SELECT printf('bench/dev-%0${digits}d',i), printf('dev-%0${digits}d',i), '', 'unknown', ''
  FROM c;
WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM c WHERE i+1 < $n),
  t(name,type,val) AS (VALUES $tset)
  INSERT INTO device_twin (deviceid,name,description,expected,actual,expected_meta,actual_meta,
                           expected_version,actual_version,optional,attr_type,metadata)
  SELECT printf('bench/dev-%0${digits}d',c.i), t.name, '', t.val, t.val,
         '{"timestamp":1700000000000}', '{"timestamp":1700000000000}',
         '{"cloud":0,"edge":0}', '{"cloud":0,"edge":0}', 0, t.type, ''
  FROM c, t;
COMMIT;
EOF
        fi
    } | sqlite3 -bail "$file" || die "seeding $file failed"
}

# write_conf FILE PORT DB LOG
write_conf() {
    {
        echo "per_listener_settings false"
        echo "listener $2 127.0.0.1"
        echo "allow_anonymous true"
        echo "set_tcp_nodelay true"
        echo "persistence false"
        [[ $(id -u) == 0 ]] && echo "user root"
        echo "log_dest file $4"
        echo "plugin $PLUGIN"
        echo "plugin_opt_db_path $3"
        echo "plugin_opt_node_name $NODE"
        echo "plugin_opt_bridge_password $BRIDGE_PW"
    } >"$1"
}

# start_broker NAME DB: a broker in the background, ready when its log says "running".
# Sets PORT and BROKER_PID. Retries on a new port if it dies (lost the race for the port).
start_broker() {
    local name=$1 db=$2 attempt conf log i
    for attempt in 1 2 3; do
        PORT=$("$BENCH" freeport) || die "no free port"
        conf=$WORK/$name.conf
        log=$WORK/$name.log
        : >"$log"
        write_conf "$conf" "$PORT" "$db" "$log"
        "$MOSQ" -c "$conf" >"$WORK/$name.out" 2>&1 &
        BROKER_PID=$!
        for ((i = 0; i < 1000; i++)); do
            grep -q 'running$' "$log" 2>/dev/null && return 0
            kill -0 "$BROKER_PID" 2>/dev/null || break
            sleep 0.01
        done
        kill -TERM "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
        BROKER_PID=
        echo "bench: broker $name did not start (attempt $attempt):" >&2
        cat "$log" "$WORK/$name.out" >&2
    done
    die "broker $name would not start"
}

stop_broker() {
    local rc=0
    kill -TERM "$BROKER_PID" || die "broker pid $BROKER_PID is gone"
    wait "$BROKER_PID" || rc=$?
    BROKER_PID=
    [[ $rc == 0 ]] || die "broker exited with status $rc"
}

# startup_run NAME DB DEVICE EXPECT: one bench_twin startup measurement (it forks the broker
# itself so its clock starts before the fork); prints its "startup ..." line.
startup_run() {
    local name=$1 db=$2 dev=$3 expect=$4 attempt rc conf log
    for attempt in 1 2 3; do
        PORT=$("$BENCH" freeport) || die "no free port"
        conf=$WORK/$name.conf
        log=$WORK/$name.log
        : >"$log"
        write_conf "$conf" "$PORT" "$db" "$log"
        rc=0
        "$BENCH" startup --port "$PORT" --conf "$conf" --device "$dev" --expect "$expect" \
            --broker "$MOSQ" --broker-out "$WORK/$name.out" || rc=$?
        [[ $rc == 0 ]] && return 0
        [[ $rc == 3 ]] || { cat "$log" >&2; die "startup run $name failed (exit $rc)"; }
        echo "bench: broker for $name exited early (attempt $attempt):" >&2
        cat "$log" "$WORK/$name.out" >&2
    done
    die "startup run $name: broker would not start"
}

field() { # field KEY LINE -> value of KEY=value
    local kv
    for kv in $2; do
        [[ $kv == "$1="* ]] && { echo "${kv#*=}"; return; }
    done
    die "no $1= in: $2"
}

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2}'; }

# ---- the twin benchmark ------------------------------------------------------------------------

bench_twin() {
    local line rt_out p a b i
    need_sqlite3
    build

    echo "== twin: kedge DeviceTwin in the broker vs. the same broker's bare loopback"
    echo "   broker $({ "$MOSQ" -h 2>/dev/null || true; } | head -1 | sed 's/ version / /')," \
        "plugin $PLUGIN, $(nproc) CPUs, $(date -u +%FT%TZ)"
    echo "   load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine" \
        "moves wall-clock figures; broker CPU figures move less)"

    echo "-- seeding (sqlite3, beego DDL)"
    seed_db "$WORK/rt.db" 1000 4 1
    seed_db "$WORK/empty.db" 0 4 1
    seed_db "$WORK/big.db" 10000 5 10
    echo "   rt.db 1000 devices x 1 twin; big.db $(sqlite3 "$WORK/big.db" \
        'SELECT count(*) FROM device') devices, $(sqlite3 "$WORK/big.db" \
        'SELECT count(*) FROM device_twin') twins, $(($(stat -c %s "$WORK/big.db") / 1024)) KiB"

    echo "-- round trips: 1000 devices, QoS 1, one client; plain = publish to bench/echo/<k>"
    echo "   and get it back via bench/echo/#; kedge = twin/update -> twin/update/result"
    echo "   (each run: N requests, reply matched by event_id; $REPS alternating pairs per window;"
    echo "   a bridge stand-in acks the outbox entry each update makes, as kedge-bridge would)"
    start_broker rt "$WORK/rt.db"
    rt_out=$WORK/rt.out.txt
    "$BENCH" roundtrip --port "$PORT" --devices 1000 --prefix bench/dev- --digits 4 \
        --reps "$REPS" --n64 20000 --n1 5000 --warmup 2000 --broker-pid "$BROKER_PID" \
        --bridge-password "$BRIDGE_PW" --node "$NODE" |
        tee "$rt_out" ||
        die "round-trip run failed (broker log: $WORK/rt.log)"
    stop_broker
    line=$(grep '^RESULT ' "$rt_out") || die "no RESULT line from bench_twin roundtrip"
    local w64_ratio w1_ratio w64_rate
    w64_ratio=$(field w64_ratio "$line")
    w1_ratio=$(field w1_p50_ratio "$line")
    w64_rate=$(field w64_per_s "$line")

    echo "-- offline: ${KEDGE_BENCH_OFFLINE_N:-1000000} twin updates, 1000 devices, QoS 1 w=64, no bridge"
    echo "   attached (nothing drains the outbox: each device's cloud report is folded into the"
    echo "   one waiting); rate and broker RSS per 50 000; the first chunk vs. the last"
    seed_db "$WORK/off.db" 1000 4 1
    start_broker off "$WORK/off.db"
    "$BENCH" offline --port "$PORT" --devices 1000 --prefix bench/dev- --digits 4 \
        --total "${KEDGE_BENCH_OFFLINE_N:-1000000}" --chunk 50000 --broker-pid "$BROKER_PID" |
        tee "$WORK/off.out.txt" || die "offline run failed (broker log: $WORK/off.log)"
    stop_broker
    line=$(grep '^RESULT ' "$WORK/off.out.txt") || die "no RESULT line from bench_twin offline"
    local off_first off_last off_rows off_states off_kb off_wal_kb
    off_first=$(field first_per_s "$line")
    off_last=$(field last_per_s "$line")
    off_rows=$(sqlite3 "$WORK/off.db" 'SELECT count(*) FROM kedge_outbox')
    off_states=$(sqlite3 "$WORK/off.db" 'SELECT count(*) FROM kedge_outbox WHERE subject IS NOT NULL')
    off_kb=$(($(stat -c %s "$WORK/off.db") / 1024))
    off_wal_kb=$(($( (stat -c %s "$WORK/off.db-wal" 2>/dev/null || echo 0)) / 1024))
    printf 'offline  updates=%s  start=%s msg/s  after=%s msg/s  ratio=%s  (target: no slowdown)\n' \
        "$(field offline_updates "$line")" "$off_first" "$off_last" \
        "$(awk -v a="$off_first" -v b="$off_last" 'BEGIN {printf "%.2f", b / a}')"
    printf 'offline  kedge_outbox rows=%s (twin entries %s; target <= 1000 devices)  kedge.db=%s KiB' \
        "$off_rows" "$off_states" "$off_kb"
    printf ' (+ WAL %s KiB)  broker RSS first/last chunk=%s/%s KiB\n' "$off_wal_kb" \
        "$(field first_rss_kb "$line")" "$(field last_rss_kb "$line")"

    echo "-- memory: broker VmRSS right after its first twin/get/result (3 runs each)"
    local rss_a=() rss_b=() hwm_b=() st_first st=() st_cpu=() load_ms=()
    for i in 1 2 3; do
        line=$(startup_run "empty$i" "$WORK/empty.db" bench/dev-00000 any)
        echo "   empty db:   $line"
        rss_a+=("$(field rss_kb "$line")")
    done
    # First start on an edgecore-shaped DB: kedge adds its two indexes once (store.c).
    cp "$WORK/big.db" "$WORK/big-run.db"
    line=$(startup_run big0 "$WORK/big-run.db" bench/dev-09999 ok)
    echo "   10k first:  $line   (first open of an edgecore.db: creates kedge's indexes)"
    st_first=$(field ms "$line")
    for i in 1 2 3; do
        line=$(startup_run "big$i" "$WORK/big-run.db" bench/dev-09999 ok)
        echo "   10k:        $line"
        rss_b+=("$(field rss_kb "$line")")
        hwm_b+=("$(field hwm_kb "$line")")
        st+=("$(field ms "$line")")
        st_cpu+=("$(field broker_cpu_ms "$line")")
        p=$(sed -n 's/.*twin: loaded devices=\([0-9]*\) .* in \([0-9]*\) ms.*/\2/p' \
            "$WORK/big$i.log" | tail -1)
        load_ms+=("${p:-?}")
    done
    a=$(median "${rss_a[@]}")
    b=$(median "${rss_b[@]}")
    local growth
    growth=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.1f", (b - a) / 1024}')
    printf 'broker_rss  empty_db=%.1f MB  10k_devices_x10_twins=%.1f MB (peak %.1f MB)' \
        "$(awk -v v="$a" 'BEGIN {print v/1024}')" "$(awk -v v="$b" 'BEGIN {print v/1024}')" \
        "$(awk -v v="$(median "${hwm_b[@]}")" 'BEGIN {print v/1024}')"
    printf '  growth=%s MB  (target <= 30 MB; MB = 2^20 bytes, medians)\n' "$growth"

    echo "-- startup: fork/exec of the broker -> first twin/get/result, 10k devices x 10 twins"
    local st_med
    st_med=$(median "${st[@]}")
    printf 'startup_10k  first_open=%.0f ms  restarts=%s ms  median=%.0f ms  ' \
        "$st_first" "$(printf '%.0f/' "${st[@]}" | sed 's,/$,,')" "$st_med"
    printf '(target <= 300 ms; edgecore > 12000 ms)\n'
    echo "   broker CPU time until answered: $(printf '%.0f ' "${st_cpu[@]}")ms;" \
        "plugin's own load time (broker log, 'twin: loaded devices='): ${load_ms[*]} ms"
    echo "   load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

    printf 'twin: w64_ratio=%s w1_p50_ratio=%s w64_per_s=%s rss_growth_mb=%s startup_10k_ms=%.0f' \
        "$w64_ratio" "$w1_ratio" "$w64_rate" "$growth" "$st_med"
    printf ' offline_start_per_s=%s offline_1m_per_s=%s offline_outbox_rows=%s\n' \
        "$off_first" "$off_last" "$off_rows"
}

# ---- relay: device -> cloud through broker + plugin + bridge -------------------------------

SIM_PID=
BRIDGE_PID=

relay_cleanup() {
    local p
    for p in "$BRIDGE_PID" "$SIM_PID"; do
        [[ -n $p ]] || continue
        kill -TERM "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    BRIDGE_PID="" SIM_PID=""
}

# relay_build [TARGET...]: the relay set, plus any extra targets (the pods bench adds its own)
relay_build() {
    echo "bench: building in $BUILD-relay (RelWithDebInfo)" >&2
    cmake -S "$ROOT" -B "$BUILD-relay" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKEDGE_SANITIZE=OFF \
        -DKEDGE_UNSAFE_PUBLISH_BEFORE_COMMIT=OFF -DKEDGE_TESTS=ON >"$WORK/cmake.log" 2>&1 ||
        { cat "$WORK/cmake.log" >&2; die "cmake configure failed"; }
    cmake --build "$BUILD-relay" -j2 --target kedge_plugin kedge-bridge kedge-cloudsim \
        bench_relay bench_twin "$@" >>"$WORK/cmake.log" 2>&1 ||
        { cat "$WORK/cmake.log" >&2; die "build failed"; }
    PLUGIN=$BUILD-relay/kedge_plugin.so
    BENCH=$BUILD-relay/bench/bench_twin
    RELAY=$BUILD-relay/bench/bench_relay
    BRIDGE=$BUILD-relay/cloudbridge/kedge-bridge
    SIM=$BUILD-relay/tests/cloudsim/kedge-cloudsim
}

start_cloudsim() {
    local i line
    "$SIM" --certs "$WORK/certs" --node "$NODE" --port 0 --control-port 0 \
        >"$WORK/sim.out" 2>"$WORK/sim.log" &
    SIM_PID=$!
    for ((i = 0; i < 500; i++)); do
        line=$(grep -m1 '^cloudsim: ready' "$WORK/sim.out" 2>/dev/null || true)
        [[ -n $line ]] && break
        sleep 0.02
    done
    [[ -n $line ]] || die "kedge-cloudsim did not start: $(cat "$WORK/sim.log")"
    WSS_PORT=$(sed -n 's/.*wss_port=\([0-9]*\).*/\1/p' <<<"$line")
    CONTROL_PORT=$(sed -n 's/.*control_port=\([0-9]*\).*/\1/p' <<<"$line")
}

# start_bridge QPS [KEY=VALUE...]: later keys override earlier ones (log_level=warn here)
start_bridge() {
    local i qps=$1
    shift
    printf '%s\n' "$BRIDGE_PW" >"$WORK/bridge.password"
    "$BRIDGE" node_name="$NODE" broker_port="$PORT" broker_password_file="$WORK/bridge.password" \
        cloud_port="$WSS_PORT" tls_ca_file="$WORK/certs/rootCA.crt" \
        tls_cert_file="$WORK/certs/edge.crt" tls_key_file="$WORK/certs/edge.key" \
        db_path="$WORK/bridge.db" meta_db_path="$WORK/meta.db" cloud_qps="$qps" \
        log_level=warn "$@" >"$WORK/bridge.log" 2>&1 &
    BRIDGE_PID=$!
    for ((i = 0; i < 500; i++)); do
        curl -s "http://127.0.0.1:$CONTROL_PORT/state" | grep -q '"connected":true' && return 0
        sleep 0.02
    done
    die "the bridge did not connect: $(cat "$WORK/bridge.log")"
}

stop_bridge() {
    kill -TERM "$BRIDGE_PID" 2>/dev/null || true
    wait "$BRIDGE_PID" 2>/dev/null || true
    BRIDGE_PID=
}

rss_mb() {
    awk -v k="$2" '$1 == k":" { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

field_of() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$2"; }

bench_relay() {
    local n=${KEDGE_RELAY_N:-20000} i out lb kd lbs=() kds=() idle load ratio rate qps_line
    local idle_detail
    need_sqlite3
    relay_build
    trap 'bench_rc=$?; relay_cleanup; cleanup "$bench_rc"' EXIT
    echo "== relay: device -> cloud through broker + plugin + kedge-bridge + kedge-cloudsim,"
    echo "   against the same broker's bare loopback; $(nproc) CPUs, $(date -u +%FT%TZ)"
    echo "   load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    seed_db "$WORK/relay.db" 0 4 1
    start_cloudsim
    start_broker relay "$WORK/relay.db"
    start_bridge 0
    sleep 1
    idle=$(rss_mb "$BRIDGE_PID" VmRSS)
    idle_detail=$(awk '/^(Pss|Private_Clean|Private_Dirty|Shared_Clean):/ {
        printf "%s%s=%.1f", sep, tolower($1), $2 / 1024; sep = " " }' \
        "/proc/$BRIDGE_PID/smaps_rollup" | tr -d ':')
    echo "-- $n QoS 1 messages from one client, 64 in flight; cloud_qps=0 (limit off)"
    for ((i = 1; i <= REPS; i++)); do
        out=$("$RELAY" loopback --port "$PORT" --n "$n") || die "loopback run failed"
        echo "   rep=$i $out"
        lbs+=("$(field_of rate "$out")")
        out=$("$RELAY" kedge --port "$PORT" --control-port "$CONTROL_PORT" --n "$n") ||
            die "kedge run failed"
        echo "   rep=$i $out"
        kds+=("$(field_of rate "$out")")
        [[ $(field_of lost "$out") == 0 ]] || echo "   (messages missing at the cloud: see above)"
    done
    load=$(rss_mb "$BRIDGE_PID" VmHWM)
    lb=$(printf '%s\n' "${lbs[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    kd=$(printf '%s\n' "${kds[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    ratio=$(awk -v a="$kd" -v b="$lb" 'BEGIN { printf "%.2f", a / b }')
    echo "relay qos1 w=64  loopback=$lb msg/s  kedge=$kd msg/s  ratio=$ratio  (target >= 0.3)"
    stop_bridge
    echo "-- the same with edgecore's rate limit on (cloud_qps=30, burst 60), 300 messages"
    start_bridge 30
    qps_line=$("$RELAY" kedge --port "$PORT" --control-port "$CONTROL_PORT" --n 300 \
        --timeout-s 60) || die "rate-limited run failed"
    echo "   $qps_line  (expected about 30/s after the burst of 60)"
    stop_bridge
    stop_broker
    relay_cleanup
    echo "bridge_rss  idle=$idle MB  under_load(peak)=$load MB  (target <= 10 MB)"
    echo "   idle breakdown (MB): $idle_detail; shared_clean is library code (libcrypto alone"
    echo "   is ~4 MB of it) shared with every process that maps the same libraries"
    rate=$kd
    printf 'relay: ratio=%s per_s=%s bridge_rss_idle_mb=%s bridge_rss_load_mb=%s\n' \
        "$ratio" "$rate" "$idle" "$load"
}

# ---- pods: pod insert at the cloud -> Running reported, through Edged and a real engine -------

ENGINE_DIR=

pods_cleanup() {
    relay_cleanup
    if [[ -n $BROKER_PID ]]; then
        kill -TERM "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
        BROKER_PID=
    fi
    if [[ -n $ENGINE_DIR ]]; then
        # before $WORK goes: the engine's overlay mounts live under it
        KEDGE_ENGINE_KEEP_DIR=${KEDGE_KEEP_TMP:-} "$ROOT/scripts/engine.sh" stop "$ENGINE_DIR" \
            >/dev/null || echo "bench: engine stop failed for $ENGINE_DIR" >&2
        ENGINE_DIR=
    fi
}

# pods_run MODE N REP [ARG...]: one bench_pods run; prints its line, indented, and keeps it in
# POD_LINE
pods_run() {
    local mode=$1 n=$2 rep=$3
    shift 3
    POD_LINE=$("$PODS" "$mode" --engine "$ENGINE_SOCK" --node "$NODE" --n "$n" --run "$rep" \
        --control-port "$CONTROL_PORT" "$@") ||
        die "pods $mode n=$n run $rep failed (bridge log: $WORK/bridge.log)"
    echo "   rep=$rep $POD_LINE"
}

bench_pods() {
    local reps=${KEDGE_BENCH_REPS:-3} i out
    local d1=() k1=() d20=() k20=() rss=() patches=()
    local md1 mk1 md20 mk20 r1 r20 rss_med
    need_sqlite3
    relay_build bench_pods
    PODS=$BUILD-relay/bench/bench_pods
    trap 'bench_rc=$?; pods_cleanup; cleanup "$bench_rc"' EXIT
    echo "== pods: pod insert at kedge-cloudsim -> status.phase Running back at cloudsim, through"
    echo "   broker + plugin + kedge-bridge (Edged) + podman's Docker API, vs. the same containers"
    echo "   made straight through the engine's API; $(nproc) CPUs, $(date -u +%FT%TZ)"
    echo "   load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (engine work is CPU-bound:"
    echo "   other work on the machine moves both sides; the alternation keeps the ratio fair)"
    ENGINE_DIR=$WORK/engine
    out=$("$ROOT/scripts/engine.sh" start "$ENGINE_DIR" 2>"$WORK/engine-start.log") ||
        { cat "$WORK/engine-start.log" >&2; die "the engine did not start"; }
    ENGINE_SOCK=$(sed -n 's/^engine: ready socket=\([^ ]*\) .*/\1/p' <<<"$out")
    [[ -S $ENGINE_SOCK ]] || die "no engine socket in: $out"
    echo "   engine: $(podman --version), socket $ENGINE_SOCK"
    seed_db "$WORK/pods.db" 0 4 1
    start_cloudsim
    start_broker pods "$WORK/pods.db"
    start_bridge 30 engine_socket="$ENGINE_SOCK" pod_infra_image=localhost/pause:edge \
        pods_dir="$WORK/pods" log_level=notice
    echo "-- pods of one container (busybox sleep 3600) + infra (pause); direct: create+start"
    echo "   infra, create+start app, inspect until running, 8 pods in flight (edged's engine"
    echo "   client keeps 8 calls in flight); kedge: POST /send of the inserts, then GET /pods"
    echo "   every 20 ms until every pod is Running. Between runs everything is deleted."
    echo "   warm-up (not counted): first containers of a fresh engine"
    pods_run direct 1 0
    pods_run kedge 1 0
    for ((i = 1; i <= reps; i++)); do
        pods_run direct 1 "$i"
        d1+=("$(field_of seconds "$POD_LINE")")
        pods_run kedge 1 "$i"
        k1+=("$(field_of seconds "$POD_LINE")")
        pods_run direct 20 "$i"
        d20+=("$(field_of seconds "$POD_LINE")")
        pods_run kedge 20 "$i" --rss-pid "$BRIDGE_PID"
        k20+=("$(field_of seconds "$POD_LINE")")
        rss+=("$(field_of rss_kb "$POD_LINE")")
        patches+=("$(field_of patches "$POD_LINE")")
    done
    kill -0 "$BRIDGE_PID" 2>/dev/null || die "the bridge died: $(tail -20 "$WORK/bridge.log")"
    md1=$(median "${d1[@]}")
    mk1=$(median "${k1[@]}")
    md20=$(median "${d20[@]}")
    mk20=$(median "${k20[@]}")
    rss_med=$(awk -v v="$(median "${rss[@]}")" 'BEGIN { printf "%.1f", v / 1024 }')
    r1=$(awk -v a="$mk1" -v b="$md1" 'BEGIN { printf "%.2f", a / b }')
    r20=$(awk -v a="$mk20" -v b="$md20" 'BEGIN { printf "%.2f", a / b }')
    echo "   status patches applied at cloudsim per 20-pod run: ${patches[*]}"
    echo "   edged/engine lines in the bridge's log (notice and up), besides pods added/removed:"
    sed -E 's/^[0-9]+: //; s/bench-[0-9]+/bench-N/g; s/[0-9a-f]{64}/ID/g;
            s/kedge-[0-9]+-[0-9]+-[0-9]+/UID/g' "$WORK/bridge.log" |
        grep -E '^(edged|engine):' | grep -vE ' (added|removed)$|runtime connected|pods in ' |
        sort | uniq -c | sort -rn | head -6 | cut -c1-96 | sed 's/^/   /' || true
    echo "-- medians of $reps alternating pairs; ratio = kedge / direct"
    printf 'pods  1 pod:   direct=%.3f s  kedge=%.3f s  ratio=%s  (target <= 1.5)\n' \
        "$md1" "$mk1" "$r1"
    printf 'pods 20 pods:  direct=%.3f s  kedge=%.3f s  ratio=%s  (target <= 1.5)\n' \
        "$md20" "$mk20" "$r20"
    echo "bridge_rss  20 pods running: $rss_med MB (VmRSS, median; target <= 12 MB)"
    stop_bridge
    pods_cleanup
    printf 'pods: one_s=%.3f twenty_s=%.3f direct_ratio=%s bridge_rss_mb=%s\n' \
        "$mk1" "$mk20" "$r20" "$rss_med"
}

# ---- dmi: ReportDeviceStatus through the bridge's DMI socket vs. MQTT twin updates -----------

bench_dmi() {
    need_sqlite3
    relay_build bench_dmi
    DMIB=$BUILD-relay/bench/bench_dmi
    trap 'bench_rc=$?; relay_cleanup; cleanup "$bench_rc"' EXIT
    echo "== dmi: ReportDeviceStatus calls/s through kedge-bridge's DMI socket (one gRPC"
    echo "   connection, W concurrent streams, each answered after the plugin's commit) vs. MQTT"
    echo "   twin updates of the same content (QoS 1, W in flight, over when the result is back),"
    echo "   1000 devices round-robin; $(nproc) CPUs, $(date -u +%FT%TZ)"
    echo "   load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    seed_db "$WORK/dmi.db" 0 4 1
    start_cloudsim
    start_broker dmi "$WORK/dmi.db"
    start_bridge 0 dmi_socket="$WORK/dmi.sock"
    echo "-- setup: a DeviceModel, one membership and 1000 Devices of protocol bench-virtual from"
    echo "   the cloud (cloudsim /send), until a report of the last device is answered OK"
    "$DMIB" setup --control-port "$CONTROL_PORT" --node "$NODE" --dmi "$WORK/dmi.sock" \
        --devices 1000 || die "dmi setup failed (bridge log: $WORK/bridge.log)"
    echo "-- $REPS alternating mqtt/dmi pairs per window; medians; ratio = dmi / mqtt"
    # its last line is the summary
    "$DMIB" run --port "$PORT" --dmi "$WORK/dmi.sock" --devices 1000 --reps "$REPS" ||
        die "dmi run failed (bridge log: $WORK/bridge.log)"
    kill -0 "$BRIDGE_PID" 2>/dev/null || die "the bridge died: $(tail -20 "$WORK/bridge.log")"
    stop_bridge
    stop_broker
    relay_cleanup
}

main() {
    case ${1:-} in
    twin | relay | pods | dmi) ;;
    -h | --help)
        usage
        exit 0
        ;;
    "")
        usage >&2
        exit 2
        ;;
    *)
        echo "bench: unknown benchmark '$1'" >&2
        usage >&2
        exit 2
        ;;
    esac
    [[ -x $MOSQ ]] || die "no broker at $MOSQ"
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    WORK=$(mktemp -d /tmp/kedge-bench.XXXXXX)
    "bench_$1"
}

main "$@"
