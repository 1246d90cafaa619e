// The two process engines cohort-run understands, mapped to the rank contract.
#include <string>
#include <vector>

#include "cohort/env/hostlist.h"
#include "rank_env-impl.h"

namespace cohort::env::detail {
namespace {

// "284819456.1;tcp://10.0.0.1,192.168.1.5:35273;tcp6://[fd00::2]:47211" -> vpid 1 (the part after
// the '.' of the process name that leads an ORTE contact URI).
std::optional<int> uri_vpid(const std::string& uri) {
  auto dot = uri.find('.');
  auto semi = uri.find(';');
  if (dot == std::string::npos || semi == std::string::npos || semi < dot) return std::nullopt;
  try {
    return parse_int("vpid", uri.substr(dot + 1, semi - dot - 1));
  } catch (const EnvError&) {
    return std::nullopt;
  }
}

// The first IPv4 address in an ORTE contact URI ("...;tcp://10.0.0.1,192.168.1.5:35273;..."),
// i.e. an address of the host mpirun runs on, which its daemons can reach.
std::string uri_first_ipv4(const std::string& uri) {
  auto at = uri.find(";tcp://");
  if (at == std::string::npos) return "";
  auto begin = at + 7;
  auto end = uri.find_first_of(",:;", begin);
  return uri.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

}  // namespace

// Under mpirun every rank has OMPI_COMM_WORLD_{RANK,SIZE,LOCAL_RANK,LOCAL_SIZE}. What Open MPI
// does not say directly is the node index and rank 0's host; the rules (docs/launching.md):
//  * nodes: OMPI_MCA_orte_num_nodes; NODE_RANK: the index (vpid) of this node's ORTE daemon, from
//    OMPI_MCA_orte_local_daemon_uri. Daemon 0 is mpirun itself, so this holds when mpirun's node
//    runs ranks: the default when mpirun is started on the first node of the host list/allocation.
//  * MASTER_ADDR: 127.0.0.1 on one node; inside a Slurm allocation the allocation's first node
//    (where the batch script, hence mpirun and rank 0, run); otherwise mpirun's host as its daemons
//    know it (the first IPv4 address of OMPI_MCA_orte_hnp_uri).
RankEnv from_open_mpi(const Environment& env, const LaunchOverrides& overrides) {
  const std::string origin = "Open MPI's mpirun";
  RankEnv r;
  r.launcher = Launcher::open_mpi;
  r.origin = "Open MPI's OMPI_COMM_WORLD_* variables";
  r.rank = required_int(env, "OMPI_COMM_WORLD_RANK", origin);
  r.world_size = required_int(env, "OMPI_COMM_WORLD_SIZE", origin, 1);
  r.local_rank = required_int(env, "OMPI_COMM_WORLD_LOCAL_RANK", origin);
  r.local_world_size = required_int(env, "OMPI_COMM_WORLD_LOCAL_SIZE", origin, 1);

  FieldSources from;
  from.rank = shown(env, "OMPI_COMM_WORLD_RANK");
  from.world_size = shown(env, "OMPI_COMM_WORLD_SIZE");
  from.local_rank = shown(env, "OMPI_COMM_WORLD_LOCAL_RANK");
  from.local_world_size = shown(env, "OMPI_COMM_WORLD_LOCAL_SIZE");
  from.num_nodes = shown(env, "OMPI_MCA_orte_num_nodes");
  from.node_rank = shown(env, "OMPI_MCA_orte_local_daemon_uri");

  if (auto nodes = get_int(env, "OMPI_MCA_orte_num_nodes", 1)) {
    r.num_nodes = *nodes;
  } else if (r.local_world_size == r.world_size) {
    r.num_nodes = 1;
  } else {
    throw EnvError("under mpirun with " + std::to_string(r.world_size) + " ranks, " +
                   std::to_string(r.local_world_size) +
                   " of them on this node, OMPI_MCA_orte_num_nodes is not set, so the number of "
                   "nodes is unknown; this needs Open MPI 4's mpirun (or start the job with srun)");
  }
  std::string hnp_uri = env.get("OMPI_MCA_orte_hnp_uri").value_or("");
  if (r.num_nodes == 1) {
    r.node_rank = 0;
  } else {
    auto vpid = uri_vpid(env.get("OMPI_MCA_orte_local_daemon_uri").value_or(""));
    if (!vpid)
      throw EnvError("under mpirun on " + std::to_string(r.num_nodes) +
                     " nodes, OMPI_MCA_orte_local_daemon_uri (" +
                     from.node_rank + ") does not name this node's daemon, so NODE_RANK is "
                     "unknown; this needs Open MPI 4's mpirun (or start the job with srun)");
    if (*vpid >= r.num_nodes)
      throw EnvError("under mpirun on " + std::to_string(r.num_nodes) + " nodes this node's "
                     "daemon is number " + std::to_string(*vpid) + ", so mpirun's own node runs "
                     "no ranks and NODE_RANK cannot be derived (" + from.node_rank + "). Start "
                     "mpirun on the first node of its host list, or use srun.");
    r.node_rank = *vpid;
  }

  std::string addr;
  if (r.num_nodes == 1) {
    addr = "127.0.0.1";
  } else if (auto nodes = env.get("SLURM_JOB_NODELIST")) {
    addr = expand_hostlist(*nodes, "SLURM_JOB_NODELIST").front();
  } else {
    addr = uri_first_ipv4(hnp_uri);
  }
  if (addr.empty() && !overrides.master_addr && !env.has("MASTER_ADDR"))
    throw EnvError("under mpirun on several nodes, rank 0's host is unknown: neither "
                   "SLURM_JOB_NODELIST nor an IPv4 address in OMPI_MCA_orte_hnp_uri ('" + hnp_uri +
                   "'). Pass --master-addr HOST, or `mpirun -x MASTER_ADDR=HOST`.");
  std::string jobid = env.get("OMPI_MCA_ess_base_jobid")
                          .value_or(hnp_uri.substr(0, hnp_uri.find('.')));
  resolve_master(env, overrides, addr, "ompi:" + jobid, r);
  r.run_id = "ompi-" + jobid;
  read_cohort_vars(env, r);
  validate(r, from);
  return r;
}

// Under srun: SLURM_PROCID (or PMIX_RANK), SLURM_LOCALID, SLURM_NODEID, and the step's node list
// and tasks per node, e.g. SLURM_STEP_NODELIST=node[01-02] SLURM_STEP_TASKS_PER_NODE=4(x2).
// The step's variables are preferred over the job's: a step may use fewer nodes than the job.
RankEnv from_slurm(const Environment& env, const LaunchOverrides& overrides) {
  const std::string origin = "an srun step";
  RankEnv r;
  r.launcher = Launcher::slurm;
  r.origin = "Slurm's SLURM_* variables";
  FieldSources from;

  std::string rank_var = env.has("PMIX_RANK") ? "PMIX_RANK" : "SLURM_PROCID";
  r.rank = required_int(env, rank_var, origin);
  from.rank = shown(env, rank_var);

  std::string size_var = env.has("SLURM_STEP_NUM_TASKS") ? "SLURM_STEP_NUM_TASKS" : "SLURM_NTASKS";
  r.world_size = required_int(env, size_var, origin, 1);
  from.world_size = shown(env, size_var);
  r.local_rank = required_int(env, "SLURM_LOCALID", origin);
  from.local_rank = shown(env, "SLURM_LOCALID");
  r.node_rank = required_int(env, "SLURM_NODEID", origin);
  from.node_rank = shown(env, "SLURM_NODEID");

  bool step = env.has("SLURM_STEP_NODELIST");
  std::string list_var = step ? "SLURM_STEP_NODELIST" : "SLURM_JOB_NODELIST";
  std::string nodes_var = step ? "SLURM_STEP_NUM_NODES" : "SLURM_JOB_NUM_NODES";
  std::string tasks_var = env.has("SLURM_STEP_TASKS_PER_NODE") ? "SLURM_STEP_TASKS_PER_NODE"
                                                               : "SLURM_TASKS_PER_NODE";
  std::vector<std::string> hosts = expand_hostlist(required(env, list_var, origin), list_var);
  r.num_nodes = static_cast<int>(hosts.size());
  from.num_nodes = "the " + std::to_string(hosts.size()) + " hosts of " + shown(env, list_var);
  if (auto declared = get_int(env, nodes_var, 1); declared && *declared != r.num_nodes)
    throw EnvError(shown(env, nodes_var) + " but " + from.num_nodes +
                   ": Slurm's variables disagree; check for stale SLURM_* variables exported into "
                   "the job");

  std::vector<int> tasks = expand_tasks_per_node(required(env, tasks_var, origin), tasks_var);
  int total = 0;
  for (int t : tasks) total += t;
  if (static_cast<int>(tasks.size()) != r.num_nodes || total != r.world_size)
    throw EnvError(shown(env, tasks_var) + " describes " + std::to_string(tasks.size()) +
                   " nodes and " + std::to_string(total) + " tasks, but the step has " +
                   std::to_string(r.num_nodes) + " nodes (" + shown(env, list_var) + ") and " +
                   std::to_string(r.world_size) + " tasks (" + from.world_size + ")");
  if (r.node_rank >= 0 && r.node_rank < r.num_nodes) r.local_world_size = tasks[r.node_rank];
  from.local_world_size = "entry " + std::to_string(r.node_rank) + " of " + shown(env, tasks_var);

  std::string job = env.get("SLURM_JOB_ID").value_or(env.get("SLURM_JOBID").value_or("0"));
  std::string stepid = env.get("SLURM_STEP_ID").value_or(env.get("SLURM_STEPID").value_or("0"));
  resolve_master(env, overrides, hosts.front(), "slurm:" + job + "." + stepid, r);
  r.run_id = "slurm-" + job + "." + stepid;
  read_cohort_vars(env, r);
  validate(r, from);
  return r;
}

}  // namespace cohort::env::detail
