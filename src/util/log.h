// Logging: spdlog, one line per event on stderr, every line tagged with the MPI rank and the
// stage ("[12:00:01.123] [r0] [ingest] [info] ..."). The one global besides nothing else.
#pragma once

#include <string>

namespace lookbook {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

// Parses "debug|info|warn|error"; nullopt-like false on anything else.
bool ParseLogLevel(const std::string& text, LogLevel* level);

// Sets up the default logger. Call once per process, before the first log line.
void InitLogging(int rank, const std::string& stage, LogLevel level);

}  // namespace lookbook
