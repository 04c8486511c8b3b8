#include "stage/stage.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "stage/run_lock.h"
#include "tests/unit/test_support.h"
#include "util/error.h"
#include "util/manifest.h"

namespace lookbook {
namespace {

// Another process holding a lock on `run` while `check` runs in this one (fork: the child holds
// the lock until told to let go, and never returns into the test).
template <typename Check>
void WhileAnotherProcessHolds(const std::filesystem::path& run, RunLockMode mode, const std::string& command, int shard,
                              Check check) {
  int ready[2], done[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(done), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    char byte = 0;
    try {
      const RunLock lock = RunLock::Acquire(run, mode, command, shard);
      byte = 1;
      if (::write(ready[1], &byte, 1) != 1) ::_exit(2);
      if (::read(done[0], &byte, 1) != 1) ::_exit(3);
    } catch (...) {
      ::_exit(4);
    }
    ::_exit(0);
  }
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1) << "the other process took the lock";
  check();
  byte = 1;
  EXPECT_EQ(::write(done[1], &byte, 1), 1);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  for (const int fd : {ready[0], ready[1], done[0], done[1]}) ::close(fd);
}

TEST(RunLock, OneWriterAtATimeNamingTheHolderAndShardsShareTheRun) {
  testing::ScopedTempDir dir;
  const std::filesystem::path run = dir.path() / "run";
  WhileAnotherProcessHolds(run, RunLockMode::kExclusive, "ingest", -1, [&] {
    try {
      RunLock::Acquire(run, RunLockMode::kExclusive, "embed");
      ADD_FAILURE() << "a second writer got the lock";
    } catch (const InputError& error) {
      const std::string what = error.what();
      EXPECT_NE(what.find("is being written by"), std::string::npos) << what;
      EXPECT_NE(what.find("ingest"), std::string::npos) << what;
    }
    EXPECT_FALSE(HoldsRunLock(run));
  });
  {
    const RunLock lock = RunLock::Acquire(run, RunLockMode::kExclusive, "ingest");
    EXPECT_TRUE(HoldsRunLock(run));
    EXPECT_TRUE(HoldsRunExclusively(run));
    EXPECT_THROW(RunLock::Acquire(run, RunLockMode::kExclusive, "again"), InternalError) << "taken twice";
  }
  EXPECT_FALSE(HoldsRunLock(run)) << "released with the object";
  // Shard writers share the run, never one shard, and never beside a whole-run writer.
  WhileAnotherProcessHolds(run, RunLockMode::kShared, "embed", 3, [&] {
    {
      const RunLock other_shard = RunLock::Acquire(run, RunLockMode::kShared, "embed", 4);
      EXPECT_TRUE(HoldsRunLock(run));
      EXPECT_FALSE(HoldsRunExclusively(run));
    }
    EXPECT_THROW(RunLock::Acquire(run, RunLockMode::kShared, "embed", 3), InputError);
    EXPECT_THROW(RunLock::Acquire(run, RunLockMode::kExclusive, "index"), InputError);
  });
}

TEST(Stage, PublishesWholeUnderTheLockAndKnowsWhenItIsFresh) {
  testing::ScopedTempDir dir;
  const std::filesystem::path run = dir.path() / "run";
  std::filesystem::create_directories(run);
  EXPECT_THROW(Stage(nullptr, run, "report", "v1"), InternalError) << "a stage needs the run lock";
  const RunLock lock = RunLock::Acquire(run, RunLockMode::kExclusive, "report");
  testing::WriteFile(run / "_SUCCESS", "{}");
  auto publish = [&](const std::string& option, const std::string& content) {
    Stage stage(nullptr, run, "report", "v1");
    stage.Key().Add("option", option);
    std::string why;
    if (stage.Fresh(&why)) return std::string("fresh");
    testing::WriteFile(stage.Staging() / "index.html", content);
    stage.AddOutput("index.html", 1);
    stage.Publish(StageManifest{});
    return why;
  };
  EXPECT_NE(publish("a", "first"), "fresh");
  EXPECT_FALSE(std::filesystem::exists(run / "_SUCCESS")) << "a changed run is not a finished run";
  EXPECT_EQ(testing::ReadFile(run / "report" / "index.html"), "first");
  std::string why;
  const auto manifest = ReadManifest(run / "report", &why);
  ASSERT_TRUE(manifest) << why;
  EXPECT_EQ(manifest->stage, "report");
  EXPECT_EQ(manifest->outputs.size(), 1u);
  EXPECT_EQ(publish("a", "not written"), "fresh") << "same key, outputs intact";
  EXPECT_EQ(publish("b", "second"), "its inputs or options changed");
  EXPECT_EQ(testing::ReadFile(run / "report" / "index.html"), "second");
  // A damaged output is not fresh, whatever the key.
  testing::WriteFile(run / "report" / "index.html", "edited");
  EXPECT_NE(publish("b", "third"), "fresh");
  EXPECT_EQ(testing::ReadFile(run / "report" / "index.html"), "third");
  EXPECT_TRUE(std::filesystem::is_empty(run / ".staging")) << "no staging folder left";
}

}  // namespace
}  // namespace lookbook
