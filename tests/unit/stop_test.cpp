#include "util/stop.h"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>

#include "util/error.h"
#include "util/fault.h"

namespace lookbook {
namespace {

// Each case runs in a child process (death test, "threadsafe": the child starts the binary
// afresh): the stop flag and the fault table are process-wide and must start clean.
class StopDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};
using FaultDeathTest = StopDeathTest;
TEST_F(StopDeathTest, SignalSetsTheFlagAndNamesTheSignal) {
  EXPECT_EXIT(
      {
        InstallStopHandlers();
        if (StopRequested()) std::_Exit(1);
        std::raise(SIGUSR1);
        std::_Exit(StopRequested() && StopSignal() == SIGUSR1 ? 0 : 2);
      },
      ::testing::ExitedWithCode(0), "");
  EXPECT_EXIT(
      {
        InstallStopHandlers();
        std::raise(SIGTERM);  // handled, not fatal
        std::_Exit(StopRequested() && StopSignal() == SIGTERM ? 0 : 2);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(StopDeathTest, RequestStopFromAnotherRank) {
  EXPECT_EXIT(
      {
        RequestStop();
        std::_Exit(StopRequested() && StopSignal() == 0 ? 0 : 2);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(FaultDeathTest, NamedPointActsOnlyWhereAndWhenAsked) {
  EXPECT_EXIT(
      {
        setenv("LOOKBOOK_FAULT", "here:internal:nth=2", 1);
        FaultPoint("elsewhere");
        FaultPoint("here");  // the first time: nothing
        try {
          FaultPoint("here");
        } catch (const InternalError&) {
          std::_Exit(0);
        }
        std::_Exit(3);
      },
      ::testing::ExitedWithCode(0), "");
  EXPECT_EXIT(
      {
        setenv("LOOKBOOK_FAULT", "point:kill:rank=1", 1);
        SetFaultRank(0);
        FaultPoint("point");  // another rank's fault
        SetFaultRank(1);
        FaultPoint("point");
        std::_Exit(0);
      },
      ::testing::KilledBySignal(SIGKILL), "");
  EXPECT_EXIT(
      {
        setenv("LOOKBOOK_FAULT", "point:input", 1);
        try {
          FaultPoint("point");
        } catch (const InputError&) {
          std::_Exit(0);
        }
        std::_Exit(3);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(FaultDeathTest, PauseWakesOnStop) {
  EXPECT_EXIT(
      {
        setenv("LOOKBOOK_FAULT", "point:pause=60", 1);
        RequestStop();
        FaultPoint("point");  // returns at once: a stop is pending
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(FaultDeathTest, MalformedSpecIsAnInputError) {
  EXPECT_EXIT(
      {
        setenv("LOOKBOOK_FAULT", "point:explode", 1);
        try {
          FaultPoint("point");
        } catch (const InputError&) {
          std::_Exit(0);
        }
        std::_Exit(3);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace lookbook
