// Slurm host list and tasks-per-node expansion (cohort::env), checked against what
// `scontrol show hostnames` prints for the same lists.
#include "cohort/env/hostlist.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cohort/env/environment.h"

using cohort::env::EnvError;
using cohort::env::expand_hostlist;
using cohort::env::expand_tasks_per_node;
using Hosts = std::vector<std::string>;

TEST(Hostlist, SingleNamesAndPlainLists) {
  EXPECT_EQ(expand_hostlist("vm"), Hosts({"vm"}));
  EXPECT_EQ(expand_hostlist("a,b,login-1.cluster"), Hosts({"a", "b", "login-1.cluster"}));
}

TEST(Hostlist, RangesKeepTheZeroPaddingOfTheLowerBound) {
  EXPECT_EQ(expand_hostlist("node[01-04,07]"),
            Hosts({"node01", "node02", "node03", "node04", "node07"}));
  EXPECT_EQ(expand_hostlist("n[8-10]"), Hosts({"n8", "n9", "n10"}));
  EXPECT_EQ(expand_hostlist("n[098-101]"), Hosts({"n098", "n099", "n100", "n101"}));
  EXPECT_EQ(expand_hostlist("gpu[3]"), Hosts({"gpu3"}));
}

TEST(Hostlist, SeveralItemsWithBracketsAndSuffixes) {
  EXPECT_EQ(expand_hostlist("node[1-2],gpu[01,03]-ib,login"),
            Hosts({"node1", "node2", "gpu01-ib", "gpu03-ib", "login"}));
}

TEST(Hostlist, SeveralBracketGroupsExpandLeftmostSlowest) {
  EXPECT_EQ(expand_hostlist("rack[1-2]-n[1-2]"),
            Hosts({"rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"}));
}

TEST(Hostlist, MalformedListsAreErrorsThatQuoteTheList) {
  for (const char* bad : {"node[01-04", "node01-04]", "node[[1]]", "node[4-1]", "node[a-b]",
                          "node[]", "node[1,,2]", "a,,b", "", ",a", "node[1-]", "a b"}) {
    try {
      expand_hostlist(bad, "SLURM_STEP_NODELIST");
      ADD_FAILURE() << "expected an EnvError for '" << bad << "'";
    } catch (const EnvError& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find("SLURM_STEP_NODELIST '" + std::string(bad) + "'"), std::string::npos)
          << msg;
      EXPECT_NE(msg.find("node[01-04,07]"), std::string::npos) << "names the expected syntax";
    }
  }
}

TEST(Hostlist, AbsurdRangesAreRejectedNotExpanded) {
  EXPECT_THROW(expand_hostlist("n[1-100000000]"), EnvError);
}

TEST(TasksPerNode, RepeatCountsExpand) {
  EXPECT_EQ(expand_tasks_per_node("4"), std::vector<int>({4}));
  EXPECT_EQ(expand_tasks_per_node("4(x2),3"), std::vector<int>({4, 4, 3}));
  EXPECT_EQ(expand_tasks_per_node("2,1(x3)"), std::vector<int>({2, 1, 1, 1}));
}

TEST(TasksPerNode, MalformedCountsAreErrors) {
  for (const char* bad : {"", "4(2)", "4(x)", "x", "4,,2", "4(x2"})
    EXPECT_THROW(expand_tasks_per_node(bad), EnvError) << bad;
}
