#!/usr/bin/env bash
# A real SSH server on loopback to serve as a DVC remote, for tests: Debian's OpenSSH sshd with its
# own config, host key, client key and data directory, all under STATE_DIR; key login only.
#
#   scripts/ssh_remote.sh start [STATE_DIR]   # install openssh-server (Debian, as root) if needed, start, wait
#   scripts/ssh_remote.sh stop  [STATE_DIR]   # stop exactly the sshd this script started, by PID
#   scripts/ssh_remote.sh status [STATE_DIR]
#
# After `start`: the server is ssh://$USER@127.0.0.1:$PORT (PORT: METADIP_SSH_PORT, default 2222),
# the client key is STATE_DIR/id_ed25519, the remote's storage is STATE_DIR/store, and
# STATE_DIR/known_hosts holds the server's host key. Idempotent; well under a second once installed.
# Listens on 127.0.0.1 only; the system's own sshd (if any) is left alone.
set -euo pipefail

cmd=${1:-status}
state=${2:-/tmp/metadip-ssh}
port=${METADIP_SSH_PORT:-2222}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

install_packages() {
    if [ ! -x /usr/sbin/sshd ]; then
        [ "$(id -u)" = 0 ] || { echo "ssh_remote: openssh-server is missing; run as root to install it" >&2; exit 1; }
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq --no-install-recommends openssh-server >/dev/null
    fi
}

write_config() {
    mkdir -p "$state/store"
    chmod 700 "$state"
    [ -f "$state/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C metadip-test-host -f "$state/host_ed25519"
    [ -f "$state/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C metadip-test-client -f "$state/id_ed25519"
    cp "$state/id_ed25519.pub" "$state/authorized_keys"
    echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$state/host_ed25519.pub")" > "$state/known_hosts"
    cat > "$state/sshd_config" <<CONF
# written by scripts/ssh_remote.sh (metadip tests)
ListenAddress 127.0.0.1:$port
HostKey $state/host_ed25519
PidFile $state/sshd.pid
AuthorizedKeysFile $state/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers $(id -un)
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
LogLevel INFO
CONF
}

start() {
    install_packages
    if pid_alive "$state/sshd.pid"; then
        echo "ssh_remote: already running ($state)"
    else
        write_config
        mkdir -p /run/sshd  # privilege separation directory
        /usr/sbin/sshd -f "$state/sshd_config" -E "$state/sshd.log"
    fi
    for _ in $(seq 1 50); do
        if ssh -q -i "$state/id_ed25519" -p "$port" -o BatchMode=yes -o IdentitiesOnly=yes \
               -o UserKnownHostsFile="$state/known_hosts" -o StrictHostKeyChecking=yes \
               "$(id -un)@127.0.0.1" true 2>/dev/null; then
            echo "ssh_remote: ssh://$(id -un)@127.0.0.1:$port$state/store (key $state/id_ed25519)"
            return 0
        fi
        sleep 0.1
    done
    echo "ssh_remote: sshd does not accept the key; see $state/sshd.log" >&2
    return 1
}

stop() {
    if pid_alive "$state/sshd.pid"; then
        kill "$(cat "$state/sshd.pid")"
        for _ in $(seq 1 50); do pid_alive "$state/sshd.pid" || break; sleep 0.1; done
        pid_alive "$state/sshd.pid" && { echo "ssh_remote: sshd $(cat "$state/sshd.pid") did not stop" >&2; exit 1; }
    fi
    rm -f "$state/sshd.pid"
    echo "ssh_remote: stopped"
}

case "$cmd" in
    start) start ;;
    stop) stop ;;
    status) pid_alive "$state/sshd.pid" && echo "ssh_remote: running, pid $(cat "$state/sshd.pid") ($state)" || { echo "ssh_remote: not running"; exit 1; } ;;
    *) echo "usage: $0 start|stop|status [STATE_DIR]" >&2; exit 2 ;;
esac
