// Fault injection for tests: named points in the code where a test can make this process fail
// in a chosen way, so that crash, stop and error paths are exercised deterministically instead
// of by racing a signal against the work.
//
//   LOOKBOOK_FAULT="POINT:ACTION[:rank=R][:nth=N]"   (several separated by ';')
//     POINT   a name passed to FaultPoint(), e.g. embed.shard_start, stage.publish
//     ACTION  kill           SIGKILL this process (a rank that dies mid-work)
//             internal       throw InternalError (exit code 70)
//             input          throw InputError (exit code 1)
//             pause=SECONDS  sleep, waking early when a stop is requested
//             hold=PATH      sleep until the file PATH exists (at most 600 s), or a stop is requested:
//                            a test ends the hold when it has done what it had to do meanwhile
//     rank=R  only on MPI rank R (default: every rank)
//     nth=N   only the N-th time this process reaches the point (default: every time)
// Without LOOKBOOK_FAULT every FaultPoint is a no-op (one relaxed load). The points and the
// tests that use them are listed in docs/operations.md#fault-injection.
#pragma once

namespace lookbook {

// Called once per process with its MPI rank, before any FaultPoint (rank 0 otherwise).
void SetFaultRank(int rank);

// Acts on LOOKBOOK_FAULT when it names `point` (see above); otherwise does nothing.
void FaultPoint(const char* point);

}  // namespace lookbook
