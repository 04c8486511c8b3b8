#!/usr/bin/env bash
# The resources a lookbook job asks Slurm for, derived from its config (printed one sbatch option
# a line; slurm/submit.sh passes them to sbatch):
#   slurm/requests.sh CONFIG nightly|shard|finish
#
#   GPUs     one per task when the config's [embed] device is cuda (nightly and shard jobs: embed
#            runs the models; finish only publishes, indexes and deduplicates: no GPU), as
#            --gpus-per-task=1, or --gres=gpu:G with --ntasks-per-node=G where the site prefers
#            it (LOOKBOOK_GPU_REQUEST=gres). LOOKBOOK_GPUS_PER_TASK overrides (0: none).
#   CPUs     --cpus-per-task = [embed] decode-threads + 1 (the inference thread), at least the
#            config's [dedup]/[index] threads. LOOKBOOK_CPUS_PER_TASK overrides.
#   memory   --mem per node, sized from the catalog (docs/operations.md#capacity-planning): a
#            rank of dedup and recs holds every image's row and the embeddings of its own shards
#            (shard k on rank k mod tasks), so per task
#            2 GiB + images x 512 + images x 4 x dim x ceil(shards / tasks) / shards bytes,
#            images = catalog rows x LOOKBOOK_IMAGES_PER_PRODUCT (3), dim = LOOKBOOK_EMBED_DIM
#            (512), shards = [ingest] shards (16); times the tasks per node. LOOKBOOK_MEM
#            overrides (any sbatch --mem value).
#   tasks    --ntasks = LOOKBOOK_NTASKS (nightly and finish: 2; shard: 1).
set -euo pipefail
usage="usage: slurm/requests.sh CONFIG nightly|shard|finish"
config=${1:?$usage}
kind=${2:?$usage}
case "$kind" in nightly | shard | finish) ;; *) echo "$usage" >&2; exit 2 ;; esac
[ -r "$config" ] || { echo "slurm/requests.sh: cannot read $config" >&2; exit 2; }

# A key of the INI file: from [section], else from the top (before any section).
ini() {
  awk -v want_section="$1" -v want_key="$2" '
    /^[[:space:]]*[#;]/ { next }
    /^[[:space:]]*\[/ { gsub(/[][[:space:]]/, ""); section = $0; next }
    {
      line = $0
      eq = index(line, "=")
      if (eq == 0) next
      key = substr(line, 1, eq - 1); value = substr(line, eq + 1)
      gsub(/^[[:space:]]+|[[:space:]]+$/, "", key); gsub(/^[[:space:]]+|[[:space:]]+$/, "", value)
      if (key != want_key) next
      if (section == want_section) found = value
      else if (section == "" && top == "") top = value
    }
    END { print (found != "" ? found : top) }' "$config"
}

if [ "$kind" = shard ]; then
  ntasks=1
  per_node=1
else
  ntasks=${LOOKBOOK_NTASKS:-2}
  per_node=${LOOKBOOK_TASKS_PER_NODE:-$ntasks}
fi
echo "--ntasks=$ntasks"

device=$(ini embed device)
if [ -n "${LOOKBOOK_GPUS_PER_TASK:-}" ]; then
  gpus=$LOOKBOOK_GPUS_PER_TASK
elif [ "$kind" != finish ] && [ "${device%%:*}" = cuda ]; then
  gpus=1
else
  gpus=0
fi
case "$gpus" in '' | *[!0-9]*) echo "slurm/requests.sh: LOOKBOOK_GPUS_PER_TASK must be a count, not '$gpus'" >&2; exit 2 ;; esac
if [ "$gpus" -gt 0 ]; then
  if [ "${LOOKBOOK_GPU_REQUEST:-gpus-per-task}" = gres ]; then
    echo "--ntasks-per-node=$per_node"
    echo "--gres=gpu:$((per_node * gpus))"
  else
    echo "--gpus-per-task=$gpus"
  fi
fi

decode=$(ini embed decode-threads)
threads=$(ini dedup threads)
cpus=${LOOKBOOK_CPUS_PER_TASK:-$(( ${decode:-1} + 1 ))}
if [ -z "${LOOKBOOK_CPUS_PER_TASK:-}" ] && [ -n "$threads" ] && [ "$threads" -gt "$cpus" ]; then cpus=$threads; fi
echo "--cpus-per-task=$cpus"

if [ -n "${LOOKBOOK_MEM:-}" ]; then
  echo "--mem=$LOOKBOOK_MEM"
else
  catalog=$(ini ingest catalog)
  rows=0
  if [ -n "$catalog" ] && [ -r "$catalog" ]; then
    rows=$(($(wc -l < "$catalog") - 1))
  else
    echo "slurm/requests.sh: the catalog '${catalog}' is not readable here: memory sized for 0 products (set LOOKBOOK_MEM)" >&2
  fi
  images=$((rows * ${LOOKBOOK_IMAGES_PER_PRODUCT:-3}))
  shards=$(ini ingest shards)
  shards=${shards:-16}
  # The memory of the rank that holds the most shards: ceil(shards / tasks) of them.
  own=$(((shards + ntasks - 1) / ntasks))
  per_task_mib=$((2048 + (images * 512 + images * 4 * ${LOOKBOOK_EMBED_DIM:-512} * own / shards) / 1048576))
  echo "--mem=$((per_task_mib * per_node))M"
fi
