#!/usr/bin/env bash
# Bring up a one-node Slurm cluster on this machine, with accounting, for the turbtl
# end-to-end test (tests/slurm/run_e2e.sh).  Debian/Ubuntu, run as root.
#
#   sudo tests/slurm/setup_cluster.sh          # install (first time), configure, start
#
# Idempotent: packages are installed only when missing, the config files are rewritten
# with the same content, and a daemon is started only when it is not already running
# (a daemon whose config changed is restarted).  Works without systemd: every daemon is
# started directly.  What it sets up:
#
#   munged                         authentication (key in /etc/munge/munge.key)
#   mariadbd                       the accounting database (socket auth for root)
#   slurmdbd                       accounting daemon -> `sacct` works (the Snakemake
#                                  Slurm executor polls job states with sacct)
#   slurmctld + slurmd             controller and compute daemon; one node = this host,
#                                  with the CPU count and memory `slurmd -C` reports
#   sacctmgr                       cluster $CLUSTER, account $ACCOUNT, user(s) in it
#   partition $PARTITION           the only (default) partition
#
# Environment (all optional): TURBTL_TEST_CLUSTER (default turbtl),
# TURBTL_TEST_ACCOUNT (default turbtl), TURBTL_TEST_PARTITION (default debug),
# TURBTL_TEST_MEM_RESERVE_MB (memory kept back from Slurm, default 1024).
# Logs: /var/log/slurm/*.log, /var/log/turbtl-slurm-test/*.log
set -euo pipefail

CLUSTER=${TURBTL_TEST_CLUSTER:-turbtl}
ACCOUNT=${TURBTL_TEST_ACCOUNT:-turbtl}
PARTITION=${TURBTL_TEST_PARTITION:-debug}
MEM_RESERVE_MB=${TURBTL_TEST_MEM_RESERVE_MB:-1024}
DB_PASS=turbtl-slurmdbd          # local test database only, reachable via localhost

LOGDIR=/var/log/turbtl-slurm-test
t0=$(date +%s)
say() { printf '[setup_cluster %4ds] %s\n' "$(( $(date +%s) - t0 ))" "$*"; }
die() { say "ERROR: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (e.g. sudo $0): it installs packages and starts daemons"
command -v apt-get >/dev/null || die "needs apt-get (Debian/Ubuntu); on other systems install slurm, slurmdbd, munge and mariadb by hand"

# --------------------------------------------------------------------------- packages
PKGS=(slurm-wlm slurmdbd munge mariadb-server)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    # no init system here: keep the packages' maintainer scripts from starting services
    created_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        created_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${PKGS[@]}" >/dev/null
    [ $created_policy -eq 1 ] && rm -f /usr/sbin/policy-rc.d
    say "packages installed"
else
    say "packages already installed"
fi

mkdir -p "$LOGDIR" /var/log/slurm /var/spool/slurmctld /var/spool/slurmd /run/slurm /etc/slurm

# --------------------------------------------------------------------------- helpers
# running <pidfile>: the pid in the file is alive
running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
# wait_for <seconds> <description> <command...>
wait_for() {
    local n=$1 what=$2; shift 2
    for _ in $(seq "$n"); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 1
    done
    die "timed out after ${n}s waiting for $what"
}
# write_if_changed <file> <mode>: stdin -> file; returns 0 when the content changed
write_if_changed() {
    local f=$1 mode=$2 tmp
    tmp=$(mktemp)
    cat > "$tmp"
    if [ -f "$f" ] && cmp -s "$tmp" "$f"; then rm -f "$tmp"; chmod "$mode" "$f"; return 1; fi
    mv "$tmp" "$f"; chmod "$mode" "$f"; return 0
}
stop_pidfile() {
    if running "$1"; then
        local pid; pid=$(cat "$1"); kill "$pid" 2>/dev/null || true
        for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    fi
    rm -f "$1"
}

# --------------------------------------------------------------------------- munge
if [ ! -s /etc/munge/munge.key ]; then
    say "creating munge key"
    if command -v mungekey >/dev/null; then mungekey --create --force >/dev/null
    else dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; fi
fi
chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/lib/munge /var/log/munge
chown munge:munge /run/munge /var/lib/munge /var/log/munge; chmod 755 /run/munge
if ! running /run/munge/munged.pid || ! munge -n </dev/null | unmunge >/dev/null 2>&1; then
    say "starting munged"
    stop_pidfile /run/munge/munged.pid
    rm -f /run/munge/munge.socket.2*
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    wait_for 30 "munged" sh -c 'munge -n </dev/null | unmunge'
fi
say "munge ok"

# --------------------------------------------------------------------------- mariadb
MYSQL_PID=/run/mysqld/mysqld.pid
mkdir -p /run/mysqld; chown mysql:mysql /run/mysqld
if [ ! -d /var/lib/mysql/mysql ]; then
    say "initialising the database directory"
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql >"$LOGDIR/mariadb-install.log" 2>&1
fi
if ! running "$MYSQL_PID"; then
    say "starting mariadbd"
    nohup /usr/sbin/mariadbd --user=mysql --datadir=/var/lib/mysql --pid-file="$MYSQL_PID" \
        --socket=/run/mysqld/mysqld.sock --bind-address=127.0.0.1 --skip-name-resolve \
        >>"$LOGDIR/mariadb.log" 2>&1 </dev/null &
    wait_for 60 "mariadbd (see $LOGDIR/mariadb.log)" mariadb -e 'SELECT 1'
fi
mariadb <<SQL
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
SQL
say "mariadb ok"

# --------------------------------------------------------------------------- slurm configs
HOST=$(hostname -s)
# the node's real hardware as slurmd sees it, e.g.
# NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=23991
HW=$(slurmd -C | head -1)
field() { sed -n "s/.*[[:space:]]$1=\([0-9]*\).*/\1/p" <<<"$HW"; }
CPUS=$(field CPUs); BOARDS=$(field Boards); SOCKETS=$(field SocketsPerBoard)
CORES=$(field CoresPerSocket); THREADS=$(field ThreadsPerCore); REALMEM=$(field RealMemory)
[ -n "$CPUS" ] && [ -n "$REALMEM" ] || die "could not parse 'slurmd -C': $HW"
MEM=$(( REALMEM > 2 * MEM_RESERVE_MB ? REALMEM - MEM_RESERVE_MB : REALMEM ))
say "node $HOST: CPUs=$CPUS RealMemory=$REALMEM MB (Slurm gets $MEM MB)"

changed_ctl=0; changed_dbd=0
# proctrack/linuxproc + task/none: no cgroups needed (containers, gVisor, no systemd).
# The memory limits are then enforced by Slurm's accounting of requested memory, not by
# the kernel: fine for a test cluster.
if write_if_changed /etc/slurm/slurm.conf 644 <<EOF
# One-node test cluster for turbtl (written by tests/slurm/setup_cluster.sh).
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# short scheduler intervals: the test runs many short jobs
SchedulerParameters=sched_interval=5,bf_interval=5
MinJobAge=300
KillWait=10
InactiveLimit=0
SlurmctldTimeout=60
SlurmdTimeout=60
# accounting through slurmdbd: sacct works
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=6819
AccountingStorageEnforce=associations
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=10
JobCompType=jobcomp/none
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS Boards=$BOARDS SocketsPerBoard=$SOCKETS CoresPerSocket=$CORES ThreadsPerCore=$THREADS RealMemory=$MEM State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
then changed_ctl=1; fi

# not used by the plugins above (no cgroup plugin is loaded); kept so that switching to
# proctrack/cgroup + task/cgroup on a host with a writable cgroup tree needs no new file
write_if_changed /etc/slurm/cgroup.conf 644 <<EOF || true
# written by tests/slurm/setup_cluster.sh; only read if slurm.conf selects a cgroup plugin
CgroupAutomount=yes
ConstrainCores=yes
ConstrainRAMSpace=yes
EOF

if write_if_changed /etc/slurm/slurmdbd.conf 600 <<EOF
# written by tests/slurm/setup_cluster.sh
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
PidFile=/run/slurm/slurmdbd.pid
LogFile=/var/log/slurm/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=$DB_PASS
EOF
then changed_dbd=1; fi

# --------------------------------------------------------------------------- slurmdbd
if [ $changed_dbd -eq 1 ]; then stop_pidfile /run/slurm/slurmdbd.pid; fi
if ! running /run/slurm/slurmdbd.pid; then
    say "starting slurmdbd"
    /usr/sbin/slurmdbd
    wait_for 60 "slurmdbd (see /var/log/slurm/slurmdbd.log)" sacctmgr -n list cluster
fi
say "slurmdbd ok"

# cluster, account and users (before slurmctld registers with slurmdbd)
sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER" \
    || sacctmgr -i add cluster "$CLUSTER" >/dev/null
sacctmgr -n -P list account format=account | grep -qx "$ACCOUNT" \
    || sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" description="turbtl test" organization=turbtl >/dev/null
users=(root)
[ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ] && users+=("$SUDO_USER")
for u in "${users[@]}"; do
    sacctmgr -n -P list assoc where user="$u" account="$ACCOUNT" format=user | grep -qx "$u" \
        || sacctmgr -i add user "$u" account="$ACCOUNT" defaultaccount="$ACCOUNT" cluster="$CLUSTER" >/dev/null
done
say "accounting: cluster $CLUSTER, account $ACCOUNT, users ${users[*]}"

# --------------------------------------------------------------------------- slurmctld / slurmd
if [ $changed_ctl -eq 1 ]; then
    stop_pidfile /run/slurm/slurmd.pid
    stop_pidfile /run/slurm/slurmctld.pid
fi
if ! running /run/slurm/slurmctld.pid; then
    say "starting slurmctld"
    /usr/sbin/slurmctld
    wait_for 60 "slurmctld (see /var/log/slurm/slurmctld.log)" scontrol ping
fi
if ! running /run/slurm/slurmd.pid; then
    say "starting slurmd"
    /usr/sbin/slurmd
fi

# wait until the node is idle (or busy with jobs of an earlier run)
state=""
for _ in $(seq 90); do
    state=$(sinfo -h -N -n "$HOST" -o '%T' 2>/dev/null | head -1 || true)
    case "$state" in
        idle|mixed|allocated) break ;;
        drain*|down*|fail*)
            reason=$(sinfo -h -R -n "$HOST" -o '%E' 2>/dev/null || true)
            say "node is $state ($reason): resuming it"
            scontrol update nodename="$HOST" state=resume 2>/dev/null || true ;;
    esac
    sleep 1
done
case "$state" in
    idle|mixed|allocated) ;;
    *) die "node $HOST did not become idle (state '$state'); see /var/log/slurm/slurmd.log and slurmctld.log" ;;
esac
sinfo
say "cluster ready (${state})"
