// cohort-run's rank-prefixed output and failure reporting: the line prefixer, the words and exit
// codes for how a program ended, and the failure records the stand-alone parent reads.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <string>

#include "failure.h"
#include "line_prefixer.h"

using cohort::run::LinePrefixer;

TEST(LinePrefixer, PrefixesWholeLinesAcrossChunks) {
  LinePrefixer p("[3] ");
  EXPECT_EQ(p.feed("hel"), "");
  EXPECT_EQ(p.feed("lo\nwor"), "[3] hello\n");
  EXPECT_EQ(p.feed("ld\n\nx"), "[3] world\n[3] \n");
  EXPECT_EQ(p.finish(), "[3] x\n") << "an unterminated last line still comes out, terminated";
  EXPECT_EQ(p.finish(), "");
}

TEST(LinePrefixer, CutsLinesLongerThanTheLimit) {
  LinePrefixer p("[0] ", 4);
  EXPECT_EQ(p.feed("abcdefghij\n"), "[0] abcd\n[0] efgh\n[0] ij\n");
  EXPECT_EQ(p.feed("abcd"), "[0] abcd\n");
  EXPECT_EQ(p.feed("\n"), "[0] \n");
}

namespace {

int status_of_child(int how) {
  pid_t pid = fork();
  if (pid == 0) {
    if (how < 0) raise(-how);
    _exit(how);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

}  // namespace

TEST(Outcome, ExitStatusAndSignalsInWordsAndCodes) {
  auto ok = cohort::run::outcome_of(status_of_child(0));
  EXPECT_FALSE(ok.failed());
  auto one = cohort::run::outcome_of(status_of_child(1));
  EXPECT_EQ(one.exit_code, 1);
  EXPECT_EQ(one.description, "exit status 1");
  auto killed = cohort::run::outcome_of(status_of_child(-SIGKILL));
  EXPECT_EQ(killed.exit_code, 137);
  EXPECT_EQ(killed.description, "killed by signal 9 (SIGKILL)");
  EXPECT_EQ(cohort::run::failure_line(3, "node2", one.description),
            "cohort-run: rank 3 (host node2) failed: exit status 1");
  EXPECT_EQ(cohort::run::signal_name(SIGTERM), "SIGTERM");
}

TEST(FailureRecords, TheEarliestRecordIsTheFirstFailure) {
  std::string dir = ::testing::TempDir() + "/cohort_failures_XXXXXX";
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  EXPECT_FALSE(cohort::run::first_failure(dir).has_value());
  cohort::run::write_failure_record(dir, {2000, 1, "a", 137, "killed by signal 9 (SIGKILL)"});
  cohort::run::write_failure_record(dir, {1500, 3, "node b", 1, "exit status 1"});
  cohort::run::write_failure_record(dir, {1500, 2, "c", 4, "exit status 4"});
  auto first = cohort::run::first_failure(dir);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->rank, 2) << "a tie goes to the lower rank";
  EXPECT_EQ(first->exit_code, 4);
  EXPECT_EQ(first->description, "exit status 4");
  std::string cmd = "rm -rf " + dir;
  EXPECT_EQ(std::system(cmd.c_str()), 0);
}
