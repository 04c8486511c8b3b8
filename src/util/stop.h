// Cooperative stop. SIGUSR1 (Slurm's --signal=B:USR1@<s> warning, forwarded to the ranks by
// the job script through srun/mpirun) and SIGTERM set a flag; the stages poll it at item
// boundaries (an image, a query batch, a product batch), abandon the unit of work they are in
// (a shard, a stage) without publishing any of it, meet the other ranks at their next
// collective, and report status "stopped". The command then exits with kExitStopped, which the
// nightly script turns into a requeue; a rerun redoes only what was not published.
#pragma once

namespace lookbook {

// EX_TEMPFAIL: stopped on request, nothing partial published, rerun to finish.
inline constexpr int kExitStopped = 75;

// Installs the handlers for SIGUSR1 and SIGTERM (idempotent; async-signal-safe flag only).
void InstallStopHandlers();

// True once a stop signal arrived (or RequestStop was called).
bool StopRequested();
// The signal that asked (0 when none or RequestStop).
int StopSignal();
// For tests and for ranks that learn of a stop from another rank.
void RequestStop();

}  // namespace lookbook
