#!/usr/bin/env bash
# Checks the scheduler templates with the schedulers' own tools:
# - Kubernetes: strict schema validation of every manifest
#   (kubernetes-validate, offline schemas of Kubernetes 1.29 and current).
# - Slurm: a single-node Slurm cluster (Debian's slurm-wlm + munge) on this
#   machine; `sbatch --test-only`, then the real job array over three
#   example cuts, checking that every cut was coloured exactly once.
# Installs what is missing (needs root for apt). Usage: deploy/check.sh
# [path to dacon]; default target/debug/dacon (build it first).
set -euo pipefail
cd "$(dirname "$0")/.."
dacon=$(realpath "${1:-target/debug/dacon}")
[ -x "$dacon" ] || { echo "deploy/check.sh: $dacon missing; run cargo build first" >&2; exit 2; }

echo "== kubernetes"
command -v kubernetes-validate >/dev/null || python3 -m pip install --quiet kubernetes-validate
for v in 1.29 1.37; do
    kubernetes-validate --strict --quiet -k "$v" deploy/kubernetes/*.yaml
done
echo "kubernetes manifests valid (strict, 1.29 and 1.37)"

echo "== slurm"
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi
work=$(mktemp -d)
cleanup() {
    pkill -F "$work/slurmd.pid" 2>/dev/null || true
    pkill -F "$work/slurmctld.pid" 2>/dev/null || true
    [ -n "${munge_pid:-}" ] && kill "$munge_pid" 2>/dev/null || true
    # The daemons write their last words as they stop.
    for _ in 1 2 3 4 5; do rm -rf "$work" 2>/dev/null && break; sleep 1; done
}
trap cleanup EXIT
mkdir -p "$work/spool" "$work/state" "$work/munge"
chown munge:munge "$work/munge" 2>/dev/null || true
cpus=$(nproc)
cat >"$work/slurm.conf" <<CONF
ClusterName=daconcheck
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmdSpoolDir=$work/spool
StateSaveLocation=$work/state
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
NodeName=localhost NodeHostname=localhost CPUs=$cpus RealMemory=4000 State=UNKNOWN
PartitionName=check Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$work/slurm.conf"
socket="$work/munge/munge.socket"
munged --force --socket="$socket" --pid-file="$work/munged.pid" --log-file="$work/munged.log" --seed-file="$work/munged.seed"
munge_pid=$(cat "$work/munged.pid")
export MUNGE_SOCKET="$socket"
printf 'AuthInfo=socket=%s\n' "$socket" >>"$work/slurm.conf"
slurmctld -c -i
slurmd -c
for _ in $(seq 60); do
    sinfo -h -o %t 2>/dev/null | grep -q idle && break
    sleep 1
done
sinfo -h -o %t | grep -q idle || { cat "$work"/*.log >&2; echo "slurm did not come up" >&2; exit 1; }

data="$work/data"
for s in 1 2 3; do
    "$dacon" example --out "$data/cuts/c$s" --frames 2 --width 160 --height 120 --seed "$s" >/dev/null
done
script=deploy/slurm/colorize-array.sbatch
# One core and a little memory per task: this machine is smaller than the
# template's nodes (command-line options override its #SBATCH lines).
small=(--cpus-per-task=1 --mem=400M --output="$work/task-%a.log")
CUTS="$data/cuts" OUT="$data/pred" DACON="$dacon" sbatch --test-only "${small[@]}" "$script"
CUTS="$data/cuts" OUT="$data/pred" DACON="$dacon" timeout 600 sbatch --wait "${small[@]}" "$script"
n=$(sed -n 's/^#SBATCH --array=0-\([0-9]*\)$/\1/p' "$script")
n=$((n + 1))
assigned=$(python3 - "$data"/pred/manifest-*-of-"$n".json <<'PY'
import json, sys
names = []
for path in sys.argv[1:]:
    with open(path) as f:
        m = json.load(f)
    assert m["complete"], path
    names += m["assigned"]
print(" ".join(sorted(names)))
PY
)
[ "$assigned" = "c1 c2 c3" ] || { echo "cuts assigned: $assigned" >&2; exit 1; }
for s in 1 2 3; do [ -f "$data/pred/c$s/0001.png" ] || { echo "cut c$s not coloured" >&2; exit 1; }; done
echo "slurm: $n array tasks on a single-node cluster coloured every cut exactly once"
