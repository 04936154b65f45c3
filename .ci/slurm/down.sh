#!/usr/bin/env bash
# Stop the daemons that .ci/slurm/up.sh started for this SLURM_CI_BASE, by PID (never by name),
# in reverse start order: slurmd, slurmctld, slurmdbd, mariadbd, munged. A recorded PID is only
# signalled while it still belongs to the daemon recorded with it (/proc/PID/comm). Waits for
# each to exit, SIGKILL after 10 s. Exit status 1 if one is still alive.
set -uo pipefail
BASE=${SLURM_CI_BASE:-/tmp/slurm-ci}
STARTED="$BASE/run/started"
[ -s "$STARTED" ] || { echo "slurm-ci: nothing recorded in $STARTED"; exit 0; }

# alive and still the recorded daemon (a zombie, not reaped by a minimal PID 1, counts as gone)
ours() {
  [ "$(cat /proc/"$1"/comm 2>/dev/null)" = "$2" ] || return 1
  [ "$(awk '{print $3}' /proc/"$1"/stat 2>/dev/null)" != Z ]
}
status=0
while read -r pidfile pid name; do
  [ -n "${pid:-}" ] || continue
  ours "$pid" "$name" || continue
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 40); do ours "$pid" "$name" || break; sleep 0.25; done
  if ours "$pid" "$name"; then
    echo "slurm-ci: $name ($pid) ignored SIGTERM, sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null
    sleep 0.5
  fi
  if ours "$pid" "$name"; then
    echo "slurm-ci: $name ($pid) still alive" >&2
    status=1
  else
    echo "slurm-ci: stopped $name ($pid)"
  fi
done < <(tac "$STARTED")
exit $status
