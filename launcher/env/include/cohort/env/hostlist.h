#pragma once
// Slurm's compressed node lists and task counts, expanded.
//
//   expand_hostlist("node[01-04,07],login")  -> node01 node02 node03 node04 node07 login
//   expand_hostlist("rack[1-2]-n[1-2]")       -> rack1-n1 rack1-n2 rack2-n1 rack2-n2
//   expand_tasks_per_node("4(x2),3")          -> 4 4 3
//
// The syntax is Slurm's (what `scontrol show hostnames` accepts): items separated by commas outside
// brackets; inside brackets, comma-separated numbers or lo-hi ranges, zero-padded to the width of
// lo; several bracket groups in one name expand as a cartesian product, leftmost slowest. Anything
// else is an EnvError that quotes the list and points at the offending character.

#include <string>
#include <vector>

namespace cohort::env {

// `what` names the list in error messages, e.g. "SLURM_STEP_NODELIST".
std::vector<std::string> expand_hostlist(const std::string& list,
                                         const std::string& what = "node list");

// "N", "N(xM)", comma-separated: Slurm's SLURM_STEP_TASKS_PER_NODE / SLURM_TASKS_PER_NODE.
std::vector<int> expand_tasks_per_node(const std::string& list,
                                       const std::string& what = "tasks per node");

}  // namespace cohort::env
