#!/usr/bin/env bash
# Reruns some embed shards as a job array and chains the later stages after it:
#   slurm/rerun.sh CONFIG SHARDS [sbatch options...]     e.g. slurm/rerun.sh nightly.ini 3,7,12
# Prints the two job ids (array, finish). SHARDS is an sbatch --array list.
set -euo pipefail
config=${1:?usage: slurm/rerun.sh CONFIG SHARDS [sbatch options]}
shards=${2:?usage: slurm/rerun.sh CONFIG SHARDS [sbatch options]}
shift 2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
array=$(sbatch --parsable --array="$shards" "$@" "$here/rerun-shards.sbatch" "$config")
array=${array%%;*}
finish=$(sbatch --parsable --dependency=afterok:"$array" --kill-on-invalid-dep=yes "$@" "$here/finish.sbatch" "$config")
echo "$array ${finish%%;*}"
