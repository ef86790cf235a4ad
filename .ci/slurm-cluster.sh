#!/usr/bin/env bash
# A one-node SLURM cluster on localhost for tests: `.ci/slurm-cluster.sh up|down|status`.
#
# Needs root and Debian's slurm-wlm + munge (.ci/run installs them). `up` writes
# /etc/slurm/slurm.conf (only if absent or written by this script), starts munged (unless a
# working one runs), slurmctld and slurmd, and waits until the node accepts jobs. Every step
# runs under `timeout -s KILL`, so a hung daemon cannot eat the CI budget.
#
# Several test sessions may share the cluster: `up` registers the caller (--owner PID, default
# the parent process) and `down` stops the daemons only when no registered caller is alive,
# and only those this script started (by pid; never by name).
#
# Exit codes: 0 ok, 2 prerequisites missing (not root, commands absent: callers skip),
# 1 anything else (the message says what; logs are under $STATE).
set -euo pipefail

STATE=${NBSWEEP_SLURM_STATE:-/run/nbsweep-slurm}
CONF=/etc/slurm/slurm.conf
CPUS=${NBSWEEP_SLURM_CPUS:-32}
MARK="# Written by nbsweep .ci/slurm-cluster.sh: one-node test cluster on localhost."
T="timeout -s KILL"

log() { echo "slurm-cluster: $*" >&2; }
die() { log "$*"; exit 1; }

usage() { echo "usage: $0 up|down|status [--owner PID]" >&2; exit 1; }

check_prerequisites() {
  local missing=()
  [ "$(id -u)" = 0 ] || { log "must run as root"; exit 2; }
  for cmd in sbatch squeue sinfo scontrol slurmctld slurmd munged munge unmunge; do
    command -v "$cmd" >/dev/null || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null || missing+=("$cmd")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "missing commands: ${missing[*]} (apt-get install -y slurm-wlm munge)"
    exit 2
  fi
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pid_of() { cat "$STATE/$1.pid" 2>/dev/null || true; }

# --- munge ----------------------------------------------------------------------------------
munge_works() { $T 10 munge -n 2>/dev/null | $T 10 unmunge >/dev/null 2>&1; }

start_munge() {
  if munge_works; then
    log "munge: already running"
    return
  fi
  install -d -o munge -g munge -m 0700 /etc/munge
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
  if [ ! -s /etc/munge/munge.key ]; then
    log "munge: creating /etc/munge/munge.key"
    $T 10 dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  # A pid file left by a killed munged makes the new one refuse to start.
  local old
  old=$(cat /run/munge/munged.pid 2>/dev/null || true)
  alive "$old" || rm -f /run/munge/munged.pid /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
  $T 20 runuser -u munge -- munged 9>&- || die "munged did not start (see /var/log/munge/munged.log)"
  for _ in $(seq 50); do
    munge_works && break
    sleep 0.2
  done
  munge_works || die "munge does not answer (see /var/log/munge/munged.log)"
  cp /run/munge/munged.pid "$STATE/munged.pid"
  log "munge: started (pid $(pid_of munged))"
}

# --- slurm ----------------------------------------------------------------------------------
# Write the config this script wants to $CONF.tmp.
render_conf() {
  local host node memory
  if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    # Exit 2 = unavailable: the tests skip, naming this reason, instead of erroring.
    log "$CONF exists and was not written by this script (a real cluster's config?); not replacing it"
    exit 2
  fi
  host=$(hostname -s)
  # `slurmd -C` prints this machine's node line (CPUs, sockets, RealMemory) and an UpTime line.
  # The node advertises $CPUS CPUs whatever the machine has (SlurmdParameters=config_overrides):
  # test jobs mostly wait for a kernel, so a 2-core runner can run several side by side, and the
  # SLURM tests run about 15 at once: none should wait in the queue for a CPU.
  memory=$($T 20 slurmd -C | grep -o 'RealMemory=[0-9]*') || die "slurmd -C failed"
  node="NodeName=$host NodeAddr=127.0.0.1 CPUs=$CPUS $memory"
  install -d -m 0755 /etc/slurm "$STATE/slurmctld" "$STATE/slurmd"
  cat >"$CONF.tmp" <<EOF
$MARK
ClusterName=nbsweep
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Finished jobs stay visible to squeue for 10 minutes: status checks need no slurmdbd.
MinJobAge=600
ReturnToService=2
KillWait=5
InactiveLimit=0
StateSaveLocation=$STATE/slurmctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
SlurmdParameters=config_overrides
$node State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
# A second partition, so tests can tell a requested partition from the default one.
PartitionName=short Nodes=ALL MaxTime=60 State=UP
EOF
}

cluster_ready() {
  $T 10 scontrol ping 2>/dev/null | grep -q 'is UP' &&
    $T 10 sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated|completing)'
}

ours_running() { alive "$(pid_of slurmctld)" && alive "$(pid_of slurmd)"; }

start_slurm() {
  render_conf
  if cmp -s "$CONF.tmp" "$CONF" && ours_running && cluster_ready; then
    rm -f "$CONF.tmp"
    log "slurm: already up"
    return
  fi
  mv "$CONF.tmp" "$CONF"
  # Leftovers of a killed cluster of ours (pids recorded by us) are stopped first.
  stop_pid slurmd
  stop_pid slurmctld
  # -c: start clean, without jobs or node states saved by an earlier cluster.
  $T 30 slurmctld -c 9>&- || die "slurmctld did not start (see $STATE/slurmctld.log)"
  $T 30 slurmd 9>&- || die "slurmd did not start (see $STATE/slurmd.log)"
  for _ in $(seq 150); do
    cluster_ready && break
    sleep 0.2
  done
  cluster_ready || die "the node did not become idle within 30 s (see $STATE/slurmctld.log and $STATE/slurmd.log)"
  log "slurm: up (slurmctld pid $(pid_of slurmctld), slurmd pid $(pid_of slurmd)); $($T 10 sinfo -h -o '%P %D %T %c CPUs %m MB' | paste -sd ';')"
}

# Stop one daemon this script started: SIGTERM by its recorded pid, SIGKILL after 10 s.
stop_pid() {
  local name=$1 pid
  pid=$(pid_of "$name")
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
      alive "$pid" || break
      sleep 0.2
    done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
    log "$name: stopped (pid $pid)"
  fi
  rm -f "$STATE/$name.pid"
}

# --- users ----------------------------------------------------------------------------------
prune_users() {
  local f
  for f in "$STATE"/users/*; do
    [ -e "$f" ] || continue
    alive "$(basename "$f")" || rm -f "$f"
  done
}

live_users() { prune_users; find "$STATE/users" -type f 2>/dev/null | wc -l; }

# --- main -----------------------------------------------------------------------------------
[ $# -ge 1 ] || usage
action=$1
shift
owner=$PPID
while [ $# -gt 0 ]; do
  case $1 in
    --owner) owner=${2:?--owner needs a pid}; shift 2 ;;
    *) usage ;;
  esac
done

check_prerequisites
export PATH="$PATH:/usr/sbin:/sbin"
install -d -m 0755 "$STATE" "$STATE/users"
# The lock fd is closed for every daemon started below (9>&-), or they would hold it forever.
exec 9>"$STATE/lock"
$T 120 flock 9 || die "another slurm-cluster.sh holds $STATE/lock for over 120 s"

case $action in
  up)
    start_munge
    start_slurm
    touch "$STATE/users/$owner"
    ;;
  down)
    rm -f "$STATE/users/$owner"
    users=$(live_users)
    if [ "$users" -gt 0 ]; then
      log "still used by $users other session(s); leaving the daemons running"
      exit 0
    fi
    if alive "$(pid_of slurmctld)"; then
      # Cancel what is left, then stop the daemons we started.
      $T 10 scancel --state=PENDING,RUNNING --full 2>/dev/null || true
    fi
    stop_pid slurmd
    stop_pid slurmctld
    stop_pid munged
    # With a slurm.conf but no controller, every SLURM command (and so every `snakemake` start,
    # whose SLURM executor plugin queries the cluster on import) waits ~10 s for a timeout.
    if grep -qF "$MARK" "$CONF" 2>/dev/null; then rm -f "$CONF"; fi
    ;;
  status)
    if cluster_ready; then
      $T 10 sinfo
      echo "users: $(live_users)"
    else
      log "not running"
      exit 1
    fi
    ;;
  *) usage ;;
esac
