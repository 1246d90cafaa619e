// The table follows nccl-tests' printf formats exactly (src/common.cu), so scripts written for
// nccl-tests' output parse cohort-bench's too; --compare-mpi appends its columns to the right.
#include "report.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <stdexcept>

namespace cohort::bench {
namespace {

std::string time_str(double us) {
  char buf[32];
  if (us >= 10000.0) {
    std::snprintf(buf, sizeof buf, "%7.0f", us);
  } else if (us >= 100.0) {
    std::snprintf(buf, sizeof buf, "%7.1f", us);
  } else {
    std::snprintf(buf, sizeof buf, "%7.2f", us);
  }
  return buf;
}

const char* op_name(const BenchOptions& o, const CollectiveDesc& d) {
  return d.reduces ? parallel::reduce_op_name(o.op) : "none";
}

int root_of(const BenchOptions& o, const CollectiveDesc& d) { return d.rooted ? o.root : -1; }

std::ofstream open_or_throw(const std::string& path) {
  std::ofstream out(path);
  if (!out) throw std::runtime_error("cannot write " + path);
  return out;
}

}  // namespace

void print_preamble(std::FILE* out, const BenchOptions& o, const std::vector<std::string>& device_lines) {
  std::fprintf(out,
               "# nThread %d nGpus %d minBytes %ld maxBytes %ld step: %ld(%s) warmup iters: %d iters: %d agg iters: "
               "%d validation: %d graph: %d\n",
               1, 1, static_cast<long>(o.min_bytes), static_cast<long>(o.max_bytes),
               static_cast<long>(o.step_factor > 1 ? o.step_factor : o.step_bytes),
               o.step_factor > 1 ? "factor" : "bytes", o.warmup, o.iters, 1, o.check, 0);
  std::fprintf(out, "#\n# Using devices\n");
  for (const auto& line : device_lines) std::fprintf(out, "%s", line.c_str());
}

std::string device_line(const DeviceLine& d) {
  char buf[512];
  std::snprintf(buf, sizeof buf, "#  Rank %2d Group %2d Pid %6d on %10s device %2d [0x%02x] %s\n", d.rank, 0, d.pid,
                d.host.c_str(), d.device, d.pci_bus_id, d.name.c_str());
  return buf;
}

void print_header(std::FILE* out, bool compare) {
  std::fprintf(out, "#\n");
  std::fprintf(out, "# %10s  %12s  %8s  %6s  %6s           out-of-place                       in-place          ", "",
               "", "", "", "");
  std::fprintf(out, compare ? "      MPI out-of-place            MPI in-place\n" : "\n");
  std::fprintf(out, "# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s %6s  %7s  %6s  %6s %6s", "size", "count", "type",
               "redop", "root", "time", "algbw", "busbw", "#wrong", "time", "algbw", "busbw", "#wrong");
  if (compare) std::fprintf(out, "  %7s  %6s  %6s  %7s  %6s  %6s", "time", "busbw", "ratio", "time", "busbw", "ratio");
  std::fprintf(out, "\n# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %5s  %7s  %6s  %6s  %5s", "(B)", "(elements)", "",
               "", "", "(us)", "(GB/s)", "(GB/s)", "", "(us)", "(GB/s)", "(GB/s)", "");
  if (compare) std::fprintf(out, "  %7s  %6s  %6s  %7s  %6s  %6s", "(us)", "(GB/s)", "(x)", "(us)", "(GB/s)", "(x)");
  std::fprintf(out, "\n");
  std::fflush(out);
}

void print_row(std::FILE* out, const BenchOptions& o, const CollectiveDesc& d, const Row& row) {
  char root[16];
  std::snprintf(root, sizeof root, "%6i", root_of(o, d));
  std::fprintf(out, "%12li  %12li  %8s  %6s  %6s", static_cast<long>(row.bytes), static_cast<long>(row.count),
               nccl_type_name(o.dtype), op_name(o, d), root);
  for (const Timing* t : {&row.out_of_place, &row.in_place}) {
    if (t->wrong >= 0) {
      std::fprintf(out, "  %7s  %6.2f  %6.2f  %5g", time_str(t->time_us).c_str(), t->algbw, t->busbw,
                   static_cast<double>(t->wrong));
    } else {
      std::fprintf(out, "  %7s  %6.2f  %6.2f  %5s", time_str(t->time_us).c_str(), t->algbw, t->busbw, "N/A");
    }
  }
  if (row.compared) {
    const std::pair<const Timing*, const Timing*> pairs[] = {{&row.out_of_place, &row.mpi_out_of_place},
                                                            {&row.in_place, &row.mpi_in_place}};
    for (const auto& [mine, mpi] : pairs) {
      std::fprintf(out, "  %7s  %6.2f  %6.2f", time_str(mpi->time_us).c_str(), mpi->busbw,
                   mine->time_us > 0 ? mpi->time_us / mine->time_us : 0.0);
    }
  }
  std::fprintf(out, "\n");
  std::fflush(out);
}

void print_footer(std::FILE* out, const Results& r) {
  std::fprintf(out, "# Out of bounds values : %d %s\n", static_cast<int>(r.errors), r.errors ? "FAILED" : "OK");
  std::fprintf(out, "# Avg bus bandwidth    : %g %s\n", r.avg_busbw, "");
  const bool compared = !r.rows.empty() && r.rows.front().compared;
  if (compared) {
    // The ratio is cohort's busbw over MPI's (= MPI's time over cohort's), per placement.
    for (bool in_place : {false, true}) {
      double worst = 1e30, worst_big = 1e30;
      size_t worst_at = 0;
      for (const Row& row : r.rows) {
        const Timing& mine = in_place ? row.in_place : row.out_of_place;
        const Timing& mpi = in_place ? row.mpi_in_place : row.mpi_out_of_place;
        const double ratio = mine.time_us > 0 ? mpi.time_us / mine.time_us : 0;
        if (ratio < worst) worst = ratio, worst_at = row.bytes;
        if (row.bytes >= (16u << 20)) worst_big = std::min(worst_big, ratio);
      }
      std::fprintf(out, "# cohort/MPI busbw, %s: lowest %.2fx (at %zu B)", in_place ? "in-place    " : "out-of-place",
                   worst, worst_at);
      if (worst_big < 1e30) std::fprintf(out, "; lowest at >= 16 MB %.2fx", worst_big);
      std::fprintf(out, "\n");
    }
  }
  std::fprintf(out, "#\n");
  std::fflush(out);
}

void write_csv(const std::string& path, const Results& r, const CollectiveDesc& d) {
  std::ofstream out = open_or_throw(path);
  out << "collective,backend,nranks,size_bytes,count,type,redop,root,placement,time_us,algbw_gbs,busbw_gbs,wrong,"
         "mpi_time_us,mpi_busbw_gbs\n";
  for (const Row& row : r.rows) {
    for (bool in_place : {false, true}) {
      const Timing& t = in_place ? row.in_place : row.out_of_place;
      const Timing& m = in_place ? row.mpi_in_place : row.mpi_out_of_place;
      out << d.name << ',' << r.options.backend << ',' << r.nranks << ',' << row.bytes << ',' << row.count << ','
          << nccl_type_name(r.options.dtype) << ',' << op_name(r.options, d) << ',' << root_of(r.options, d) << ','
          << (in_place ? "in-place" : "out-of-place") << ',' << t.time_us << ',' << t.algbw << ',' << t.busbw << ','
          << t.wrong << ',';
      if (row.compared) out << m.time_us << ',' << m.busbw;
      else out << ',';
      out << '\n';
    }
  }
}

void write_json(const std::string& path, const Results& r, const CollectiveDesc& d) {
  std::ofstream out = open_or_throw(path);
  out << "{\n  \"collective\": \"" << d.name << "\",\n  \"backend\": \"" << r.options.backend
      << "\",\n  \"backend_detail\": \"" << r.backend_detail << "\",\n  \"nranks\": " << r.nranks
      << ",\n  \"type\": \"" << nccl_type_name(r.options.dtype) << "\",\n  \"redop\": \"" << op_name(r.options, d)
      << "\",\n  \"root\": " << root_of(r.options, d) << ",\n  \"iters\": " << r.options.iters
      << ",\n  \"warmup\": " << r.options.warmup << ",\n  \"repeats\": " << r.options.repeats
      << ",\n  \"avg_busbw_gbs\": " << r.avg_busbw << ",\n  \"wrong_sizes\": " << r.errors << ",\n  \"rows\": [\n";
  auto timing = [&](const char* name, const Timing& t) {
    out << "\"" << name << "\": {\"time_us\": " << t.time_us << ", \"algbw_gbs\": " << t.algbw
        << ", \"busbw_gbs\": " << t.busbw << ", \"wrong\": " << t.wrong << "}";
  };
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const Row& row = r.rows[i];
    out << "    {\"size_bytes\": " << row.bytes << ", \"count\": " << row.count << ", ";
    timing("out_of_place", row.out_of_place);
    out << ", ";
    timing("in_place", row.in_place);
    if (row.compared) {
      out << ", ";
      timing("mpi_out_of_place", row.mpi_out_of_place);
      out << ", ";
      timing("mpi_in_place", row.mpi_in_place);
    }
    out << "}" << (i + 1 < r.rows.size() ? "," : "") << "\n";
  }
  out << "  ]\n}\n";
}

}  // namespace cohort::bench
