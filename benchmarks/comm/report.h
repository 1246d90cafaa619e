// cohort-bench's output: nccl-tests' table (header, one line per size, the closing average bus
// bandwidth), plus CSV, JSON and an SVG plot of bus bandwidth against message size.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "bench.h"

namespace cohort::bench {

struct DeviceLine {
  int rank, pid, device, pci_bus_id;
  std::string host, name;
};

void print_preamble(std::FILE* out, const BenchOptions& o, const std::vector<std::string>& device_lines);
std::string device_line(const DeviceLine& d);  // "#  Rank  0 Group  0 Pid  1234 on host device ..."
void print_header(std::FILE* out, bool compare);
void print_row(std::FILE* out, const BenchOptions& o, const CollectiveDesc& desc, const Row& row);
void print_footer(std::FILE* out, const Results& r);

void write_csv(const std::string& path, const Results& r, const CollectiveDesc& desc);
void write_json(const std::string& path, const Results& r, const CollectiveDesc& desc);
void write_svg(const std::string& path, const Results& r, const CollectiveDesc& desc);

}  // namespace cohort::bench
