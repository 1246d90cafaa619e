// Bus bandwidth against message size as an SVG line chart, written by hand (no plotting library
// on the machines this runs on): a log2 size axis, a linear bandwidth axis, one polyline per
// series (cohort out-of-place/in-place, and MPI when compared).
#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "report.h"

namespace cohort::bench {
namespace {

std::string size_label(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) bytes /= 1024, ++u;
  std::ostringstream s;
  s << bytes << ' ' << units[u];
  return s.str();
}

// A round upper bound for the y axis (1, 2 or 5 times a power of ten) and its tick step.
void nice_axis(double max, double& top, double& step) {
  if (max <= 0) max = 1;
  const double mag = std::pow(10, std::floor(std::log10(max)));
  for (double f : {1.0, 2.0, 5.0, 10.0}) {
    if (f * mag >= max) {
      top = f * mag;
      break;
    }
  }
  step = top / 5;
}

struct Series {
  const char* label;
  const char* color;
  bool dashed;
  std::vector<std::pair<double, double>> points;  // (log2 bytes, busbw)
};

}  // namespace

void write_svg(const std::string& path, const Results& r, const CollectiveDesc& d) {
  std::vector<Series> series = {{"cohort out-of-place", "#1f77b4", false, {}}, {"cohort in-place", "#1f77b4", true, {}}};
  const bool compared = !r.rows.empty() && r.rows.front().compared;
  if (compared) {
    series.push_back({"MPI out-of-place", "#ff7f0e", false, {}});
    series.push_back({"MPI in-place", "#ff7f0e", true, {}});
  }
  double xmin = 1e30, xmax = -1e30, ymax = 0;
  for (const Row& row : r.rows) {
    if (row.bytes == 0) continue;
    const double x = std::log2(static_cast<double>(row.bytes));
    const Timing* ts[] = {&row.out_of_place, &row.in_place, &row.mpi_out_of_place, &row.mpi_in_place};
    for (size_t s = 0; s < series.size(); ++s) {
      series[s].points.push_back({x, ts[s]->busbw});
      ymax = std::max(ymax, ts[s]->busbw);
    }
    xmin = std::min(xmin, x);
    xmax = std::max(xmax, x);
  }
  if (xmin > xmax) xmin = 0, xmax = 1;
  if (xmax - xmin < 1) xmax = xmin + 1;
  double ytop = 1, ystep = 0.2;
  nice_axis(ymax * 1.05, ytop, ystep);

  const double W = 900, H = 540, left = 80, right = 30, top = 60, bottom = 80;
  const double pw = W - left - right, ph = H - top - bottom;
  auto X = [&](double x) { return left + (x - xmin) / (xmax - xmin) * pw; };
  auto Y = [&](double y) { return top + ph - y / ytop * ph; };

  std::ofstream out(path);
  if (!out) throw std::runtime_error("cannot write " + path);
  out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  out << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  out << "<text x=\"" << W / 2 << "\" y=\"28\" text-anchor=\"middle\" font-size=\"16\">cohort-bench " << d.name
      << ": bus bandwidth, " << r.nranks << " ranks, " << nccl_type_name(r.options.dtype)
      << (d.reduces ? std::string(" ") + parallel::reduce_op_name(r.options.op) : std::string()) << " ("
      << r.backend_detail << ")</text>\n";
  // Grid and y ticks.
  for (int k = 0; k <= 5; ++k) {
    const double y = k * ystep;
    out << "<line x1=\"" << left << "\" x2=\"" << left + pw << "\" y1=\"" << Y(y) << "\" y2=\"" << Y(y)
        << "\" stroke=\"#ddd\"/>\n<text x=\"" << left - 8 << "\" y=\"" << Y(y) + 4 << "\" text-anchor=\"end\">" << y
        << "</text>\n";
  }
  // x ticks at powers of two, at most about a dozen.
  const int span = static_cast<int>(std::ceil(xmax - xmin));
  const int every = std::max(1, (span + 11) / 12);
  for (int e = static_cast<int>(std::ceil(xmin)); e <= static_cast<int>(std::floor(xmax)); ++e) {
    if ((e - static_cast<int>(std::ceil(xmin))) % every) continue;
    out << "<line x1=\"" << X(e) << "\" x2=\"" << X(e) << "\" y1=\"" << top << "\" y2=\"" << top + ph
        << "\" stroke=\"#eee\"/>\n<text x=\"" << X(e) << "\" y=\"" << top + ph + 18
        << "\" text-anchor=\"middle\">" << size_label(std::pow(2.0, e)) << "</text>\n";
  }
  out << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << pw << "\" height=\"" << ph
      << "\" fill=\"none\" stroke=\"#333\"/>\n";
  out << "<text x=\"" << left + pw / 2 << "\" y=\"" << H - 30 << "\" text-anchor=\"middle\">message size</text>\n";
  out << "<text transform=\"translate(22," << top + ph / 2 << ") rotate(-90)\" text-anchor=\"middle\">busbw (GB/s)</text>\n";
  // Series and legend.
  for (size_t s = 0; s < series.size(); ++s) {
    out << "<polyline fill=\"none\" stroke=\"" << series[s].color << "\" stroke-width=\"2\""
        << (series[s].dashed ? " stroke-dasharray=\"6,4\"" : "") << " points=\"";
    for (const auto& [x, y] : series[s].points) out << X(x) << ',' << Y(y) << ' ';
    out << "\"/>\n";
    for (const auto& [x, y] : series[s].points) {
      out << "<circle cx=\"" << X(x) << "\" cy=\"" << Y(y) << "\" r=\"2.5\" fill=\"" << series[s].color << "\"/>\n";
    }
    const double ly = top + 16 + 18 * static_cast<double>(s);
    out << "<line x1=\"" << left + 12 << "\" x2=\"" << left + 42 << "\" y1=\"" << ly << "\" y2=\"" << ly
        << "\" stroke=\"" << series[s].color << "\" stroke-width=\"2\""
        << (series[s].dashed ? " stroke-dasharray=\"6,4\"" : "") << "/>\n<text x=\"" << left + 48 << "\" y=\""
        << ly + 4 << "\">" << series[s].label << "</text>\n";
  }
  out << "</svg>\n";
}

}  // namespace cohort::bench
