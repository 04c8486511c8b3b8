# Sourced by the sbatch scripts: how ranks start, and how a stop signal reaches them.
#   launch       the launcher: srun --mpi=pmix (Slurm built with PMIx), else mpirun
#   check_world  fails unless the MPI world has SLURM_NTASKS ranks (an srun that cannot
#                wire up MPI starts N single-rank jobs that would each do all the work)
#   run_step     runs a command in the background, forwards USR1/TERM to it as USR1 (the
#                ranks' cooperative stop), and returns its exit code
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
