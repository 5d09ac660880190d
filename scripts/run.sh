#!/usr/bin/env bash
# Run a kedge edge node in the foreground: mosquitto with kedge_plugin.so (EventBus +
# DeviceTwin), kedge-bridge (EdgeHub, MetaManager, the node) and, when no cloudcore is
# configured, kedge-cloudsim as the local cloud. Made for a fresh Debian 12 as root: installs
# what is missing (apt), builds into build/, creates the data directory, seeds a demo device
# into a new database, writes the configs and runs the three processes; Ctrl-C or SIGTERM stops
# them all cleanly, and if one of them dies the others are stopped too.
#
# Pods run as containers: unless KEDGE_ENGINE_SOCKET names an engine, a private podman service
# (Docker API) is started in <data dir>/engine by scripts/engine.sh and stopped with the rest.
# kedge-bridge gets engine_socket and pod_infra_image (KEDGE_POD_INFRA_IMAGE, else the engine's
# localhost/pause:edge) once it knows those keys. If the engine cannot start, the node runs without pods.
#
# To join a real cloudcore instead of the local cloud, give its address and a token from
# `keadm gettoken` (the bridge does the certificate bootstrap once, as keadm join does):
#   KEDGE_CLOUD_HOST=192.168.1.10 KEDGE_CLOUD_TOKEN=<token> ./scripts/run.sh
#
# Environment:
#   KEDGE_MQTT_PORT=1883          MQTT port
#   KEDGE_MQTT_BIND=127.0.0.1     listen address
#   KEDGE_DATA_DIR=<repo>/.data   broker config, broker persistence, kedge.db
#   KEDGE_NODE_NAME=kedge-node    this edge node's name (must match the bridge's, later)
#   KEDGE_SEED_DEMO=1             (re)seed the demo device default/thermo even if the DB exists
#   KEDGE_CLOUD_HOST=             cloudcore's address; unset: run kedge-cloudsim locally
#   KEDGE_CLOUD_TOKEN=            token for the first join of that cloudcore
#   KEDGE_CLOUD_PORT=10000        CloudHub websocket port (cloudsim listens there too)
#   KEDGE_CLOUD_HTTPS_PORT=10002  CloudHub's certificate port (join, rotation)
#   KEDGE_CLOUD_VERSION=          the cloud's generation, MAJOR.MINOR (bridge key cloud_version):
#                                 1.15 with KEDGE_CLOUD_HOST, else 1.17 (the local cloudsim then
#                                 speaks the generation whose ids look like default/thermo)
#   KEDGE_CLOUDSIM_CONTROL_PORT=10010  the local cloud's control API
#   KEDGE_CLOUDSIM_TUNNEL_PORT=10004   the local cloud's CloudStream tunnel (the bridge's
#                                 EdgeStream connects there: cloudcore's default port)
#   KEDGE_CLOUDSIM_STREAM_PORT=10003   the local cloud's stream port, as the API server reaches
#                                 it: curl http://127.0.0.1:10003/containerLogs/<ns>/<pod>/<c>
#   KEDGE_METRICS_PORT=9475       the bridge's /metrics and /healthz on 127.0.0.1 (0: none)
#   KEDGE_BRIDGE_ARGS=            more bridge settings, key=value words (e.g. "node_namespace=null
#                                 log_level=debug"): any key of conf/kedge-bridge.conf
#   KEDGE_DMI_SOCKET=             the DMI socket mappers call (bridge key dmi_socket); unset:
#                                 edgecore's /etc/kubeedge/dmi.sock when this user may create
#                                 it, else <data dir>/dmi.sock
#   KEDGE_ENGINE_SOCKET=          a running dockerd/podman API socket to use for pods; unset: start
#                                 scripts/engine.sh (podman); none: no container engine
#   KEDGE_POD_INFRA_IMAGE=        the pods' sandbox ("pause") image (bridge key pod_infra_image),
#                                 for any engine; unset: localhost/pause:edge with run.sh's own
#                                 engine, else the bridge's default kubeedge/pause:3.6. Pulled
#                                 when the engine lacks it, as kubelet does
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PORT=${KEDGE_MQTT_PORT:-1883}
BIND=${KEDGE_MQTT_BIND:-127.0.0.1}
DATA_DIR=${KEDGE_DATA_DIR:-$REPO/.data}
NODE_NAME=${KEDGE_NODE_NAME:-kedge-node}
BUILD_DIR=$REPO/build
PLUGIN=$BUILD_DIR/kedge_plugin.so
DB_PATH=$DATA_DIR/kedge.db
CONF=$DATA_DIR/mosquitto.conf
CLOUD_HOST=${KEDGE_CLOUD_HOST:-}
CLOUD_PORT=${KEDGE_CLOUD_PORT:-10000}
CLOUD_HTTPS_PORT=${KEDGE_CLOUD_HTTPS_PORT:-10002}
CLOUD_VERSION=${KEDGE_CLOUD_VERSION:-$([[ -n $CLOUD_HOST ]] && echo 1.15 || echo 1.17)}
SIM_CONTROL_PORT=${KEDGE_CLOUDSIM_CONTROL_PORT:-10010}
SIM_TUNNEL_PORT=${KEDGE_CLOUDSIM_TUNNEL_PORT:-10004}
SIM_STREAM_PORT=${KEDGE_CLOUDSIM_STREAM_PORT:-10003}
METRICS_PORT=${KEDGE_METRICS_PORT:-9475}
PASSWORD_FILE=$DATA_DIR/bridge.password
ENGINE_SOCKET=${KEDGE_ENGINE_SOCKET:-}
DMI_SOCKET=${KEDGE_DMI_SOCKET:-}
POD_INFRA_IMAGE=${KEDGE_POD_INFRA_IMAGE:-}
ENGINE_DIR= # set while run.sh's own engine runs
PIDS=()
declare -A NAMES=() STARTED=() # child pid -> its name, its start (SECONDS)
STOPPING=0

# Build dependencies (the top-level CMakeLists.txt needs all of them to configure), the broker
# and its clients, and the sqlite3 CLI for the demo seed.
PACKAGES=(build-essential cmake pkg-config mosquitto mosquitto-clients mosquitto-dev
          libmosquitto-dev libyajl-dev libsqlite3-dev libwebsockets-dev libssl-dev check
          libsystemd-dev libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev sqlite3)
# The container engine scripts/engine.sh starts (see scripts/test.sh for why each is named).
ENGINE_PACKAGES=(podman runc netavark iptables busybox-static curl)

die() {
    echo "run.sh: $*" >&2
    exit 1
}

missing_packages() {
    local p
    for p in "${PACKAGES[@]}"; do
        installed "$p" || echo "$p"
    done
}

# podman's postinst enables (and on a systemd host starts) these; run.sh only needs the binary
# for its private service (scripts/engine.sh).
PODMAN_UNITS=(podman.socket podman.service podman-auto-update.timer podman-auto-update.service
              podman-restart.service)

installed() {
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

install_packages() {
    local missing had_podman=0
    mapfile -t missing < <(missing_packages)
    ((${#missing[@]} == 0)) && return 0
    [[ $(id -u) -eq 0 ]] || die "missing packages (run as root to install them): ${missing[*]}"
    installed podman && had_podman=1
    echo "run.sh: installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
    # a podman installed here leaves the host's services as they were
    if ((!had_podman)) && installed podman; then
        if [[ -d /run/systemd/system ]]; then
            systemctl disable --now "${PODMAN_UNITS[@]}" >/dev/null 2>&1 || true
        else
            deb-systemd-helper disable "${PODMAN_UNITS[@]}" >/dev/null 2>&1 || true
        fi
        echo "run.sh: podman's system units left disabled (run.sh starts a private service)"
    fi
}

check_settings() {
    if ! [[ $PORT =~ ^[0-9]+$ ]] || ((PORT < 1 || PORT > 65535)); then
        die "KEDGE_MQTT_PORT must be a port number, not '$PORT'"
    fi
    [[ $NODE_NAME =~ ^[A-Za-z0-9._-]+$ ]] ||
        die "KEDGE_NODE_NAME must be one topic level of [A-Za-z0-9._-], not '$NODE_NAME'"
    case $DATA_DIR in
    /*) ;;
    *) DATA_DIR=$PWD/$DATA_DIR DB_PATH=$DATA_DIR/kedge.db CONF=$DATA_DIR/mosquitto.conf ;;
    esac
    PASSWORD_FILE=$DATA_DIR/bridge.password
    if [[ -n $ENGINE_SOCKET && $ENGINE_SOCKET != none && ! -S $ENGINE_SOCKET ]]; then
        die "KEDGE_ENGINE_SOCKET=$ENGINE_SOCKET is not a socket (a running dockerd or podman" \
            "system service), or use KEDGE_ENGINE_SOCKET=none"
    fi
    if [[ -z $ENGINE_SOCKET ]]; then
        PACKAGES+=("${ENGINE_PACKAGES[@]}")
    fi
}

build() {
    cmake -S "$REPO" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo
    cmake --build "$BUILD_DIR" -j "$(nproc)" \
        --target kedge_plugin kedge-bridge kedge-ctl kedge-cloudsim
}

# The demo device of the wire spec's sequence 8.1: default/thermo with an int twin
# "temperature", expected 30, last reported 24. The tables are KubeEdge's beego-era schema
# (docs/kubeedge-wire.md §3.1), from the recorded fixture (unit_schema checks it against
# include/kedge/schema.h); the plugin creates the same ones with CREATE TABLE IF NOT EXISTS.
seed_demo() {
    local now_ms
    now_ms=$(($(date +%s) * 1000))
    echo "run.sh: seeding demo device default/thermo into $DB_PATH"
    sqlite3 "$DB_PATH" <<SQL
$(sed -n '/^CREATE TABLE IF NOT EXISTS `device/,/;$/p' "$REPO/tests/fixtures/edgecore-meta.sql")
BEGIN;
INSERT OR REPLACE INTO device (id, name, description, state, last_online)
  VALUES ('default/thermo', 'thermo', 'kedge demo thermometer', 'unknown', '');
DELETE FROM device_twin WHERE deviceid = 'default/thermo' AND name = 'temperature';
INSERT INTO device_twin (deviceid, name, description, expected, actual, expected_meta,
                         actual_meta, expected_version, actual_version, optional, attr_type,
                         metadata)
  VALUES ('default/thermo', 'temperature', '', '30', '24', '{"timestamp":$now_ms}',
          '{"timestamp":$now_ms}', '{"cloud":0,"edge":0}', '{"cloud":0,"edge":0}', 0, 'int', '');
COMMIT;
SQL
}

# Escape a value for the replacement side of a sed s|||.
sed_escape() {
    printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'
}

write_conf() {
    local user
    # The broker drops from root to this user before loading the plugin (spec README fact 28).
    # The build tree and data directory belong to whoever runs this script, so run as them;
    # an installed broker runs as "mosquitto" instead (conf/mosquitto.conf).
    user=$(id -un)
    sed -e "s|@PORT@|$(sed_escape "$PORT")|g" \
        -e "s|@BIND@|$(sed_escape "$BIND")|g" \
        -e "s|@USER@|$(sed_escape "$user")|g" \
        -e "s|@DATA_DIR@|$(sed_escape "$DATA_DIR")|g" \
        -e "s|@PLUGIN@|$(sed_escape "$PLUGIN")|g" \
        -e "s|@DB_PATH@|$(sed_escape "$DB_PATH")|g" \
        -e "s|@NODE_NAME@|$(sed_escape "$NODE_NAME")|g" \
        -e "s|@PASSWORD_FILE@|$(sed_escape "$PASSWORD_FILE")|g" \
        "$REPO/conf/mosquitto.conf.in" >"$CONF.tmp"
    mv "$CONF.tmp" "$CONF"
}

# Whether something listens on host:port.
port_in_use() {
    local host=$1 port=$2
    [[ $host == 0.0.0.0 || $host == "::" ]] && host=127.0.0.1
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

# Every port this run needs, checked before anything starts, each with the variable that moves
# it (the local cloud's only when it runs).
check_ports() {
    local -a want=("$BIND:$PORT:KEDGE_MQTT_PORT")
    local w host port var
    ((METRICS_PORT > 0)) && want+=("127.0.0.1:$METRICS_PORT:KEDGE_METRICS_PORT")
    if [[ -z $CLOUD_HOST ]]; then
        want+=("127.0.0.1:$CLOUD_PORT:KEDGE_CLOUD_PORT"
               "127.0.0.1:$SIM_CONTROL_PORT:KEDGE_CLOUDSIM_CONTROL_PORT"
               "127.0.0.1:$SIM_TUNNEL_PORT:KEDGE_CLOUDSIM_TUNNEL_PORT"
               "127.0.0.1:$SIM_STREAM_PORT:KEDGE_CLOUDSIM_STREAM_PORT")
    fi
    for w in "${want[@]}"; do
        IFS=: read -r host port var <<<"$w"
        if port_in_use "$host" "$port"; then
            if [[ $var == KEDGE_MQTT_PORT ]]; then
                die "something already listens on $host:$port (on a host with systemd, installing" \
                    "mosquitto starts its own broker there: 'systemctl disable --now mosquitto')," \
                    "or pick another port with KEDGE_MQTT_PORT"
            fi
            die "something already listens on $host:$port: pick another port with $var=..."
        fi
    done
}

# The bridge identity's password, shared by the plugin, the bridge and kedge-ctl.
make_password() {
    [[ -s $PASSWORD_FILE ]] && return 0
    (umask 077 && head -c 18 /dev/urandom | base64 >"$PASSWORD_FILE")
}

# DMI's socket: edgecore's /etc/kubeedge/dmi.sock (the bridge's default) when this user may
# create it, else one in the data dir (AF_UNIX paths fit in 108 bytes). Mappers are pointed
# at the printed path.
dmi_socket_arg() {
    local d=/etc/kubeedge s=$DMI_SOCKET
    if [[ -z $s ]]; then
        if [[ -w $d ]] || { [[ ! -e $d ]] && [[ -w ${d%/*} ]]; }; then
            return 0
        fi
        s=$DATA_DIR/dmi.sock
        ((${#s} > 107)) && s=/tmp/kedge-dmi-$(id -u).sock
    fi
    BRIDGE_ARGS+=(dmi_socket="$s")
    echo "run.sh: DMI socket (for mappers): $s"
}

# Where the bridge finds the cloud: the local cloudsim's certificates, or a joined cloudcore's.
bridge_args() {
    local certs=$DATA_DIR/cloud-certs
    BRIDGE_ARGS=(node_name="$NODE_NAME" broker_host=127.0.0.1 broker_port="$PORT"
                 broker_password_file="$PASSWORD_FILE" db_path="$DATA_DIR/bridge.db"
                 meta_db_path="$DATA_DIR/meta.db" cloud_port="$CLOUD_PORT"
                 cloud_https_port="$CLOUD_HTTPS_PORT" cloud_version="$CLOUD_VERSION"
                 metrics_port="$METRICS_PORT")
    if [[ -z $CLOUD_HOST ]]; then
        BRIDGE_ARGS+=(cloud_host=127.0.0.1 tls_ca_file="$certs/rootCA.crt"
                      tls_cert_file="$certs/edge.crt" tls_key_file="$certs/edge.key")
    else
        BRIDGE_ARGS+=(cloud_host="$CLOUD_HOST" cloud_https_port="$CLOUD_HTTPS_PORT"
                      tls_ca_file="$DATA_DIR/ca/rootCA.crt"
                      tls_cert_file="$DATA_DIR/certs/server.crt"
                      tls_key_file="$DATA_DIR/certs/server.key")
    fi
    dmi_socket_arg
    local -a extra
    read -ra extra <<<"${KEDGE_BRIDGE_ARGS:-}"
    BRIDGE_ARGS+=("${extra[@]}") # later words win in the bridge
}

join_cloud() {
    [[ -s $DATA_DIR/certs/server.crt ]] && return 0
    [[ -n ${KEDGE_CLOUD_TOKEN:-} ]] ||
        die "KEDGE_CLOUD_HOST is set but this node has no certificate yet: set KEDGE_CLOUD_TOKEN" \
            "to a token from 'keadm gettoken' on the cloud"
    "$BUILD_DIR/cloudbridge/kedge-bridge" join --cloud "$CLOUD_HOST" --token "$KEDGE_CLOUD_TOKEN" \
        --node "$NODE_NAME" --port "$CLOUD_PORT" --https-port "$CLOUD_HTTPS_PORT" \
        --certs "$DATA_DIR" -c "$DATA_DIR/kedge-bridge.conf" ||
        die "joining $CLOUD_HOST failed (see above); nothing was saved"
}

stop_all() {
    local p
    STOPPING=1
    for p in "${PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    stop_engine
}

# Start a child: its output to the terminal and to $LOG_DIR/NAME.log (quiet: only the file).
start_child() {
    local name=$1 quiet=$2
    shift 2
    if [[ $quiet == quiet ]]; then
        "$@" >>"$LOG_DIR/$name.log" 2>&1 &
    else
        "$@" > >(tee -a "$LOG_DIR/$name.log") 2>&1 &
    fi
    PIDS+=($!)
    NAMES[$!]=$name
    STARTED[$!]=$SECONDS
}

# Say which child ended, how, and the end of its log.
report_exit() {
    local pid=$1 status=$2 name=${NAMES[$1]}
    if ((status > 128)); then
        echo "run.sh: $name (pid $pid) was killed by signal $((status - 128))" >&2
    else
        echo "run.sh: $name (pid $pid) exited with status $status" >&2
    fi
    sleep 0.3 # tee writes the last lines a moment after the child ended
    echo "run.sh: the last lines of $LOG_DIR/$name.log:" >&2
    tail -n 15 "$LOG_DIR/$name.log" | sed 's/^/    /' >&2
}

start_bridge() {
    start_child kedge-bridge loud "$BUILD_DIR/cloudbridge/kedge-bridge" "${BRIDGE_ARGS[@]}"
    echo "${PIDS[-1]}" >"$DATA_DIR/bridge.pid"
}

# Until a signal: a child that ends is reported. The bridge alone is started again (kill it to
# restart it, e.g. with the cloud away: the node's autonomy), unless it dies within 5 s of
# starting three times in a row; anything else ends the run with status 1.
supervise() {
    local dead status quick=0 p
    local -a left
    for (( ; ; )); do
        dead=
        wait -n -p dead "${PIDS[@]}"
        status=$?
        [[ -z $dead || $STOPPING == 1 ]] && return 0
        left=()
        for p in "${PIDS[@]}"; do
            [[ $p != "$dead" ]] && left+=("$p")
        done
        PIDS=("${left[@]}")
        report_exit "$dead" "$status"
        if [[ ${NAMES[$dead]} == kedge-bridge ]]; then
            if ((SECONDS - STARTED[$dead] < 5)); then quick=$((quick + 1)); else quick=0; fi
            if ((quick < 3)); then
                echo "run.sh: starting kedge-bridge again in 2 s" >&2
                sleep 2
                start_bridge
                continue
            fi
            echo "run.sh: kedge-bridge keeps dying at start; stopping everything" >&2
        fi
        stop_all
        exit 1
    done
}

# The engine directory: the socket path must fit AF_UNIX's 108 bytes.
engine_dir() {
    local d=$DATA_DIR/engine
    if ((${#d} + 12 > 107)); then
        d=/tmp/kedge-engine-run-$(id -u)
    fi
    echo "$d"
}

# Start run.sh's own engine, unless one is configured. Not fatal: without an engine the node
# runs, only without pods.
start_engine() {
    local dir out
    [[ -z $ENGINE_SOCKET ]] || return 0
    dir=$(engine_dir)
    # A former run.sh killed with SIGKILL leaves its engine (a daemon) running: stop it first.
    bash "$REPO/scripts/engine.sh" stop "$dir" >/dev/null 2>&1 || true
    echo "run.sh: starting the container engine in $dir"
    ENGINE_DIR=$dir
    if out=$(bash "$REPO/scripts/engine.sh" start "$dir"); then
        ENGINE_SOCKET=$dir/podman.sock
        echo "run.sh: $out"
    else
        echo "run.sh: no container engine (see above); the node runs without pods" >&2
        stop_engine
        ENGINE_SOCKET=none
    fi
}

stop_engine() {
    [[ -n $ENGINE_DIR ]] || return 0
    bash "$REPO/scripts/engine.sh" stop "$ENGINE_DIR" >/dev/null || true
    ENGINE_DIR=
}

# The pod keys, for a bridge that knows them (kedge-bridge -h lists its keys). engine_socket is
# passed as "none" too: the bridge's default is /var/run/docker.sock.
engine_args() {
    local keys
    keys=$("$BUILD_DIR/cloudbridge/kedge-bridge" -h 2>&1 || true)
    if ! grep -qE '^ *engine_socket ' <<<"$keys"; then
        echo "run.sh: this kedge-bridge has no engine_socket key yet: pods are not run" >&2
        return 0
    fi
    BRIDGE_ARGS+=(engine_socket="$ENGINE_SOCKET")
    [[ $ENGINE_SOCKET != none ]] || return 0
    # the sandbox image: the one asked for; else run.sh's own engine's; else the bridge's
    # default, which Edged pulls when the engine lacks it
    if [[ -n $POD_INFRA_IMAGE ]]; then
        BRIDGE_ARGS+=(pod_infra_image="$POD_INFRA_IMAGE")
    elif [[ -n $ENGINE_DIR ]]; then
        BRIDGE_ARGS+=(pod_infra_image=localhost/pause:edge)
    fi
    if grep -qE '^ *pods_dir ' <<<"$keys"; then
        BRIDGE_ARGS+=(pods_dir="$DATA_DIR/pods")
    fi
    return 0
}

# The local cloud learns the demo device the way cloudcore would have sent it: a membership
# update naming it (cloudsim answers twin reports only for devices it knows).
introduce_demo() {
    local body
    body='{"route":{"source":"devicecontroller","group":"twin","operation":"update",'
    body+='"resource":"membership"},"content":{"event_id":"demo","timestamp":0,"added_devices":'
    body+='[{"id":"default/thermo","name":"thermo","description":"kedge demo thermometer"}],'
    body+='"removed_devices":null}}'
    exec 3<>"/dev/tcp/127.0.0.1/$SIM_CONTROL_PORT" || return 1
    printf 'POST /send HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' >&3
    printf 'Content-Length: %d\r\nConnection: close\r\n\r\n%s' "${#body}" "$body" >&3
    cat <&3 >/dev/null
    exec 3>&-
}

wait_for_port() {
    local port=$1 i
    for ((i = 0; i < 100; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

banner() {
    # shellcheck disable=SC2016 # $hw is part of the MQTT topic, not a variable
    local h="-h $BIND -p $PORT" t='$hw/events/device/default/thermo'
    local ctl="$BUILD_DIR/tools/kedge-ctl -p $PORT -P $PASSWORD_FILE"
    local cloud="local cloud (kedge-cloudsim) wss://127.0.0.1:$CLOUD_PORT"
    [[ -n $CLOUD_HOST ]] && cloud="cloudcore wss://$CLOUD_HOST:$CLOUD_PORT"
    [[ $BIND == 0.0.0.0 ]] && h="-h 127.0.0.1 -p $PORT"
    cat <<EOF

kedge edge node "$NODE_NAME": mosquitto + kedge_plugin.so on $BIND:$PORT
  cloud     kedge-bridge -> $cloud
  config    $CONF
  data      $DATA_DIR (kedge.db, bridge.db, meta.db)
  pods      $(if [[ $ENGINE_SOCKET == none ]]; then echo "none (no container engine)"
              else echo "Docker API on $ENGINE_SOCKET"; fi)
Try it from another terminal (demo device default/thermo, int twin "temperature"):
  mosquitto_sub $h -v -t '$t/#'
  mosquitto_pub $h -t '$t/twin/update' \\
      -m '{"event_id":"e1","timestamp":1700000000000,"twin":{"temperature":{"actual":{"value":"25"}}}}'
  mosquitto_pub $h -t '$t/twin/get' -m '{"event_id":"g1"}'
  mosquitto_pub $h -t '$t/state/update' -m '{"event_id":"s1","state":"online"}'
Watch each hop:
  device -> plugin   the subscriber above sees ./result, ./document, ./delta
  plugin -> bridge   $ctl status
EOF
    if [[ -z $CLOUD_HOST ]]; then
        cat <<EOF
  bridge -> cloud    curl -s 'http://127.0.0.1:$SIM_CONTROL_PORT/received?skip_keepalive=1'
  cloud -> device    mosquitto_sub $h -t 'hello/#' &
                     curl -s -X POST http://127.0.0.1:$SIM_CONTROL_PORT/send -d \\
      '{"route":{"source":"router_eventbus","group":"user","operation":"publish","resource":"hello/edge"},"content":"hi"}'
  kubectl logs       curl -s 'http://127.0.0.1:$SIM_STREAM_PORT/containerLogs/<ns>/<pod>/<container>?tailLines=10'
                     (the local cloud's stream port, as kube-apiserver reaches the node)
EOF
    fi
    # shellcheck disable=SC2016 # the $(cat ...) is for the reader to paste
    printf 'Logs: %s/logs/. The bridge is started again when it ends: kill "$(cat %s/bridge.pid)"\nrestarts it. Stop everything with Ctrl-C.\n\n' "$DATA_DIR" "$DATA_DIR"
}

main() {
    check_settings
    install_packages
    build
    mkdir -p "$DATA_DIR"
    if [[ ${KEDGE_SEED_DEMO:-0} == 1 || ! -e $DB_PATH ]]; then
        seed_demo
    fi
    make_password
    write_conf
    check_ports
    if [[ -n $CLOUD_HOST ]]; then
        join_cloud
    fi
    bridge_args
    LOG_DIR=$DATA_DIR/logs
    mkdir -p "$LOG_DIR"
    trap 'stop_all; exit 0' INT TERM
    trap stop_engine EXIT
    start_engine
    engine_args
    if [[ -z $CLOUD_HOST ]]; then
        start_child kedge-cloudsim quiet "$BUILD_DIR/tests/cloudsim/kedge-cloudsim" \
            --certs "$DATA_DIR/cloud-certs" --cloud-version "$CLOUD_VERSION" --node "$NODE_NAME" \
            --port "$CLOUD_PORT" --control-port "$SIM_CONTROL_PORT" \
            --tunnel-port "$SIM_TUNNEL_PORT" --stream-port "$SIM_STREAM_PORT"
        wait_for_port "$SIM_CONTROL_PORT" || {
            tail -n 15 "$LOG_DIR/kedge-cloudsim.log" | sed 's/^/    /' >&2
            stop_all
            die "kedge-cloudsim did not start (its log: $LOG_DIR/kedge-cloudsim.log)"
        }
        introduce_demo || echo "run.sh: could not tell kedge-cloudsim about the demo device" >&2
    fi
    start_child mosquitto loud /usr/sbin/mosquitto -c "$CONF"
    wait_for_port "$PORT" || { stop_all; die "mosquitto did not start (see $LOG_DIR/mosquitto.log)"; }
    start_bridge
    banner
    supervise
}

main "$@"
