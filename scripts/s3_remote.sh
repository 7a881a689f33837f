#!/usr/bin/env bash
# A real S3 server on loopback to serve as a DVC remote, for tests: a one-node Ceph cluster from
# Debian (ceph-mon, ceph-mgr, one in-memory ceph-osd, cephx auth) with the RADOS Gateway (radosgw)
# in front, an S3 user and a bucket. Everything it writes lives in STATE_DIR.
#
#   scripts/s3_remote.sh start [STATE_DIR]   # install the Debian packages (as root) if needed, start, wait
#   scripts/s3_remote.sh stop  [STATE_DIR]   # stop exactly the daemons this script started, by PID
#   scripts/s3_remote.sh status [STATE_DIR]
#
# After `start`: the endpoint is http://127.0.0.1:$PORT (PORT: METADIP_S3_PORT, default 7480), the
# bucket is `metadip`, and STATE_DIR/credentials holds `access_key_id secret_access_key`.
# Idempotent; about 15 s from nothing once installed, ~0.7 GB of memory (the OSD keeps its objects
# in RAM: memstore). Mon, mgr, OSD and gateway bind 127.0.0.1 only.
set -euo pipefail

cmd=${1:-status}
state=${2:-/tmp/metadip-s3}
port=${METADIP_S3_PORT:-7480}
bucket=metadip
conf=$state/ceph.conf
daemons=(client.rgw.gw osd.0 mgr.x mon.a)   # pid files run/$name.pid, in stop order

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
ceph_() { timeout 60 ceph -c "$conf" "$@"; }

install_packages() {
    if ! command -v ceph-mon >/dev/null || ! command -v ceph-osd >/dev/null || ! command -v ceph-mgr >/dev/null \
       || ! command -v radosgw >/dev/null; then
        [ "$(id -u)" = 0 ] || { echo "s3_remote: the Ceph packages are missing; run as root to install them" >&2; exit 1; }
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq --no-install-recommends ceph-mon ceph-mgr ceph-osd radosgw ceph-common >/dev/null
    fi
}

write_config() {
    if [ -n "$(ls -A "$state" 2>/dev/null)" ] && ! grep -qs "written by scripts/s3_remote.sh" "$conf"; then
        echo "s3_remote: $state is not empty and not ours; name an empty or new STATE_DIR" >&2
        exit 1
    fi
    rm -rf "$state" && mkdir -p "$state"/{run,log,mon/a,mgr/x,osd/0,rgw}   # a fresh cluster each start
    cat > "$conf" <<CONF
# written by scripts/s3_remote.sh (metadip tests)
[global]
fsid = $(cat /proc/sys/kernel/random/uuid)
mon_host = v2:127.0.0.1:3300
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_ipv6 = false
ms_bind_msgr1 = false
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
keyring = $state/admin.keyring
run_dir = $state/run
admin_socket = $state/run/\$name.asok
pid_file = $state/run/\$name.pid
log_file = $state/log/\$name.log
mon_data = $state/mon/\$id
mgr_data = $state/mgr/\$id
osd_data = $state/osd/\$id
osd_objectstore = memstore
memstore_device_bytes = 2147483648
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
auth_allow_insecure_global_id_reclaim = false
mgr_initial_modules =
[mon]
mon_initial_members = a
keyring = $state/mon.keyring
[mgr]
keyring = $state/mgr/\$id/keyring
[osd]
keyring = $state/osd/\$id/keyring
[client.rgw.gw]
keyring = $state/rgw/keyring
rgw_frontends = beast endpoint=127.0.0.1:$port
rgw_data = $state/rgw
rgw_enable_usage_log = false
CONF
}

bootstrap() {
    write_config
    ceph-authtool "$state/mon.keyring" --create-keyring --gen-key -n mon. --cap mon 'allow *' >/dev/null
    ceph-authtool "$state/admin.keyring" --create-keyring --gen-key -n client.admin \
        --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
    ceph-authtool "$state/mon.keyring" --import-keyring "$state/admin.keyring" >/dev/null
    monmaptool --create --addv a '[v2:127.0.0.1:3300]' --fsid "$(awk '/^fsid/ {print $3}' "$conf")" "$state/monmap" >/dev/null
    ceph-mon -c "$conf" --mkfs -i a --monmap "$state/monmap" --keyring "$state/mon.keyring"
    ceph-mon -c "$conf" -i a </dev/null >>"$state/log/daemons.out" 2>&1
    ceph_ auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' -o "$state/mgr/x/keyring"
    ceph-mgr -c "$conf" -i x </dev/null >>"$state/log/daemons.out" 2>&1
    local uuid
    uuid=$(cat /proc/sys/kernel/random/uuid)
    ceph_ osd new "$uuid" >/dev/null
    ceph-osd -c "$conf" -i 0 --mkfs --mkkey --no-mon-config --osd-uuid "$uuid" 2>>"$state/log/mkfs.log"
    ceph_ auth add osd.0 osd 'allow *' mon 'allow profile osd' mgr 'allow profile osd' -i "$state/osd/0/keyring" 2>/dev/null
    ceph-osd -c "$conf" -i 0 </dev/null >>"$state/log/daemons.out" 2>&1
    ceph_ auth get-or-create client.rgw.gw mon 'allow rw' osd 'allow rwx' -o "$state/rgw/keyring"
    radosgw -c "$conf" -n client.rgw.gw </dev/null >>"$state/log/daemons.out" 2>&1
}

wait_for_gateway() {
    for _ in $(seq 1 300); do
        curl -s --max-time 5 -o /dev/null "http://127.0.0.1:$port/" && return 0
        sleep 0.2
    done
    echo "s3_remote: the gateway did not answer on 127.0.0.1:$port; see $state/log/" >&2
    return 1
}

make_user_and_bucket() {
    local key secret
    key=$(head -c 10 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)   # 20 characters
    secret=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')           # 40 characters
    timeout 60 radosgw-admin -c "$conf" -n client.admin user create --uid metadip --display-name "metadip tests" \
        --access-key "$key" --secret-key "$secret" >/dev/null
    (umask 077 && echo "$key $secret" > "$state/credentials")
    for _ in $(seq 1 50); do  # the new user reaches the gateway's cache within a moment
        code=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" --user "$key:$secret" \
               -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -X PUT "http://127.0.0.1:$port/$bucket")
        [ "$code" = 200 ] && return 0
        sleep 0.2
    done
    echo "s3_remote: could not create bucket $bucket (HTTP $code); see $state/log/" >&2
    return 1
}

running() { for d in "${daemons[@]}"; do pid_alive "$state/run/$d.pid" || return 1; done; }

start() {
    install_packages
    if running && [ -s "$state/credentials" ]; then
        echo "s3_remote: already running ($state)"
    else
        stop >/dev/null   # a half-started cluster from an earlier failure
        bootstrap
        wait_for_gateway
        make_user_and_bucket
    fi
    echo "s3_remote: s3://$bucket at http://127.0.0.1:$port (credentials in $state/credentials)"
}

stop() {
    for d in "${daemons[@]}"; do
        local pidfile=$state/run/$d.pid
        if pid_alive "$pidfile"; then
            kill "$(cat "$pidfile")"
            for _ in $(seq 1 100); do pid_alive "$pidfile" || break; sleep 0.1; done
            pid_alive "$pidfile" && { echo "s3_remote: $d ($(cat "$pidfile")) did not stop" >&2; exit 1; }
        fi
        rm -f "$pidfile"
    done
    echo "s3_remote: stopped"
}

case "$cmd" in
    start) start ;;
    stop) stop ;;
    status) running && echo "s3_remote: running ($state)" || { echo "s3_remote: not running"; exit 1; } ;;
    *) echo "usage: $0 start|stop|status [STATE_DIR]" >&2; exit 2 ;;
esac
