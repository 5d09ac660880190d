#!/usr/bin/env bash
# Run a kedge edge node in the foreground: mosquitto with kedge_plugin.so (EventBus +
# DeviceTwin). Made for a fresh Debian 12 as root: installs what is missing (apt), builds into
# build/, creates the data directory, seeds a demo device into a new database, writes the broker
# config from conf/mosquitto.conf.in and execs mosquitto, so Ctrl-C or SIGTERM stops it cleanly.
#
# Environment:
#   KEDGE_MQTT_PORT=1883          MQTT port
#   KEDGE_MQTT_BIND=127.0.0.1     listen address
#   KEDGE_DATA_DIR=<repo>/.data   broker config, broker persistence, kedge.db
#   KEDGE_NODE_NAME=kedge-node    this edge node's name (must match the bridge's, later)
#   KEDGE_SEED_DEMO=1             (re)seed the demo device default/thermo even if the DB exists
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

# Build dependencies (the top-level CMakeLists.txt needs all of them to configure), the broker
# and its clients, and the sqlite3 CLI for the demo seed.
PACKAGES=(build-essential cmake pkg-config mosquitto mosquitto-clients mosquitto-dev
          libmosquitto-dev libyajl-dev libsqlite3-dev libwebsockets-dev libssl-dev check
          sqlite3)

die() {
    echo "run.sh: $*" >&2
    exit 1
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
    ((${#missing[@]} == 0)) && return 0
    [[ $(id -u) -eq 0 ]] || die "missing packages (run as root to install them): ${missing[*]}"
    echo "run.sh: installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
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
}

build() {
    cmake -S "$REPO" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo
    cmake --build "$BUILD_DIR" --target kedge_plugin -j "$(nproc)"
}

# The demo device of the wire spec's sequence 8.1: default/thermo with an int twin
# "temperature", expected 30, last reported 24. The tables are KubeEdge's beego-era schema
# (kubeedge-wire.md §3.1); the plugin creates the same ones with CREATE TABLE IF NOT EXISTS.
seed_demo() {
    local now_ms
    now_ms=$(($(date +%s) * 1000))
    echo "run.sh: seeding demo device default/thermo into $DB_PATH"
    sqlite3 "$DB_PATH" <<SQL
CREATE TABLE IF NOT EXISTS \`device\` (
  \`id\` varchar(64) NOT NULL PRIMARY KEY, \`name\` text, \`description\` text,
  \`state\` text, \`last_online\` text);
CREATE TABLE IF NOT EXISTS \`device_attr\` (
  \`id\` integer NOT NULL PRIMARY KEY AUTOINCREMENT, \`deviceid\` text, \`name\` text,
  \`description\` text, \`value\` text, \`optional\` bool, \`attr_type\` text, \`metadata\` text);
CREATE TABLE IF NOT EXISTS \`device_twin\` (
  \`id\` integer NOT NULL PRIMARY KEY AUTOINCREMENT, \`deviceid\` text, \`name\` text,
  \`description\` text, \`expected\` text, \`actual\` text, \`expected_meta\` text,
  \`actual_meta\` text, \`expected_version\` text, \`actual_version\` text,
  \`optional\` bool, \`attr_type\` text, \`metadata\` text);
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
        "$REPO/conf/mosquitto.conf.in" >"$CONF.tmp"
    mv "$CONF.tmp" "$CONF"
}

port_in_use() {
    local host=$BIND
    [[ $host == 0.0.0.0 || $host == "::" ]] && host=127.0.0.1
    (exec 3<>"/dev/tcp/$host/$PORT") 2>/dev/null
}

banner() {
    # shellcheck disable=SC2016 # $hw is part of the MQTT topic, not a variable
    local h="-h $BIND -p $PORT" t='$hw/events/device/default/thermo'
    [[ $BIND == 0.0.0.0 ]] && h="-h 127.0.0.1 -p $PORT"
    cat <<EOF

kedge edge node "$NODE_NAME": mosquitto + kedge_plugin.so on $BIND:$PORT
  config    $CONF
  database  $DB_PATH
Try it from another terminal (demo device default/thermo, int twin "temperature"):
  mosquitto_sub $h -v -t '$t/#'
  mosquitto_pub $h -t '$t/twin/update' \\
      -m '{"event_id":"e1","timestamp":1700000000000,"twin":{"temperature":{"actual":{"value":"25"}}}}'
  mosquitto_pub $h -t '$t/twin/get' -m '{"event_id":"g1"}'
  mosquitto_pub $h -t '$t/state/update' -m '{"event_id":"s1","state":"online"}'
The subscriber sees each request and the node's answers (./result, ./document, ./delta).
Stop with Ctrl-C.

EOF
}

main() {
    check_settings
    install_packages
    build
    mkdir -p "$DATA_DIR"
    if [[ ${KEDGE_SEED_DEMO:-0} == 1 || ! -e $DB_PATH ]]; then
        seed_demo
    fi
    write_conf
    if port_in_use; then
        die "something already listens on $BIND:$PORT (on a host with systemd, installing" \
            "mosquitto starts its own broker there: 'systemctl disable --now mosquitto'), or" \
            "pick another port with KEDGE_MQTT_PORT"
    fi
    banner
    exec /usr/sbin/mosquitto -c "$CONF"
}

main "$@"
