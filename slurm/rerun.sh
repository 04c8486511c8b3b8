#!/usr/bin/env bash
# Reruns some embed shards of one run as a job array and chains the later stages after it:
#   slurm/rerun.sh CONFIG RUN SHARDS [sbatch options...]
#   e.g. slurm/rerun.sh config/nightly.ini /runs/lookbook/runs/20261130T010000Z 3,7,12
# RUN is the run folder to finish (a night under the runs root, or a plain run). Prints the two
# job ids (array, finish). SHARDS is an sbatch --array list. Each job asks for what its config
# needs (slurm/requests.sh); sbatch options given here come after and win.
set -euo pipefail
usage="usage: slurm/rerun.sh CONFIG RUN SHARDS [sbatch options]"
config=${1:?$usage}
run=${2:?$usage}
shards=${3:?$usage}
shift 3
[ -d "$run" ] || { echo "slurm/rerun.sh: no run folder $run" >&2; exit 2; }
run=$(cd "$run" && pwd -P)  # latest -> the night it points at now, not whichever it points at later
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The resources each job needs (slurm/requests.sh): the array's tasks run the models (GPUs when
# the config says cuda); the finish job does not.
text=$("$here/requests.sh" "$config" shard)
mapfile -t shard_requests <<< "$text"
text=$("$here/requests.sh" "$config" finish)
mapfile -t finish_requests <<< "$text"
array=$(sbatch --parsable --array="$shards" "${shard_requests[@]}" "$@" "$here/rerun-shards.sbatch" "$config" "$run")
array=${array%%;*}
finish=$(sbatch --parsable --dependency=afterok:"$array" --kill-on-invalid-dep=yes "${finish_requests[@]}" "$@" \
  "$here/finish.sbatch" "$config" "$run")
echo "$array ${finish%%;*}"
