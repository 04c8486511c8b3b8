#!/usr/bin/env bash
# Submits the nightly job with the resources its config needs (slurm/requests.sh: GPUs, CPUs,
# memory), or checks them with sbatch --test-only:
#   slurm/submit.sh [--test-only] CONFIG [RUN_NAME] [-- extra sbatch options]
# Prints the job id (or, with --test-only, sbatch's verdict) and the requests it used.
set -euo pipefail
usage="usage: slurm/submit.sh [--test-only] CONFIG [RUN_NAME] [-- sbatch options]"
test_only=()
if [ "${1:-}" = --test-only ]; then
  test_only=(--test-only)
  shift
fi
config=${1:?$usage}
shift
name=""
if [ $# -gt 0 ] && [ "$1" != -- ]; then
  name=$1
  shift
fi
[ "${1:-}" = -- ] && shift
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
text=$("$here/requests.sh" "$config" nightly)
mapfile -t requests <<< "$text"
echo "lookbook: sbatch ${requests[*]} $*" >&2
if [ ${#test_only[@]} -gt 0 ]; then
  exec sbatch --test-only "${requests[@]}" "$@" "$here/nightly.sbatch" "$config" ${name:+"$name"}
fi
exec sbatch --parsable "${requests[@]}" "$@" "$here/nightly.sbatch" "$config" ${name:+"$name"}
