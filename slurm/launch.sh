# Sourced by the sbatch scripts: how ranks start, and how a stop signal reaches them.
#   launch       the launcher: srun --mpi=pmix (Slurm built with PMIx), else mpirun
#   check_world  fails unless the MPI world has SLURM_NTASKS ranks (an srun that cannot
#                wire up MPI starts N single-rank jobs that would each do all the work)
#   run_step     runs a command in the background, forwards USR1/TERM to it as USR1 (the
#                ranks' cooperative stop), and returns its exit code
#   check_restarts  fails loudly when this job has been restarted more than
#                LOOKBOOK_MAX_RESTARTS times (default 3): a job that keeps being stopped or
#                requeued (time limit too short, a node that keeps failing) must reach a person
#   requeue_or_fail  requeues the job (JOB, default this one) unless the cap is reached
if [ -n "${LOOKBOOK_LAUNCHER:-}" ]; then
  choice=$LOOKBOOK_LAUNCHER
elif srun --mpi=list 2>&1 | grep -qw pmix; then
  choice=srun
else
  choice=mpirun
fi
if [ "$choice" = srun ]; then
  launch=(srun --mpi=pmix --kill-on-bad-exit=1)
else
  # Open MPI reads the Slurm allocation; --oversubscribe lets a test node run more ranks than cores.
  launch=(mpirun -np "${SLURM_NTASKS:-1}" --oversubscribe)
fi

check_world() {
  if ! "${launch[@]}" "$lookbook" mpi-check --expect "${SLURM_NTASKS:-1}"; then
    echo "lookbook: the MPI world is not ${SLURM_NTASKS:-1} ranks under ${launch[*]}: refusing to start" >&2
    return 1
  fi
}

run_step() {
  "$@" &
  local step=$!
  trap 'echo "lookbook: stop signal: the ranks finish their current item and publish nothing partial"; kill -USR1 '"$step"' 2>/dev/null' USR1 TERM
  local code
  wait "$step"
  code=$?
  # wait returns early (above 128) when a trapped signal arrives: wait for the step itself.
  while kill -0 "$step" 2>/dev/null; do
    wait "$step"
    code=$?
  done
  trap - USR1 TERM
  return "$code"
}

check_restarts() {
  local restarts=${SLURM_RESTART_COUNT:-0} max=${LOOKBOOK_MAX_RESTARTS:-3}
  if [ "$restarts" -gt "$max" ]; then
    echo "lookbook: job ${SLURM_JOB_ID:-?} has been restarted $restarts times (LOOKBOOK_MAX_RESTARTS=$max): not running again; look at its log, then resubmit (work already published is reused)" >&2
    return 1
  fi
}

requeue_or_fail() {
  local job=${1:-${SLURM_JOB_ID:-}} restarts=${SLURM_RESTART_COUNT:-0} max=${LOOKBOOK_MAX_RESTARTS:-3}
  if [ "$restarts" -ge "$max" ]; then
    echo "lookbook: stopped before the time limit after $restarts restarts (LOOKBOOK_MAX_RESTARTS=$max): not requeueing job $job; resubmit it to go on (work already published is reused)" >&2
    return 1
  fi
  echo "lookbook: stopped before the time limit with nothing partial published: requeueing job $job (restart $((restarts + 1)) of at most $max)"
  scontrol requeue "$job"
}
