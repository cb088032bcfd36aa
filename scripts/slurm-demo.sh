#!/usr/bin/env bash
# A real batch engine runs the shards: installs Slurm and munge from Debian's
# archive when missing, starts a one-node Slurm cluster on this machine,
# submits a saved plan's shards as a job array (deploy/slurm-array.sbatch) with
# the finalize job depending on it, waits, and verifies the destination
# against the source. Needs root (apt, munged, slurmd). CI does not run it.
# Usage: scripts/slurm-demo.sh [SHARDS]   (default 4)
set -euo pipefail
cd "$(dirname "$0")/.."
shards=${1:-4}
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  echo "== installing slurm-wlm and munge from Debian's archive"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi
env -u CARGO_TARGET_DIR cargo build --release --quiet
bin=$PWD/target/release/hugesync
work=$PWD/target/slurm-demo
rm -rf "$work" && mkdir -p "$work"/{etc,state,spool,logs}
host=$(hostname -s)

echo "== munge"
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
fi
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged

echo "== a one-node cluster on $host"
export SLURM_CONF=$work/etc/slurm.conf
cat > "$SLURM_CONF" <<CONF
ClusterName=hugesync-demo
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/logs/slurmctld.log
SlurmdLogFile=$work/logs/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
NodeName=$host CPUs=$(nproc) RealMemory=4096 State=UNKNOWN
PartitionName=demo Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
stop_cluster() {
  for pid in "$work/slurmd.pid" "$work/slurmctld.pid"; do
    [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
  done
}
trap stop_cluster EXIT
slurmctld
slurmd
for _ in $(seq 60); do
  sinfo -h -o %T 2>/dev/null | grep -qE '^idle' && break
  sleep 1
done
sinfo

echo "== a tree, a destination to clean up, and the plan"
python3 - "$work/src" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(7)
for i in range(2000):
    d = os.path.join(root, f"d{i % 23}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:05d}.bin"), "wb") as f:
        f.write(rng.randbytes(int(10 ** rng.uniform(1, 5))))
with open(os.path.join(root, "big.raw"), "wb") as f:
    for _ in range(48):
        f.write(rng.randbytes(8 << 20))
PY
mkdir -p "$work/dst/old" && echo gone > "$work/dst/old/gone.txt"
"$bin" plan --delete -q --shards "$shards" -o "$work/plan" "$work/src" "$work/dst"
"$bin" apply "$work/plan" --shard "1/$shards" -n

echo "== submitting $shards shards as a job array, and finalize after them"
cd "$work"
export HUGESYNC=$bin
array=$(sbatch --parsable --array=1-"$shards" "$OLDPWD/deploy/slurm-array.sbatch" "$work/plan")
final=$(sbatch --parsable --dependency=afterok:"$array" "$OLDPWD/deploy/slurm-array.sbatch" --finalize "$work/plan")
echo "array job $array, finalize job $final"
squeue
for _ in $(seq 600); do
  [ -z "$(squeue -h)" ] && break
  sleep 1
done
cd "$OLDPWD"
echo "== the shards' output"
cat "$work"/hugesync-"$array"_*.out
echo "== finalize's output"
cat "$work"/hugesync-"$final"*.out
echo "== verify"
if diff -r "$work/src" "$work/dst" >/dev/null; then
  echo "destination equals the source ($(find "$work/dst" -type f | wc -l) files; old/gone.txt deleted: $([ -e "$work/dst/old" ] && echo no || echo yes))"
else
  echo "destination differs from the source" >&2
  exit 1
fi
