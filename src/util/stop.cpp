#include "util/stop.h"

#include <atomic>
#include <csignal>

namespace lookbook {
namespace {

volatile std::sig_atomic_t g_signal = 0;
std::atomic<bool> g_requested{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the flag is set from a signal handler");

extern "C" void OnStopSignal(int signal) {
  g_signal = signal;
  g_requested.store(true, std::memory_order_relaxed);
}

}  // namespace

void InstallStopHandlers() {
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // reads and writes in flight continue; the loops poll the flag
  sigaction(SIGUSR1, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

bool StopRequested() { return g_requested.load(std::memory_order_relaxed); }
int StopSignal() { return static_cast<int>(g_signal); }
void RequestStop() { g_requested.store(true, std::memory_order_relaxed); }

}  // namespace lookbook
