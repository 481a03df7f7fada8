#!/bin/sh
# Install and run a single-host Slurm (slurmctld + slurmd + munge) for the side-by-side bench.
#
#   bench/slurm/setup.sh [stock|tuned] [SLOTS]   install if needed, (re)write slurm.conf, (re)start
#   bench/slurm/setup.sh teardown                stop the daemons (packages stay installed)
#
# Idempotent. Needs root and Debian's packages (slurm-wlm, munge). Only the bench calls this;
# tests never do. SLOTS is the node's CPU count as Slurm sees it (default: this host's CPUs);
# the bench passes the shoal cluster's total vCPUs so both systems run the same number of jobs
# at once (SlurmdParameters=config_overrides lets slurmd accept a count above the hardware's).
#
# "stock": Slurm's defaults for everything scheduling-related. "tuned": the settings of Slurm's
# high-throughput guide (see the comments at the tuned block below).
set -eu

MODE="${1:-stock}"
CONF_DIR=/etc/slurm
STATE=/var/spool/slurmctld
SPOOL=/var/spool/slurmd
LOGS=/var/log/slurm
RUN=/run/slurm

stop_daemons() {
    for name in slurmd slurmctld; do
        pidfile="$RUN/$name.pid"
        if [ -f "$pidfile" ]; then
            pid=$(cat "$pidfile")
            kill "$pid" 2>/dev/null || true
            i=0
            while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
            kill -9 "$pid" 2>/dev/null || true
            rm -f "$pidfile"
        fi
    done
}

if [ "$MODE" = "teardown" ]; then
    stop_daemons
    if [ -f /run/munge/munged.pid ]; then
        kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true
        rm -f /run/munge/munged.pid
    fi
    echo "slurm: stopped"
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "bench/slurm/setup.sh: must run as root (it installs packages and starts daemons)" >&2
    exit 2
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    # Packages must not try to start services through an init system this host may lack.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        CLEAN_POLICY=1
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm slurm-client munge >/dev/null
    [ "${CLEAN_POLICY:-0}" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

CPUS=$(nproc)
SLOTS="${2:-$CPUS}"
MEM_MB=$(awk '/MemTotal/ {print int($2 / 1024) - 1024}' /proc/meminfo)
HOST=$(hostname -s)

# munge: one key, one daemon.
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
fi
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge 2>/dev/null || true
chmod 0400 /etc/munge/munge.key
chmod 0700 /etc/munge
if ! { [ -f /run/munge/munged.pid ] && kill -0 "$(cat /run/munge/munged.pid)" 2>/dev/null; }; then
    if id munge >/dev/null 2>&1; then
        su -s /bin/sh munge -c "munged --force" || munged --force
    else
        munged --force
    fi
fi

mkdir -p "$CONF_DIR" "$STATE" "$SPOOL" "$LOGS" "$RUN"

if [ "$MODE" = tuned ]; then
    # From Slurm's "High Throughput Computing Administration Guide", keeping what helps a
    # stream of short jobs on one node and leaving out what trades latency for submit rate
    # (an earlier profile with `defer` and sched_min_interval=2s started one job per 17-20 s):
    # - batch_sched_delay: let batch jobs' launch be delayed a little to schedule many at once;
    #   default_queue_depth / partition_job_depth: look at enough jobs per pass;
    #   sched_interval=5 / bf_interval=5: run the periodic passes every 5 s instead of 60/30 s;
    #   max_rpc_cnt: defer scheduling while many RPCs are pending (protects sbatch throughput).
    # - MessageTimeout up, logging down, no accounting, no job-completion log;
    #   proctrack/linuxproc and task/none avoid cgroup work per job;
    #   MinJobAge small and MaxJobCount/MaxArraySize large so 20,000 jobs fit.
    SCHED='SchedulerParameters=batch_sched_delay=3,default_queue_depth=1000,partition_job_depth=1000,sched_interval=5,bf_interval=5,bf_max_job_test=1000,max_rpc_cnt=150
MessageTimeout=60
SlurmctldDebug=error
SlurmdDebug=error
MinJobAge=5
MaxJobCount=100000
MaxArraySize=20001
SchedulerType=sched/backfill'
else
    # Slurm's defaults (SlurmctldDebug=info is the default too; written for clarity).
    SCHED='SlurmctldDebug=info
SlurmdDebug=info'
fi

cat >"$CONF_DIR/slurm.conf" <<CONF
# Written by bench/slurm/setup.sh ($MODE): one host, $SLOTS slots.
ClusterName=shoalbench
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE
SlurmdSpoolDir=$SPOOL
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
ReturnToService=2
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
$SCHED
NodeName=$HOST CPUs=$SLOTS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=bench Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
: >"$CONF_DIR/cgroup.conf"

stop_daemons
rm -rf "${STATE:?}"/* "${SPOOL:?}"/*
slurmctld -c -i
slurmd -c
# Wait until the node takes jobs.
i=0
until sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; do
    i=$((i + 1))
    if [ $i -gt 150 ]; then
        echo "slurm did not become ready; see $LOGS" >&2
        sinfo >&2 || true
        exit 1
    fi
    scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
    sleep 0.2
done
echo "slurm: $MODE, node $HOST with $SLOTS slots, ready"
