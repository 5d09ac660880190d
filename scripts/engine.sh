#!/usr/bin/env bash
# A private container engine for kedge's edged: podman's Docker-compatible REST API (v1.41) on a
# unix socket, or Debian's dockerd (KEDGE_ENGINE_KIND=dockerd), with its own storage, state and
# locks under one directory, and the two images the tests and run.sh use, made offline from
# busybox-static (there is no registry on our machines). The recipe and the reasons for every
# setting are in docs/containers.md.
#
#   scripts/engine.sh start DIR   make DIR, start the service, import the images; prints
#                                 "engine: ready socket=DIR/<podman|docker>.sock pid=N" and
#                                 exits 0
#   scripts/engine.sh images SOCK import the two images into a running engine that lacks them
#                                 (KEDGE_TEST_ENGINE_SOCKET: the tests attached to an engine)
#   scripts/engine.sh stop DIR    remove every container of that service, stop it, unmount
#                                 what is left under DIR, delete DIR; idempotent, and safe after
#                                 a start that failed halfway
#
# Images (POST /images/create?fromSrc=-, one busybox-static rootfs):
#   localhost/busybox:edge   ENV PATH=/bin:/sbin, CMD ["sh"]
#   localhost/pause:edge     ENTRYPOINT ["/bin/sleep","2147483647"] (the pod's infra container)
#
# DIR holds: containers.conf, podman.sock, engine.pid, engine.log (the service's output),
# storage/ (--root: images, containers, libpod's database), run/ (--runroot), tmp/ (--tmpdir:
# libpod's locks, events log, the service's TMPDIR) and networks/ (--network-config-dir).
# Two services with different DIRs share nothing of that, so tests can run several at once.
# What rootful podman always shares between instances: the default bridge network "podman"
# (bridge podman0, 10.88.0.0/16) with its IP allocations in /run/containers/networks/ipam.db,
# its iptables chains, and /run/netns. Removing the containers releases all of those. Host ports
# are reserved host-wide (conmon listens on them), so a second binding of a taken port fails its
# start with HTTP 500 "address already in use" in any service; but netavark 1.4's clean-up of
# that failed start also deletes the SETMARK rules of the container that holds the port, which
# breaks that one's forwarding from 127.0.0.1. Check host ports before starting a container.
#
# dockerd (KEDGE_ENGINE_KIND=dockerd; docs/containers.md §3.1): DIR/docker.sock, --data-root
# DIR/data, --exec-root DIR/exec, --pidfile DIR/engine.pid, and a bridge of its own instead of
# docker0 (which every dockerd on the host would share, with clashing IP allocations): kd<N> on
# 10.213.<N>.0/24, the first N no interface uses (chosen under a lock), named in DIR/bridge and
# deleted by stop. --iptables=false --ip-masq=false: no NAT chains to leave behind; a hostPort on
# 127.0.0.1 is served by docker-proxy (the userland proxy) into the bridge, and the containers
# need no way out. --cgroup-parent kedge-<N>: its cgroup dirs are its own, removed by stop.
# The kind is kept in DIR/engine.kind, so stop needs no environment.
#
# Needs root (rootful podman: bridge networking and port publishing), podman and runc (or
# dockerd and ip), busybox-static and curl. Environment:
#   KEDGE_ENGINE_KIND=podman          start: podman (default) or dockerd
#   KEDGE_ENGINE_START_TIMEOUT_S=20   deadline for the service to answer GET /_ping
#   KEDGE_ENGINE_STOP_TIMEOUT_S=10    deadline for the service to exit after SIGTERM
#   KEDGE_ENGINE_KEEP_DIR=1           stop: stop and unmount everything but keep DIR's files
#                                     (engine.log, the database) for a post-mortem
set -euo pipefail

PATH=$PATH:/usr/sbin:/sbin # runc, chroot, umount for a caller without them in PATH
API=v1.41
# host-wide: every dockerd started here picks its bridge under it
BRIDGE_LOCK=/run/lock/kedge-engine-bridge.lock
[[ -d /run/lock ]] || BRIDGE_LOCK=/tmp/kedge-engine-bridge.lock
START_TIMEOUT_S=${KEDGE_ENGINE_START_TIMEOUT_S:-20}
STOP_TIMEOUT_S=${KEDGE_ENGINE_STOP_TIMEOUT_S:-10}

note() {
    echo "engine: $*" >&2
}

die() {
    note "$*"
    exit 1
}

usage() {
    echo "usage: $0 start|stop DIR" >&2
    exit 2
}

# DIR as an absolute path without a trailing slash. It is matched against /proc/mounts and
# process command lines, so it must not contain whitespace.
abs_dir() {
    local d=$1
    [[ $d == /* ]] || d=$PWD/$d
    while [[ $d == */ && $d != / ]]; do d=${d%/}; done
    [[ $d != / && $d =~ ^[^[:space:]]+$ ]] || die "bad directory '$1' (no whitespace, not /)"
    printf '%s\n' "$d"
}

now_ms() {
    echo $(($(date +%s%N) / 1000000))
}

# Percent-encode a query parameter value.
urlencode() {
    local s=$1 out="" c i
    for ((i = 0; i < ${#s}; i++)); do
        c=${s:i:1}
        case $c in
        [A-Za-z0-9._~-]) out+=$c ;;
        *) out+=$(printf '%%%02X' "'$c") ;;
        esac
    done
    printf '%s' "$out"
}

# The global flags that keep this service's state under DIR. Podman passes the same ones to the
# conmon "container cleanup" command, and CONTAINERS_CONF through conmon's environment.
podman_flags() {
    local dir=$1
    PODMAN_FLAGS=(--root "$dir/storage" --runroot "$dir/run" --tmpdir "$dir/tmp"
                  --network-config-dir "$dir/networks" --volumepath "$dir/storage/volumes"
                  --storage-driver overlay --cgroup-manager cgroupfs --events-backend file
                  --runtime runc)
}

# The rlimits a container may have: no more than podman's own hard limits, because without
# CAP_SYS_RESOURCE nothing can raise them (docs/containers.md §1, §2.2). podman raises its soft
# nofile to the hard one and leaves nproc as it inherited it; conmon and runc inherit both.
# nproc is also capped at kernel.pid_max, which is what docs/containers.md verified.
ulimit_value() {
    local v=$1 cap=$2
    [[ $v == unlimited ]] && v=$cap
    ((v > cap)) && v=$cap
    echo "$v"
}

write_conf() {
    local dir=$1 nofile nproc pid_max
    pid_max=$(cat /proc/sys/kernel/pid_max 2>/dev/null || echo 32768)
    nofile=$(ulimit_value "$(ulimit -Hn)" 1048576)
    nproc=$(ulimit_value "$(ulimit -Hu)" "$pid_max")
    cat >"$dir/containers.conf.tmp" <<EOF
# Written by scripts/engine.sh for the podman service of this directory (docs/containers.md §2.3).
# CONTAINERS_CONF points here, which replaces every other containers.conf.
[containers]
# No CAP_SYS_RESOURCE: a container may not have more than the service's hard limits
# (nofile: ulimit -Hn; nproc: ulimit -Hu, at most kernel.pid_max). podman's defaults fail.
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
runtime = "runc"            # crun 1.8.1: "cgroups in hybrid mode not supported"
cgroup_manager = "cgroupfs" # no systemd
events_logger = "file"      # <tmpdir>/events/events.log, read by GET /events
# Locks in <tmpdir>/locks instead of the host-wide /dev/shm/libpod_lock, which every rootful
# podman shares: a service killed with containers left would leak its locks there.
lock_type = "file"
EOF
    mv "$dir/containers.conf.tmp" "$dir/containers.conf"
}

# curl against the service. Extra arguments go before the URL path (last argument).
api() {
    local sock=$1
    shift
    curl -sS --max-time 60 --unix-socket "$sock" "$@"
}

ping_ok() {
    [[ $(curl -s --max-time 2 --unix-socket "$1" "http://d/_ping" 2>/dev/null) == OK ]]
}

# Is PID our service (and not a recycled pid)? Its command line names our socket.
is_our_service() {
    local pid=$1 dir=$2
    [[ -n $pid && -r /proc/$pid/cmdline ]] &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "unix://$dir/$(kind_of "$dir").sock"
}

# The engine DIR runs (or ran): what start wrote to DIR/engine.kind; podman before that.
kind_of() {
    local k
    k=$(cat "$1/engine.kind" 2>/dev/null || true)
    [[ $k == dockerd ]] && echo docker || echo podman
}

service_pid() {
    local dir=$1 pid
    pid=$(cat "$dir/engine.pid" 2>/dev/null || true)
    is_our_service "$pid" "$dir" && echo "$pid"
    return 0
}

check_tools() {
    local t tools=(podman runc curl tar)
    [[ $(id -u) -eq 0 ]] ||
        die "needs root: rootful podman or dockerd (bridge networking, port publishing, runc)"
    [[ $KIND == dockerd ]] && tools=(dockerd ip curl tar flock)
    for t in "${tools[@]}"; do
        command -v "$t" >/dev/null ||
            die "$t is not installed (apt-get install podman runc docker.io busybox-static curl)"
    done
    BUSYBOX=$(command -v busybox || true)
    [[ -n $BUSYBOX ]] || die "busybox is not installed (apt-get install busybox-static)"
    # The images need a static busybox: the dynamic one would look for libc in the image.
    local ldd_out
    ldd_out=$(LC_ALL=C ldd "$BUSYBOX" 2>&1 || true)
    [[ $ldd_out == *"not a dynamic executable"* || $ldd_out == *"statically linked"* ]] ||
        die "$BUSYBOX is linked dynamically (apt-get install busybox-static)"
}

# A busybox rootfs as a tar file (docs/containers.md §4).
make_rootfs_tar() {
    local work=$1 rootfs=$1/rootfs
    mkdir -p "$rootfs"/{bin,sbin,etc,proc,sys,dev,tmp,root,var,run,www}
    cp "$BUSYBOX" "$rootfs/bin/busybox"
    # One symlink /bin/<applet> -> /bin/busybox per applet, made by busybox itself inside the
    # rootfs (in 20 ms; a loop of ln takes 1.7 s). Without /proc in the chroot it links to
    # argv[0], which is why that is an absolute path.
    chroot "$rootfs" /bin/busybox --install -s /bin
    echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
    echo 'root:x:0:' >"$rootfs/etc/group"
    chmod 1777 "$rootfs/tmp"
    tar -C "$rootfs" --numeric-owner --owner=0 --group=0 -cf "$work/rootfs.tar" .
    rm -rf "$rootfs"
}

# import_image SOCK TAR NAME:TAG CHANGE...: POST /images/create?fromSrc=- with the tar as body.
# podman 4.3 ignores tag= on import (it tags :latest), so the tag goes into repo=.
import_image() {
    local sock=$1 tar=$2 ref=$3 url c out code
    shift 3
    url="http://d/$API/images/create?fromSrc=-&repo=$(urlencode "$ref")"
    for c in "$@"; do
        url+="&changes=$(urlencode "$c")"
    done
    out=$(api "$sock" -w '\n%{http_code}' -X POST -H 'Content-Type: application/x-tar' \
        --data-binary "@$tar" "$url") || die "importing $ref: curl failed"
    code=${out##*$'\n'}
    out=${out%$'\n'*}
    # /images/create answers 200 even when it fails; the error is in the JSON (docs/containers.md §5.1).
    if [[ $code != 200 ]] || grep -q '"error"' <<<"$out"; then
        die "importing $ref failed: HTTP $code $out"
    fi
}

# The two images into the engine on SOCK, each unless it has it already; WORK for the rootfs.
import_images() {
    local sock=$1 work=$2 images
    images=$(api "$sock" "http://d/$API/images/json") || die "GET /images/json failed"
    if [[ $images != *'"localhost/busybox:edge"'* || $images != *'"localhost/pause:edge"'* ]]; then
        make_rootfs_tar "$work"
        [[ $images == *'"localhost/busybox:edge"'* ]] ||
            import_image "$sock" "$work/rootfs.tar" localhost/busybox:edge \
                'ENV PATH=/bin:/sbin' 'CMD ["sh"]'
        [[ $images == *'"localhost/pause:edge"'* ]] ||
            import_image "$sock" "$work/rootfs.tar" localhost/pause:edge \
                'ENV PATH=/bin:/sbin' 'ENTRYPOINT ["/bin/sleep","2147483647"]'
        rm -f "$work/rootfs.tar"
    fi
    images=$(api "$sock" "http://d/$API/images/json") || die "GET /images/json failed"
    if [[ $images != *'"localhost/busybox:edge"'* || $images != *'"localhost/pause:edge"'* ]]; then
        die "the imported images are not listed: $images"
    fi
}

# images SOCK: an engine someone else runs gets the two images if it lacks them (they stay).
do_images() {
    local sock=$1 work
    ping_ok "$sock" || die "no engine answers GET /_ping on $sock"
    [[ $(id -u) -eq 0 ]] || die "needs root (chroot for the image's applet links)"
    BUSYBOX=$(command -v busybox || true)
    [[ -n $BUSYBOX ]] || die "busybox is not installed (apt-get install busybox-static)"
    work=$(mktemp -d "${TMPDIR:-/tmp}/kedge-images-XXXXXX")
    (import_images "$sock" "$work") || { rm -rf "$work"; exit 1; }
    rm -rf "$work"
    echo "engine: images ready socket=$sock"
}

start_failed() {
    local dir=$1
    if [[ -s $dir/engine.log ]]; then
        note "the service's log ($dir/engine.log), last lines:"
        tail -n 20 "$dir/engine.log" >&2 || true
    fi
    stop_service "$dir"
    note "start failed; '$0 stop $dir' removes $dir"
}

# Start podman's service on DIR/podman.sock; sets PID.
start_podman() {
    local dir=$1 sock=$1/podman.sock
    mkdir -p "$dir"/{storage,run,networks}
    write_conf "$dir"
    podman_flags "$dir"
    # setsid: its own session, so a terminal's Ctrl-C or the caller's process group does not
    # reach it; it is stopped by pid. Not a group leader here, so setsid execs without forking
    # and $! is podman's pid. TMPDIR: podman's image import leaves its copy of each uploaded tar
    # (api_load.tar*) in TMPDIR for good, so that goes under DIR too.
    CONTAINERS_CONF=$dir/containers.conf TMPDIR=$dir/tmp \
        setsid podman "${PODMAN_FLAGS[@]}" system service --time=0 "unix://$sock" \
        </dev/null >"$dir/engine.log" 2>&1 &
    PID=$!
    echo "$PID" >"$dir/engine.pid"
}

# A bridge of DIR's own for dockerd: kd<N> with 10.213.<N>.1/24, N the first one free. Under a
# host-wide lock, so two starts at once do not take the same N. Its name goes to DIR/bridge
# before it exists, so a failed start removes it too.
make_bridge() {
    local dir=$1 n used
    exec 9>"$BRIDGE_LOCK"
    flock -w 30 9 || die "could not lock $BRIDGE_LOCK"
    used=$(ip -o link show 2>/dev/null) || die "ip link show failed"
    for ((n = 1; n < 255; n++)); do
        [[ $used == *" kd$n:"* ]] || ip -o -4 addr show | grep -qF " 10.213.$n." || break
    done
    ((n < 255)) || die "no free kd<N> bridge (1..254 taken)"
    echo "kd$n" >"$dir/bridge"
    ip link add name "kd$n" type bridge || die "ip link add kd$n failed"
    ip addr add "10.213.$n.1/24" dev "kd$n" || die "ip addr add on kd$n failed"
    ip link set "kd$n" up || die "ip link set kd$n up failed"
    exec 9>&-
    BRIDGE=kd$n
}

# Start dockerd on DIR/docker.sock (docs/containers.md §3.1); sets PID. It starts its own
# containerd under --exec-root and --data-root.
start_dockerd() {
    local dir=$1 sock=$1/docker.sock
    mkdir -p "$dir"/{data,exec}
    make_bridge "$dir"
    TMPDIR=$dir/tmp setsid dockerd -H "unix://$sock" --data-root "$dir/data" \
        --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" --bridge "$BRIDGE" \
        --iptables=false --ip-masq=false --cgroup-parent "kedge-$BRIDGE" \
        </dev/null >"$dir/engine.log" 2>&1 &
    PID=$!
    echo "$PID" >"$dir/engine.pid"
}

do_start() {
    local dir=$1 kind=${KEDGE_ENGINE_KIND:-podman} sock pid deadline t0 t1 t2 images
    [[ $kind == podman || $kind == dockerd ]] ||
        die "KEDGE_ENGINE_KIND=$kind: podman or dockerd"
    KIND=$kind
    check_tools
    [[ $kind == dockerd ]] && sock=$dir/docker.sock || sock=$dir/podman.sock
    ((${#sock} < 108)) || die "socket path too long for AF_UNIX (${#sock} > 107): $sock"
    if [[ -n $(service_pid "$dir") ]]; then
        die "a service already runs for $dir (pid $(service_pid "$dir")); stop it first"
    fi
    [[ ! -e $dir ]] || check_engine_dir "$dir"
    mkdir -p "$dir/tmp"
    echo "$kind" >"$dir/engine.kind"
    rm -f "$sock"
    t0=$(now_ms)
    trap 'start_failed "$dir"' EXIT
    "start_$kind" "$dir"
    pid=$PID
    deadline=$((t0 + START_TIMEOUT_S * 1000))
    until ping_ok "$sock"; do
        kill -0 "$pid" 2>/dev/null || die "$kind exited during start-up"
        (($(now_ms) < deadline)) ||
            die "$kind did not answer GET /_ping within ${START_TIMEOUT_S}s"
        sleep 0.05
    done
    t1=$(now_ms)
    import_images "$sock" "$dir/tmp"
    rm -f "$dir"/tmp/api_load.tar*
    t2=$(now_ms)
    trap - EXIT
    note "service answered in $((t1 - t0)) ms, images imported in $((t2 - t1)) ms"
    echo "engine: ready socket=$sock pid=$pid"
}

# conmon and podman processes (the "container cleanup" commands conmon runs), or dockerd's
# containerd and its shims, whose command line names DIR.
dir_processes() {
    local dir=$1 p comm
    for p in /proc/[0-9]*; do
        p=${p#/proc/}
        comm=
        { read -r comm <"/proc/$p/comm"; } 2>/dev/null || continue
        [[ $comm == conmon || $comm == podman || $comm == dockerd || $comm == containerd* ]] ||
            continue
        tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF "$dir/" && echo "$p"
    done
    return 0
}

# Mount points at or under DIR, deepest first.
dir_mounts() {
    local dir=$1
    awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts |
        awk '{ print length($0) " " $0 }' | sort -rn | cut -d' ' -f2-
}

# Stop everything of DIR's service; leaves the files. Never fails.
stop_service() {
    local dir=$1 sock pid deadline ids id m i left
    sock=$dir/$(kind_of "$dir").sock
    pid=$(service_pid "$dir")
    podman_flags "$dir"
    # 1. the containers, through the API while the service answers. An infra container cannot
    #    go while an app container uses its namespaces (HTTP 500), so this takes passes.
    if [[ -n $pid ]] && ping_ok "$sock"; then
        for ((i = 0; i < 4; i++)); do
            ids=$(api "$sock" "http://d/$API/containers/json?all=1" 2>/dev/null |
                grep -o '"Id":"[0-9a-f]*"' | cut -d'"' -f4 || true)
            [[ -z $ids ]] && break
            for id in $ids; do
                api "$sock" -o /dev/null -X DELETE "http://d/$API/containers/$id?force=1&v=1" ||
                    true
            done
        done
    fi
    # 2. the service: SIGTERM, then SIGKILL after the deadline
    if [[ -n $pid ]]; then
        kill -TERM "$pid" 2>/dev/null || true
        deadline=$(($(now_ms) + STOP_TIMEOUT_S * 1000))
        while kill -0 "$pid" 2>/dev/null && (($(now_ms) < deadline)); do
            sleep 0.05
        done
        if kill -0 "$pid" 2>/dev/null; then
            note "service pid $pid ignored SIGTERM for ${STOP_TIMEOUT_S}s; SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        # It is not our child (a former start made it): wait for /proc to drop it.
        for ((i = 0; i < 100; i++)); do
            [[ -d /proc/$pid ]] || break
            # a zombie whose parent is gone is reaped by init; do not wait on it forever
            [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && break
            sleep 0.05
        done
    fi
    # 3. containers the API did not remove (service hung or dead): the CLI works on the same
    #    storage without the service.
    #    podman 4.3's rm -a does not order dependent containers either: passes again.
    if [[ -d $dir/storage/libpod ]] && command -v podman >/dev/null; then
        for ((i = 0; i < 4; i++)); do
            left=$(CONTAINERS_CONF=$dir/containers.conf TMPDIR=$dir/tmp \
                podman "${PODMAN_FLAGS[@]}" ps -aq 2>/dev/null || true)
            [[ -z $left ]] && break
            CONTAINERS_CONF=$dir/containers.conf TMPDIR=$dir/tmp \
                podman "${PODMAN_FLAGS[@]}" rm -af -t 0 >/dev/null 2>&1 || true
        done
        [[ -z $left ]] || note "containers left in $dir: $left"
    fi
    # 4. anything of DIR still running (conmon, cleanup commands)
    for pid in $(dir_processes "$dir"); do
        kill -KILL "$pid" 2>/dev/null || true
    done
    # 5. mounts: container rootfs (overlay), shm, anything else
    for ((i = 0; i < 3; i++)); do
        m=$(dir_mounts "$dir")
        [[ -z $m ]] && break
        while IFS= read -r m; do
            umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
        done <<<"$m"
    done
    m=$(dir_mounts "$dir")
    [[ -z $m ]] || note "still mounted under $dir: $m"
    remove_bridge "$dir"
    return 0
}

# dockerd's bridge and cgroup dirs (make_bridge, start_dockerd): nothing else uses them.
remove_bridge() {
    local dir=$1 br cg
    br=$(cat "$dir/bridge" 2>/dev/null || true)
    [[ $br =~ ^kd[0-9]+$ ]] || return 0
    if ip link show "$br" >/dev/null 2>&1; then
        ip link del "$br" 2>/dev/null || note "could not delete bridge $br"
    fi
    for cg in /sys/fs/cgroup/*/"kedge-$br"; do
        [[ -d $cg ]] && { rmdir "$cg" 2>/dev/null || note "cgroup $cg not empty"; }
    done
    rm -f "$dir/bridge"
}

# Refuse a DIR holding anything engine.sh and enginectl do not put there: stop deletes DIR.
check_engine_dir() {
    local dir=$1 f
    for f in "$dir"/* "$dir"/.[!.]*; do
        [[ -e $f || -L $f ]] || continue
        case ${f##*/} in
        containers.conf | containers.conf.tmp | podman.sock | engine.pid | engine.log | \
            enginectl.log | storage | run | tmp | networks | engine.kind | docker.sock | data | \
            exec | bridge | dockerd.pid) ;;
        *) die "$dir does not look like an engine directory (it has ${f##*/}); not touching it" ;;
        esac
    done
}

do_stop() {
    local dir=$1
    if [[ ! -e $dir ]]; then
        echo "engine: stopped (no $dir)"
        return 0
    fi
    check_engine_dir "$dir"
    stop_service "$dir"
    if [[ ${KEDGE_ENGINE_KEEP_DIR:-} == 1 ]]; then
        rm -f "$dir/podman.sock" "$dir/docker.sock"
        echo "engine: stopped (kept $dir)"
        return 0
    fi
    # --one-file-system: never delete through a mount that would not go away
    rm -rf --one-file-system "$dir" || die "could not remove $dir"
    echo "engine: stopped dir=$dir"
}

main() {
    [[ $# -eq 2 ]] || usage
    local dir
    dir=$(abs_dir "$2")
    case $1 in
    start) do_start "$dir" ;;
    stop) do_stop "$dir" ;;
    images) do_images "$dir" ;;
    *) usage ;;
    esac
}

main "$@"
