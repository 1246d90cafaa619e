// cohort_parity_driver OUT_DIR --seed N [--threads T] [--filter SUBSTRING] [--list]
//
// Runs every parity case (or those whose name contains SUBSTRING): builds its random inputs from
// a generator seeded with (N, case name), runs the op, draws a random upstream gradient for every
// floating output that requires grad and runs backward. Each tensor is written to OUT_DIR as raw
// little-endian bytes of its contiguous row-major values (bf16/f16 as their 16-bit patterns, bool
// as one byte); OUT_DIR/manifest.json lists, per case, the op, its attributes and every tensor's
// file, dtype and shape (and name, for a named output). A case whose op throws is written with its
// error, for compare.py to report.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "parity_case.h"

using namespace cohort;
using namespace cohort::parity;

namespace {

struct Args {
  std::string out_dir;
  uint64_t seed = 0;
  bool have_seed = false;
  int threads = 2;
  std::string filter;
  bool list = false;
};

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) COHORT_THROW(ValueError, "cohort_parity_driver: ", s, " needs a value");
      return argv[++i];
    };
    if (s == "--seed") {
      a.seed = std::stoull(value());
      a.have_seed = true;
    } else if (s == "--threads") {
      a.threads = std::stoi(value());
    } else if (s == "--filter") {
      a.filter = value();
    } else if (s == "--list") {
      a.list = true;
    } else if (!s.empty() && s[0] != '-' && a.out_dir.empty()) {
      a.out_dir = s;
    } else {
      COHORT_THROW(ValueError, "cohort_parity_driver: unknown argument ", s,
                   "; usage: cohort_parity_driver OUT_DIR --seed N [--threads T] [--filter SUBSTRING] [--list]");
    }
  }
  COHORT_CHECK(a.list || (!a.out_dir.empty() && a.have_seed), ValueError,
               "cohort_parity_driver: usage: cohort_parity_driver OUT_DIR --seed N [--threads T] [--filter SUBSTRING]");
  return a;
}

// FNV-1a, so a case's inputs depend on (seed, name) and not on which other cases run.
uint64_t name_hash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ull;
  return h;
}

std::string shape_json(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string escaped(const std::string& s) {
  std::string r;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') r += '\\';
    r += (ch == '\n' || ch == '\t') ? ' ' : ch;
  }
  return r;
}

// Writes t's values (row-major, contiguous) to dir/file; returns its manifest entry.
std::string write_tensor(const std::string& dir, const std::string& file, const Tensor& t,
                         const std::string& extra = "") {
  Tensor c = t.detach().contiguous();
  std::ofstream out(dir + "/" + file, std::ios::binary);
  out.write(static_cast<const char*>(c.raw_data()), static_cast<std::streamsize>(c.nbytes()));
  COHORT_CHECK(out.good(), ValueError, "cohort_parity_driver: cannot write ", dir, "/", file);
  return "{\"file\": \"" + file + "\", \"dtype\": \"" + dtype_name(t.dtype()) + "\", \"shape\": " +
         shape_json(t.shape()) + extra + "}";
}

// Builds, runs and writes one case; returns its manifest entry.
std::string run_case(const ParityCase& pc, const Args& args) {
  Generator gen(args.seed ^ name_hash(pc.name));
  CaseBuilder c(gen);
  std::string error;
  std::vector<Tensor> upstream;  // per output; undefined where the output is not differentiable
  try {
    pc.build(c);
    std::vector<Tensor> roots, grad_roots;
    for (const Tensor& out : c.outputs()) {
      Tensor g;
      if (is_floating(out.dtype()) && out.requires_grad()) {
        g = cohort::randn(out.shape(), DType::f32, &gen).to(out.dtype());
        roots.push_back(out);
        grad_roots.push_back(g);
      }
      upstream.push_back(g);
    }
    if (!roots.empty()) backward(roots, grad_roots);
  } catch (const std::exception& e) {
    error = e.what();
  }

  std::ostringstream m;
  m << "{\"name\": \"" << pc.name << "\", \"op\": \"" << pc.op << "\", \"attrs\": {";
  for (size_t i = 0; i < c.attrs().size(); ++i) {
    m << (i ? ", " : "") << "\"" << c.attrs()[i].first << "\": " << c.attrs()[i].second;
  }
  m << "},\n   \"inputs\": [";
  for (size_t i = 0; i < c.inputs().size(); ++i) {
    const CaseInput& in = c.inputs()[i];
    const std::string extra = ", \"name\": \"" + in.name + "\", \"requires_grad\": " +
                              (in.value.requires_grad() ? "true" : "false") +
                              ", \"contiguous\": " + (in.value.is_contiguous() ? "true" : "false");
    m << (i ? ", " : "") << write_tensor(args.out_dir, pc.name + ".in" + std::to_string(i) + ".bin", in.value, extra);
  }
  m << "],\n   \"outputs\": [";
  const bool ran = error.empty();
  for (size_t i = 0; ran && i < c.outputs().size(); ++i) {
    const std::string& label = c.output_names()[i];
    const std::string extra = label.empty() ? "" : ", \"name\": \"" + escaped(label) + "\"";
    m << (i ? ", " : "")
      << write_tensor(args.out_dir, pc.name + ".out" + std::to_string(i) + ".bin", c.outputs()[i], extra);
  }
  m << "],\n   \"upstream\": [";
  for (size_t i = 0; ran && i < upstream.size(); ++i) {
    m << (i ? ", " : "")
      << (upstream[i].defined() ? write_tensor(args.out_dir, pc.name + ".up" + std::to_string(i) + ".bin", upstream[i])
                                : "null");
  }
  m << "],\n   \"grads\": [";
  for (size_t i = 0; ran && i < c.inputs().size(); ++i) {
    Tensor g = c.inputs()[i].value.requires_grad() ? c.inputs()[i].value.grad() : Tensor();
    m << (i ? ", " : "")
      << (g.defined() ? write_tensor(args.out_dir, pc.name + ".grad" + std::to_string(i) + ".bin", g) : "null");
  }
  m << "],\n   \"error\": " << (ran ? "null" : "\"" + escaped(error) + "\"") << "}";
  return m.str();
}

CaseList all_cases() {
  CaseList cases;
  add_elementwise_cases(cases);
  add_reduction_cases(cases);
  add_view_cases(cases);
  add_linalg_cases(cases);
  add_nn_cases(cases);
  add_indexing_cases(cases);
  add_factory_cases(cases);
  add_optim_cases(cases);
  add_schedule_cases(cases);
  add_module_cases(cases);
  return cases;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args args = parse_args(argc, argv);
    const CaseList cases = all_cases();
    std::set<std::string> names;
    for (const ParityCase& pc : cases) {
      COHORT_CHECK(names.insert(pc.name).second, ValueError, "cohort_parity_driver: two cases are named ", pc.name);
    }
    if (args.list) {
      for (const ParityCase& pc : cases) std::cout << pc.name << " " << pc.op << "\n";
      return 0;
    }
    set_num_threads(args.threads);
    std::ofstream manifest(args.out_dir + "/manifest.json");
    COHORT_CHECK(manifest.good(), ValueError, "cohort_parity_driver: cannot write ", args.out_dir, "/manifest.json");
    manifest << "{\"seed\": " << args.seed << ", \"threads\": " << args.threads << ", \"cases\": [\n";
    bool first = true;
    for (const ParityCase& pc : cases) {
      if (!args.filter.empty() && pc.name.find(args.filter) == std::string::npos) continue;
      manifest << (first ? "  " : ",\n  ") << run_case(pc, args);
      first = false;
    }
    manifest << "\n]}\n";
    return manifest.good() ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
}
