#!/usr/bin/env bash
# slurm-up.sh - idempotent single-node SLURM (munge + slurmctld + slurmd) on localhost.
# Copied from ../shared/recipes (measured recipe); started and stopped by tests/test_slurm.py.
# Debian 12 / slurm 22.05, run as root, no systemd needed. Safe to re-run.
# SLURM_ACCOUNTING=1 also runs MariaDB + slurmdbd so that `sacct` works (submitit
# needs sacct to notice jobs that die without writing a result; see report).
set -euo pipefail
PREFIX=${SLURM_PREFIX:-/tmp/local-slurm}          # state, logs, pid files live here
ACCT=${SLURM_ACCOUNTING:-0}
RUN=$PREFIX/run LOG=$PREFIX/log STATE=$PREFIX/state CONF=/etc/slurm/slurm.conf
export DEBIAN_FRONTEND=noninteractive
t0=$(date +%s%N)
alive() { [ -s "$1" ] && [ "$(cat /proc/"$(cat "$1")"/comm 2>/dev/null)" = "$2" ]; }
waitfor() { for _ in $(seq 300); do eval "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "timeout: $1"; exit 1; }

# 1. packages (--no-install-recommends: 9 debs instead of 43)
pkgs="slurm-wlm munge" bins="slurmctld slurmd sbatch munged"
[ "$ACCT" = 1 ] && pkgs="$pkgs slurmdbd mariadb-server" bins="$bins slurmdbd mariadbd"
for b in $bins; do
  command -v "$b" >/dev/null || { apt-get update -qq; apt-get install -y -qq --no-install-recommends $pkgs >/dev/null; break; }
done
mkdir -p "$RUN" "$LOG" "$STATE/ctld" "$STATE/d" /etc/slurm

# 2. munge key (Debian's postinst normally creates one) + munged as user munge
if [ ! -s /etc/munge/munge.key ]; then
  install -d -o munge -g munge -m 0700 /etc/munge
  runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
install -d -o munge -g munge -m 0755 /run/munge   # systemd's RuntimeDirectory= normally does this
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged
  waitfor 'munge -n | unmunge'
  cp /run/munge/munged.pid "$RUN/munged.pid"     # slurm-down.sh stops only what we started
fi

# 3. slurm.conf; SlurmctldHost/NodeAddr pinned to 127.0.0.1 so no DNS is needed
H=$(hostname -s)
NODE=$(slurmd -C | head -1)                      # NodeName=$H CPUs=.. ... RealMemory=..
ACCT_TYPE=accounting_storage/none
[ "$ACCT" = 1 ] && ACCT_TYPE="accounting_storage/slurmdbd
AccountingStorageHost=localhost"
cat > "$RUN/slurm.conf.new" <<EOF
ClusterName=localci
SlurmctldHost=$H(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
AccountingStorageType=$ACCT_TYPE
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
ReturnToService=2
MailProg=/bin/true
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
$NODE NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
if ! cmp -s "$RUN/slurm.conf.new" "$CONF"; then
  mv "$RUN/slurm.conf.new" "$CONF"
  for d in slurmd slurmctld; do   # config changed: restart our daemons
    if alive "$RUN/$d.pid" $d; then p=$(cat "$RUN/$d.pid"); kill "$p"; while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; fi
  done
fi
rm -f "$RUN/slurm.conf.new"

# 4. optional accounting: private MariaDB datadir (root via unix socket) + slurmdbd
if [ "$ACCT" = 1 ]; then
  DB=$PREFIX/db
  if [ ! -d "$DB/data/mysql" ]; then
    install -d -o mysql -g mysql "$DB"
    mariadb-install-db --user=mysql --datadir="$DB/data" --auth-root-authentication-method=socket \
      --skip-test-db >"$LOG/mariadb-install.log" 2>&1
  fi
  install -d -o mysql -g mysql /run/mysqld
  if ! mariadb -uroot -e 'select 1' >/dev/null 2>&1; then
    setsid -f runuser -u mysql -- /usr/sbin/mariadbd --no-defaults --datadir="$DB/data" --skip-networking \
      --socket=/run/mysqld/mysqld.sock --pid-file="$DB/mariadbd.pid" --log-error="$LOG/mariadb.log" \
      --innodb-buffer-pool-size=64M </dev/null >/dev/null 2>&1
    waitfor "mariadb -uroot -e 'select 1'"
    cp "$DB/mariadbd.pid" "$RUN/mariadbd.pid"
  fi
  cat > /etc/slurm/slurmdbd.conf <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
PidFile=$RUN/slurmdbd.pid
LogFile=$LOG/slurmdbd.log
EOF
  chmod 600 /etc/slurm/slurmdbd.conf
  alive "$RUN/slurmdbd.pid" slurmdbd || slurmdbd
  waitfor 'sacctmgr -n list cluster'             # slurmctld registers the cluster itself
fi

# 5. slurm daemons (they daemonize and write their own pid files)
alive "$RUN/slurmctld.pid" slurmctld || slurmctld
alive "$RUN/slurmd.pid" slurmd || slurmd

# 6. wait until the node is usable, then smoke-test
for i in $(seq 120); do
  st=$(sinfo -h -n "$H" -o %T 2>/dev/null || true)
  case $st in
    idle|mixed|allocated|completing) break ;;
    down|drained|draining) scontrol update NodeName="$H" State=RESUME || true ;;
  esac
  [ "$i" = 120 ] && { echo "node not ready (state='$st')"; tail -n 20 "$LOG"/*.log; exit 1; }
  sleep 0.5
done
timeout 30 srun -N1 -t 1 hostname >/dev/null
[ "$ACCT" = 1 ] && waitfor "sacctmgr -n list cluster | grep -q localci"
sinfo
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
printf 'slurm-up: ready in %d.%03ds (accounting=%s, logs: %s)\n' $((ms / 1000)) $((ms % 1000)) "$ACCT" "$LOG"
