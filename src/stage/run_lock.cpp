#include "stage/run_lock.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "util/error.h"

namespace lookbook {
namespace {

std::string Canonical(const std::filesystem::path& run) {
  std::error_code error;
  const auto path = std::filesystem::weakly_canonical(run, error);
  return (error ? std::filesystem::absolute(run) : path).lexically_normal().string();
}

std::mutex g_mutex;
std::map<std::string, RunLockMode> g_held;  // canonical run -> mode this process holds

std::string UtcNow() {
  const std::time_t now = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return text;
}

std::string Hostname() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "unknown-host";
  return name;
}

std::string ReadAll(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string text;
  char buffer[4096];
  ssize_t n = 0;
  while ((n = ::read(fd, buffer, sizeof(buffer))) > 0 && text.size() < 65536)
    text.append(buffer, static_cast<std::size_t>(n));
  ::close(fd);
  return text;
}

// "host 'h', pid 12, `lookbook embed`, since 2026-..." from a holder file, or a fallback.
std::string DescribeHolder(const std::string& text) {
  try {
    const auto holder = nlohmann::json::parse(text);
    return "host " + holder.at("host").get<std::string>() + ", pid " + std::to_string(holder.at("pid").get<long>()) +
           ", `lookbook " + holder.at("command").get<std::string>() + "`, since " +
           holder.at("since").get<std::string>();
  } catch (const std::exception&) {
    return "a writer that has not described itself yet";
  }
}

std::string HolderJson(const std::string& command, RunLockMode mode) {
  return nlohmann::json{{"host", Hostname()},
                        {"pid", static_cast<long>(::getpid())},
                        {"command", command},
                        {"mode", mode == RunLockMode::kExclusive ? "exclusive" : "shared"},
                        {"since", UtcNow()}}
             .dump() +
         "\n";
}

void WriteHolder(int fd, const std::string& text) {
  if (::ftruncate(fd, 0) != 0) return;
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::pwrite(fd, text.data() + done, text.size() - done, static_cast<off_t>(done));
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

int OpenLockFile(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw InputError("cannot open the run lock " + path.string() + ": " + std::strerror(errno));
  return fd;
}

// Who holds the run, from the holder files in RUN/.locks. A file whose process is gone (this
// host, pid not alive) is left over from a killed writer: removed, not named.
std::string Holders(const std::filesystem::path& run) {
  const std::string me = Hostname();
  std::string out;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(run / ".locks", error)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("holder-", 0) != 0) continue;
    const std::string text = ReadAll(entry.path());
    try {
      const auto holder = nlohmann::json::parse(text);
      if (holder.at("host").get<std::string>() == me &&
          ::kill(static_cast<pid_t>(holder.at("pid").get<long>()), 0) != 0 && errno == ESRCH) {
        std::filesystem::remove(entry.path(), error);
        continue;
      }
    } catch (const std::exception&) {
    }
    out += (out.empty() ? "" : "; ") + DescribeHolder(text);
  }
  return out.empty() ? "another writer" : out;
}

}  // namespace

struct RunLock::Held {
  std::string run;
  RunLockMode mode = RunLockMode::kExclusive;
  int fd = -1;
  int shard_fd = -1;
  std::filesystem::path holder_file;  // this process's description, RUN/.locks/holder-<host>-<pid>.json
  ~Held() {
    if (!holder_file.empty()) ::unlink(holder_file.c_str());
    if (shard_fd >= 0) ::close(shard_fd);
    if (fd >= 0) ::close(fd);
    std::lock_guard<std::mutex> lock(g_mutex);
    g_held.erase(run);
  }
};

std::string WriterId() { return Hostname() + "-" + std::to_string(::getpid()); }

RunLock RunLock::Acquire(const std::filesystem::path& run, RunLockMode mode, const std::string& command, int shard) {
  std::error_code error;
  std::filesystem::create_directories(run / ".locks", error);
  if (error) throw InputError("cannot create the run folder " + run.string() + ": " + error.message());
  auto held = std::make_unique<Held>();
  held->run = Canonical(run);
  held->mode = mode;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    LB_CHECK(!g_held.count(held->run), "the run lock of " + held->run + " is taken twice by one process");
  }
  held->fd = OpenLockFile(run / ".lock");
  if (::flock(held->fd, (mode == RunLockMode::kExclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0) {
    const int why = errno;
    if (why != EWOULDBLOCK) throw InputError("cannot lock " + (run / ".lock").string() + ": " + std::strerror(why));
    throw InputError("run " + run.string() + " is being written by " + Holders(run) +
                     ": one writer at a time (wait for it, or stop it)");
  }
  held->holder_file = run / ".locks" / ("holder-" + WriterId() + ".json");
  const int holder_fd = ::open(held->holder_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (holder_fd >= 0) {
    WriteHolder(holder_fd, HolderJson(command, mode));
    ::close(holder_fd);
  }
  if (mode == RunLockMode::kShared) {
    if (shard >= 0) {
      const auto shard_lock = run / ".locks" / ("embed-shard-" + std::to_string(shard));
      held->shard_fd = OpenLockFile(shard_lock);
      if (::flock(held->shard_fd, LOCK_EX | LOCK_NB) != 0) {
        throw InputError("embed shard " + std::to_string(shard) + " of run " + run.string() +
                         " is being written by another process");
      }
    }
  }
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_held[held->run] = mode;
  }
  return RunLock(std::move(held));
}

RunLock::RunLock(std::unique_ptr<Held> held) : held_(std::move(held)) {}
RunLock::RunLock(RunLock&&) noexcept = default;
RunLock& RunLock::operator=(RunLock&&) noexcept = default;
RunLock::~RunLock() = default;

RunLockMode RunLock::mode() const { return held_->mode; }

bool HoldsRunLock(const std::filesystem::path& run) {
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_held.count(Canonical(run)) > 0;
}

bool HoldsRunExclusively(const std::filesystem::path& run) {
  std::lock_guard<std::mutex> lock(g_mutex);
  const auto it = g_held.find(Canonical(run));
  return it != g_held.end() && it->second == RunLockMode::kExclusive;
}

}  // namespace lookbook
