#!/usr/bin/env bash
# A real single-node SLURM cluster on loopback, for tests: slurmctld + slurmd + munged, one node
# with all local CPUs and two schedulable fake GPUs (gres gpu:2, character devices that are /dev/null
# twins), partition "debug".
#
#   scripts/slurm_cluster.sh start [STATE_DIR]   # install (Debian, as root) if needed, configure, start, wait for idle
#   scripts/slurm_cluster.sh stop  [STATE_DIR]   # stop exactly the daemons this script started, by PID
#   scripts/slurm_cluster.sh status [STATE_DIR]
#
# Idempotent: `start` on a running cluster only checks it; a few seconds once the packages are
# installed. Nothing listens beyond loopback (CommunicationParameters=NoInAddrAny,NoCtldInAddrAny;
# the node's name resolves to 127.0.0.1). The config must live at /etc/slurm/slurm.conf (the job
# step plugin drops SLURM_CONF before srun), so this script owns that file while the cluster runs.
set -euo pipefail

cmd=${1:-status}
state=${2:-/tmp/metadip-slurm}
conf=/etc/slurm/slurm.conf
node=$(hostname -s)

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

install_packages() {
    if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
        [ "$(id -u)" = 0 ] || { echo "slurm_cluster: slurm-wlm and munge are missing; run as root to install them" >&2; exit 1; }
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
    fi
}

resolve_loopback() {
    # slurmd must find its own node name on loopback, never on a public address
    if ! getent ahostsv4 "$node" | awk '{print $1}' | grep -q '^127\.'; then
        echo "127.0.0.1 $node" >> /etc/hosts
    fi
}

write_config() {
    mkdir -p "$state"/ctld "$state"/spool /etc/slurm
    local mem
    mem=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) - 2048 ))
    cat > "$conf" <<CONF
# written by scripts/slurm_cluster.sh (metadip tests); removed by 'stop'
ClusterName=metadip
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=6817
SlurmdPort=6818
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
MinJobAge=3600
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
GresTypes=gpu
NodeName=$node NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$mem Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
    for i in 0 1; do [ -c "$state/fake-gpu$i" ] || mknod "$state/fake-gpu$i" c 1 3; done   # /dev/null twins: the fake GPUs
    cat > /etc/slurm/gres.conf <<CONF
AutoDetect=off
Name=gpu File=$state/fake-gpu[0-1]
CONF
}

start() {
    install_packages
    resolve_loopback
    if pid_alive "$state/slurmctld.pid" && pid_alive "$state/slurmd.pid"; then
        echo "slurm_cluster: already running ($state)"
    else
        write_config
        mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
        chown munge:munge /run/munge /var/log/munge /var/lib/munge
        if [ ! -s /etc/munge/munge.key ]; then
            dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
            chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
        fi
        if ! pid_alive "$state/munged.pid" && ! (munge -n 2>/dev/null | unmunge >/dev/null 2>&1); then
            runuser -u munge -- /usr/sbin/munged   # writes /run/munge/munged.pid; someone else's munged is left alone
            sleep 0.3
            cp /run/munge/munged.pid "$state/munged.pid"
        fi
        slurmctld
        slurmd
    fi
    for _ in $(seq 1 100); do
        if [ "$(sinfo -h -n "$node" -o %t 2>/dev/null)" = "idle" ]; then
            echo "slurm_cluster: node $node idle, partition debug, 2 gpus ($state)"
            return 0
        fi
        sleep 0.2
    done
    echo "slurm_cluster: node did not become idle; see $state/slurmctld.log and $state/slurmd.log" >&2
    return 1
}

stop() {
    for d in slurmd slurmctld munged; do
        if pid_alive "$state/$d.pid"; then
            kill "$(cat "$state/$d.pid")"
            for _ in $(seq 1 50); do pid_alive "$state/$d.pid" || break; sleep 0.1; done
            pid_alive "$state/$d.pid" && { echo "slurm_cluster: $d ($(cat "$state/$d.pid")) did not stop" >&2; exit 1; }
        fi
        rm -f "$state/$d.pid"
    done
    grep -q "written by scripts/slurm_cluster.sh" "$conf" 2>/dev/null && rm -f "$conf" /etc/slurm/gres.conf
    echo "slurm_cluster: stopped"
}

case "$cmd" in
    start) start ;;
    stop) stop ;;
    status) pid_alive "$state/slurmctld.pid" && pid_alive "$state/slurmd.pid" && sinfo || { echo "slurm_cluster: not running"; exit 1; } ;;
    *) echo "usage: $0 start|stop|status [STATE_DIR]" >&2; exit 2 ;;
esac
