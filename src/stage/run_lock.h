// The run lock. Every command that writes to a run folder holds RUN/.lock (flock) for as long as
// it runs, so that two writers never interleave in one run: the second fails at once (exit 1)
// and its message names the holder (host, pid, command, since), which every holder writes to
// RUN/.locks/holder-<host>-<pid>.json. Read-only commands (status, verify, query) take no lock.
//
// Two modes: a whole-run writer takes the lock exclusively; `embed --shard K` (Slurm job arrays
// of one shard each) takes it shared, plus RUN/.locks/embed-shard-K exclusively, so shard
// tasks run side by side but never beside a whole-run writer nor with the same shard.
// Under MPI one rank holds the lock for the world (AcquireRunLock in jobs/). A process keeps its
// locks until it exits; the kernel releases them when it dies, so a killed writer leaves no
// stale lock. flock works across the nodes of an NFSv4 mount (Linux maps it to NFS locks).
#pragma once

#include <filesystem>
#include <memory>
#include <string>

namespace lookbook {

enum class RunLockMode { kExclusive, kShared };

class RunLock {
 public:
  // Takes the lock without waiting, creating RUN (and RUN/.locks) when missing. Throws
  // InputError naming the holder when another process holds it in a conflicting mode.
  // `shard` >= 0 (shared mode only) also locks that embed shard exclusively.
  static RunLock Acquire(const std::filesystem::path& run, RunLockMode mode, const std::string& command,
                         int shard = -1);

  RunLock(RunLock&&) noexcept;
  RunLock& operator=(RunLock&&) noexcept;
  ~RunLock();  // releases

  RunLockMode mode() const;

 private:
  struct Held;
  explicit RunLock(std::unique_ptr<Held> held);
  std::unique_ptr<Held> held_;
};

// Whether this process holds a lock on `run` (any mode): nested commands (`lookbook run`'s
// stages) do not lock again.
bool HoldsRunLock(const std::filesystem::path& run);
// Whether this process holds `run` exclusively: then no other writer is alive, and whatever
// temporary or staging files other writers left may be removed.
bool HoldsRunExclusively(const std::filesystem::path& run);

// This host's name and this process's id, as lock files, temporaries and staging folders name
// their writer ("host-pid").
std::string WriterId();

}  // namespace lookbook
