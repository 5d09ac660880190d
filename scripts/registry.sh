#!/usr/bin/env bash
# A private image registry for the tests of image pulls: Debian's docker-registry (the CNCF
# distribution registry 2.8) on 127.0.0.1:PORT with TLS (a test CA and a server certificate
# with SAN IP:127.0.0.1, made here with openssl) and htpasswd basic auth (bcrypt, htpasswd -B),
# everything under one directory. The engines trust the CA through their certs.d directories
# (/etc/docker/certs.d/127.0.0.1:PORT/ca.crt for dockerd, /etc/containers/certs.d/... for
# podman), which start creates and stop removes; nothing else outside DIR is touched.
#
#   scripts/registry.sh start DIR PORT   make DIR, start the registry; prints
#                                        "registry: ready addr=127.0.0.1:PORT pid=N user=U password=P"
#   scripts/registry.sh push DIR SOCK SRC NAME
#                                        tag the image SRC of the engine on SOCK as
#                                        127.0.0.1:PORT/NAME and push it through the engine's API
#                                        (X-Registry-Auth with DIR's credentials); the new tag
#                                        is removed from the engine again, so a pull is a pull
#   scripts/registry.sh big DIR SOCK NAME MB
#                                        import a busybox image with one MB-megabyte layer of
#                                        random bytes into the engine as NAME (local, not pushed)
#   scripts/registry.sh stop DIR         stop the registry by pid, remove the certs.d entries
#                                        and DIR; idempotent
#
# Needs root (certs.d), docker-registry, openssl, htpasswd (apache2-utils), curl, busybox.
set -euo pipefail

API=v1.41
USER_NAME=kedge
STOP_TIMEOUT_S=10
START_TIMEOUT_S=${KEDGE_REGISTRY_START_TIMEOUT_S:-20}

note() {
    echo "registry: $*" >&2
}

die() {
    note "$*"
    exit 1
}

now_ms() {
    echo $(($(date +%s%N) / 1000000))
}

certs_dirs() {
    local port=$1
    echo "/etc/docker/certs.d/127.0.0.1:$port" "/etc/containers/certs.d/127.0.0.1:$port"
}

# A CA, and a server certificate it signs for IP 127.0.0.1 (Go checks the SAN, not the CN).
make_certs() {
    local dir=$1
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/ca.key" -out "$dir/ca.crt" \
        -days 2 -subj /CN=kedge-test-registry-ca 2>/dev/null || die "openssl: CA failed"
    openssl req -newkey rsa:2048 -nodes -keyout "$dir/server.key" -out "$dir/server.csr" \
        -subj /CN=127.0.0.1 2>/dev/null || die "openssl: CSR failed"
    printf '%s\n' 'subjectAltName=IP:127.0.0.1' 'basicConstraints=CA:FALSE' \
        'keyUsage=digitalSignature,keyEncipherment' 'extendedKeyUsage=serverAuth' \
        >"$dir/server.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
        -CAcreateserial -out "$dir/server.crt" -days 2 -extfile "$dir/server.ext" 2>/dev/null ||
        die "openssl: server certificate failed"
}

write_config() {
    local dir=$1 port=$2
    cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  tls:
    certificate: $dir/server.crt
    key: $dir/server.key
auth:
  htpasswd:
    realm: kedge-test-registry
    path: $dir/htpasswd
EOF
}

is_ours() {
    local pid=$1 dir=$2
    [[ -n $pid && -r /proc/$pid/cmdline ]] &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$dir/config.yml"
}

do_start() {
    local dir=$1 port=$2 pass pid deadline d code
    [[ $(id -u) -eq 0 ]] || die "needs root (the engines' certs.d)"
    for d in docker-registry openssl htpasswd curl; do
        command -v "$d" >/dev/null ||
            die "$d is not installed (apt-get install docker-registry apache2-utils openssl curl)"
    done
    [[ $port =~ ^[0-9]+$ ]] || die "bad port $port"
    [[ ! -e $dir/registry.pid ]] || die "$dir has a registry already; stop it first"
    mkdir -p "$dir/data"
    echo "$port" >"$dir/port"
    trap 'do_stop "$dir"' EXIT
    make_certs "$dir"
    pass=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
    echo "$pass" >"$dir/password"
    htpasswd -Bbn "$USER_NAME" "$pass" >"$dir/htpasswd" 2>/dev/null || die "htpasswd -B failed"
    write_config "$dir" "$port"
    for d in $(certs_dirs "$port"); do
        mkdir -p "$d"
        cp "$dir/ca.crt" "$d/ca.crt"
    done
    setsid docker-registry serve "$dir/config.yml" </dev/null >"$dir/registry.log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/registry.pid"
    deadline=$(($(now_ms) + START_TIMEOUT_S * 1000))
    # the API root answers 401 to an anonymous client once it serves
    until code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$dir/ca.crt" \
        "https://127.0.0.1:$port/v2/") && [[ $code == 401 ]]; do
        kill -0 "$pid" 2>/dev/null || { tail -n 20 "$dir/registry.log" >&2; die "it exited"; }
        (($(now_ms) < deadline)) || die "no answer on 127.0.0.1:$port within ${START_TIMEOUT_S}s"
        sleep 0.05
    done
    trap - EXIT
    echo "registry: ready addr=127.0.0.1:$port pid=$pid user=$USER_NAME password=$pass"
}

# X-Registry-Auth: base64url of {"username","password","serveraddress"} (the Docker API's form).
registry_auth() {
    local dir=$1 port
    port=$(cat "$dir/port")
    printf '{"username":"%s","password":"%s","serveraddress":"127.0.0.1:%s"}' \
        "$USER_NAME" "$(cat "$dir/password")" "$port" | base64 -w0 | tr '+/' '-_'
}

api() {
    local sock=$1
    shift
    curl -sS --max-time 600 --unix-socket "$sock" "$@"
}

# The Docker API streams progress as JSON lines with HTTP 200 and reports a failure inside
# ("error"); dockerd also fails some with a 4xx/5xx. Either is fatal here.
check_stream() {
    local what=$1 out=$2 code=${2##*$'\n'}
    out=${out%$'\n'*}
    if [[ $code != 200 && $code != 201 ]] || grep -q '"error"' <<<"$out"; then
        die "$what failed: HTTP $code $(tail -c 600 <<<"$out")"
    fi
}

do_push() {
    local dir=$1 sock=$2 src=$3 name=$4 port repo tag out
    port=$(cat "$dir/port")
    repo=127.0.0.1:$port/${name%:*}
    tag=${name##*:}
    out=$(api "$sock" -w '\n%{http_code}' -X POST \
        "http://d/$API/images/$src/tag?repo=$repo&tag=$tag") || die "tag: curl failed"
    check_stream "tag $src $repo:$tag" "$out"
    out=$(api "$sock" -w '\n%{http_code}' -X POST -H "X-Registry-Auth: $(registry_auth "$dir")" \
        "http://d/$API/images/$repo/push?tag=$tag") || die "push: curl failed"
    check_stream "push $repo:$tag" "$out"
    out=$(api "$sock" -w '\n%{http_code}' -X DELETE "http://d/$API/images/$repo:$tag") ||
        die "untag: curl failed"
    check_stream "untag $repo:$tag" "$out"
    echo "registry: pushed $repo:$tag"
}

# A busybox rootfs plus /big.bin of MB random megabytes, imported as NAME.
do_big() {
    local dir=$1 sock=$2 name=$3 mb=$4 root=$1/big-rootfs out
    mkdir -p "$root/bin"
    cp "$(command -v busybox)" "$root/bin/busybox"
    ln -sf busybox "$root/bin/sh"
    ln -sf busybox "$root/bin/sleep"
    head -c $((mb * 1024 * 1024)) /dev/urandom >"$root/big.bin"
    tar -C "$root" --numeric-owner --owner=0 --group=0 -cf "$dir/big.tar" .
    rm -rf "$root"
    out=$(api "$sock" -w '\n%{http_code}' -X POST -H 'Content-Type: application/x-tar' \
        --data-binary "@$dir/big.tar" \
        "http://d/$API/images/create?fromSrc=-&repo=$name&changes=ENV%20PATH%3D%2Fbin") ||
        die "import: curl failed"
    rm -f "$dir/big.tar"
    check_stream "import $name" "$out"
    echo "registry: imported $name"
}

do_stop() {
    local dir=$1 pid port d i
    [[ -e $dir ]] || { echo "registry: stopped (no $dir)"; return 0; }
    pid=$(cat "$dir/registry.pid" 2>/dev/null || true)
    if is_ours "$pid" "$dir"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < STOP_TIMEOUT_S * 20; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && break
            sleep 0.05
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    port=$(cat "$dir/port" 2>/dev/null || true)
    if [[ $port =~ ^[0-9]+$ ]]; then
        for d in $(certs_dirs "$port"); do
            rm -rf "$d"
        done
    fi
    rm -rf "$dir"
    echo "registry: stopped dir=$dir"
}

main() {
    local verb=${1:-} dir=${2:-}
    [[ -n $verb && $dir == /* && $dir != / ]] || { echo "usage: $0 start|push|big|stop /DIR ..." >&2; exit 2; }
    case $verb in
    start) [[ $# -eq 3 ]] && do_start "$dir" "$3" ;;
    push) [[ $# -eq 5 ]] && do_push "$dir" "$3" "$4" "$5" ;;
    big) [[ $# -eq 5 ]] && do_big "$dir" "$3" "$4" "$5" ;;
    stop) do_stop "$dir" ;;
    *) exit 2 ;;
    esac
}

main "$@"
