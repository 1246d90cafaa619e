#include "cohort/core/data/formats.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include "cohort/core/generator.h"
#include "cohort/core/ops/elementwise.h"
#include "cohort/core/ops/factory.h"

namespace cohort {

namespace {

std::vector<uint8_t> read_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  COHORT_CHECK(in.good(), ValueError, what, ": cannot open '", path, "'; check the path (--data) and permissions");
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Writes to path.tmp then renames, so a reader never sees half a file.
void write_file(const std::string& path, const std::vector<uint8_t>& bytes, const char* what) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    COHORT_CHECK(out.good(), ValueError, what, ": cannot write '", tmp, "'");
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    COHORT_CHECK(out.good(), ValueError, what, ": writing '", tmp, "' failed (disk full?)");
  }
  COHORT_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, ValueError, what, ": cannot rename '", tmp, "' to '",
               path, "'");
}

uint32_t be32(const std::vector<uint8_t>& b, size_t at) {
  return (uint32_t(b[at]) << 24) | (uint32_t(b[at + 1]) << 16) | (uint32_t(b[at + 2]) << 8) | uint32_t(b[at + 3]);
}

void put_be32(std::vector<uint8_t>* b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b->push_back(static_cast<uint8_t>(v >> s));
}

// An IDX file: magic 0x00 0x00 0x08 (unsigned byte) ndim, then ndim big-endian sizes, then data.
Shape read_idx_header(const std::vector<uint8_t>& b, const std::string& path, int expected_ndim, size_t* data_at) {
  COHORT_CHECK(b.size() >= 4, ValueError, "read_mnist: '", path, "' is ", b.size(),
               " bytes, too short for an IDX header");
  COHORT_CHECK(b[0] == 0 && b[1] == 0 && b[2] == 0x08 && b[3] == expected_ndim, ValueError, "read_mnist: '", path,
               "' is not an IDX file of unsigned bytes with ", expected_ndim, " dims (magic 0x0000080",
               expected_ndim, "); found magic bytes ", int(b[0]), " ", int(b[1]), " ", int(b[2]), " ", int(b[3]));
  Shape shape;
  COHORT_CHECK(b.size() >= 4 + 4 * static_cast<size_t>(expected_ndim), ValueError, "read_mnist: '", path,
               "' ends inside its header");
  size_t count = 1;
  for (int d = 0; d < expected_ndim; ++d) {
    shape.push_back(be32(b, 4 + 4 * d));
    count *= static_cast<size_t>(shape.back());
  }
  *data_at = 4 + 4 * static_cast<size_t>(expected_ndim);
  COHORT_CHECK(b.size() == *data_at + count, ValueError, "read_mnist: '", path, "' should hold ", count,
               " bytes of data for shape ", shape_str(shape), " but holds ", b.size() - *data_at,
               "; the file is truncated or not an MNIST file");
  return shape;
}

Tensor bytes_to_unit_float(const uint8_t* p, Shape shape) {
  Tensor t = Tensor::empty(shape, DType::f32);
  float* o = t.data_ptr<float>();
  for (int64_t i = 0; i < t.numel(); ++i) o[i] = static_cast<float>(p[i]) / 255.0f;
  return t;
}

std::vector<uint8_t> to_bytes(const Tensor& t, const char* what) {
  const Tensor v = t.to(DType::i64).contiguous();
  const int64_t* p = v.data_ptr<int64_t>();
  std::vector<uint8_t> out(v.numel());
  for (int64_t i = 0; i < v.numel(); ++i) {
    COHORT_CHECK(p[i] >= 0 && p[i] <= 255, ValueError, what, ": value ", p[i], " does not fit in a byte");
    out[i] = static_cast<uint8_t>(p[i]);
  }
  return out;
}

}  // namespace

TensorDataset read_mnist(const std::string& images_path, const std::string& labels_path) {
  const std::vector<uint8_t> ib = read_file(images_path, "read_mnist");
  const std::vector<uint8_t> lb = read_file(labels_path, "read_mnist");
  size_t i_at = 0, l_at = 0;
  const Shape is = read_idx_header(ib, images_path, 3, &i_at);
  const Shape ls = read_idx_header(lb, labels_path, 1, &l_at);
  COHORT_CHECK(is[0] == ls[0], ValueError, "read_mnist: '", images_path, "' has ", is[0], " images but '",
               labels_path, "' has ", ls[0], " labels");
  Tensor images = bytes_to_unit_float(ib.data() + i_at, {is[0], 1, is[1], is[2]});
  Tensor labels = Tensor::empty({ls[0]}, DType::i64);
  for (int64_t i = 0; i < ls[0]; ++i) labels.data_ptr<int64_t>()[i] = lb[l_at + i];
  return TensorDataset(images, labels);
}

void write_mnist(const std::string& images_path, const std::string& labels_path, const Tensor& images,
                 const Tensor& labels) {
  COHORT_CHECK(images.dim() == 3 && labels.dim() == 1 && images.size(0) == labels.size(0), ShapeError,
               "write_mnist: expected images (N, rows, cols) and labels (N), got ", images.shape_str(), " and ",
               labels.shape_str());
  std::vector<uint8_t> ib = {0, 0, 0x08, 3};
  for (int64_t d = 0; d < 3; ++d) put_be32(&ib, static_cast<uint32_t>(images.size(d)));
  const std::vector<uint8_t> pixels = to_bytes(images, "write_mnist");
  ib.insert(ib.end(), pixels.begin(), pixels.end());
  std::vector<uint8_t> lb = {0, 0, 0x08, 1};
  put_be32(&lb, static_cast<uint32_t>(labels.size(0)));
  const std::vector<uint8_t> lv = to_bytes(labels, "write_mnist");
  lb.insert(lb.end(), lv.begin(), lv.end());
  write_file(images_path, ib, "write_mnist");
  write_file(labels_path, lb, "write_mnist");
}

TensorDataset read_cifar10(const std::vector<std::string>& paths) {
  constexpr size_t kRecord = 1 + 3 * 32 * 32;
  std::vector<uint8_t> all;
  for (const std::string& path : paths) {
    std::vector<uint8_t> b = read_file(path, "read_cifar10");
    COHORT_CHECK(!b.empty() && b.size() % kRecord == 0, ValueError, "read_cifar10: '", path, "' is ", b.size(),
                 " bytes, not a whole number of ", kRecord, "-byte records (1 label + 3072 pixels); the file is "
                 "truncated or not a CIFAR-10 binary batch");
    all.insert(all.end(), b.begin(), b.end());
  }
  COHORT_CHECK(!paths.empty(), ValueError, "read_cifar10: no files given");
  const int64_t n = static_cast<int64_t>(all.size() / kRecord);
  Tensor images = Tensor::empty({n, 3, 32, 32}, DType::f32);
  Tensor labels = Tensor::empty({n}, DType::i64);
  float* ip = images.data_ptr<float>();
  int64_t* lp = labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* r = all.data() + i * kRecord;
    COHORT_CHECK(r[0] < 10, ValueError, "read_cifar10: record ", i, " has label ", int(r[0]),
                 ", expected 0..9; not a CIFAR-10 file");
    lp[i] = r[0];
    for (size_t k = 0; k < kRecord - 1; ++k) ip[i * (kRecord - 1) + k] = static_cast<float>(r[1 + k]) / 255.0f;
  }
  return TensorDataset(images, labels);
}

void write_cifar10(const std::string& path, const Tensor& images, const Tensor& labels) {
  COHORT_CHECK(images.dim() == 4 && images.size(1) == 3 && images.size(2) == 32 && images.size(3) == 32 &&
                   labels.dim() == 1 && labels.size(0) == images.size(0),
               ShapeError, "write_cifar10: expected images (N, 3, 32, 32) and labels (N), got ", images.shape_str(),
               " and ", labels.shape_str());
  const std::vector<uint8_t> px = to_bytes(images, "write_cifar10");
  const std::vector<uint8_t> lv = to_bytes(labels, "write_cifar10");
  std::vector<uint8_t> out;
  out.reserve(px.size() + lv.size());
  for (size_t i = 0; i < lv.size(); ++i) {
    out.push_back(lv[i]);
    out.insert(out.end(), px.begin() + i * 3072, px.begin() + (i + 1) * 3072);
  }
  write_file(path, out, "write_cifar10");
}

Tensor read_tokens(const std::string& path) {
  const std::vector<uint8_t> b = read_file(path, "read_tokens");
  COHORT_CHECK(b.size() % 2 == 0 && !b.empty(), ValueError, "read_tokens: '", path, "' is ", b.size(),
               " bytes; a token file is a non-empty sequence of little-endian uint16 (an even byte count)");
  const int64_t n = static_cast<int64_t>(b.size() / 2);
  Tensor t = Tensor::empty({n}, DType::i64);
  int64_t* p = t.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) p[i] = b[2 * i] | (b[2 * i + 1] << 8);
  return t;
}

void write_tokens(const std::string& path, const Tensor& tokens) {
  const Tensor v = tokens.to(DType::i64).contiguous();
  std::vector<uint8_t> out;
  out.reserve(2 * v.numel());
  for (int64_t i = 0; i < v.numel(); ++i) {
    const int64_t x = v.data_ptr<int64_t>()[i];
    COHORT_CHECK(x >= 0 && x < 65536, ValueError, "write_tokens: token ", x, " does not fit in uint16");
    out.push_back(static_cast<uint8_t>(x & 0xff));
    out.push_back(static_cast<uint8_t>(x >> 8));
  }
  write_file(path, out, "write_tokens");
}

namespace {
// n images of `pixels` bytes: a random prototype per class, plus noise, clamped to bytes.
Tensor class_images(const Tensor& labels, int64_t classes, int64_t pixels, Generator& gen) {
  const Tensor prototypes = rand({classes, pixels}, {}, &gen) * 255.0;
  const Tensor noise = randn({labels.numel(), pixels}, {}, &gen) * 40.0;
  Tensor out = Tensor::empty({labels.numel(), pixels}, DType::i64);
  const float* pp = prototypes.data_ptr<float>();
  const float* np = noise.data_ptr<float>();
  int64_t* o = out.data_ptr<int64_t>();
  for (int64_t i = 0; i < labels.numel(); ++i) {
    const int64_t c = labels.data_ptr<int64_t>()[i];
    for (int64_t k = 0; k < pixels; ++k) {
      const float v = pp[c * pixels + k] + np[i * pixels + k];
      o[i * pixels + k] = static_cast<int64_t>(std::lround(std::fmin(255.0f, std::fmax(0.0f, v))));
    }
  }
  return out;
}
}  // namespace

SyntheticPaths make_synthetic_mnist(const std::string& dir, int64_t n, uint64_t seed) {
  Generator gen(seed);
  const Tensor labels = randint(0, 10, {n}, DType::i64, &gen);
  const Tensor images = class_images(labels, 10, 28 * 28, gen).reshape({n, 28, 28});
  SyntheticPaths p{{dir + "/train-images-idx3-ubyte", dir + "/train-labels-idx1-ubyte"}};
  write_mnist(p.files[0], p.files[1], images, labels);
  return p;
}

SyntheticPaths make_synthetic_cifar10(const std::string& dir, int64_t n, uint64_t seed) {
  Generator gen(seed);
  const Tensor labels = randint(0, 10, {n}, DType::i64, &gen);
  const Tensor images = class_images(labels, 10, 3 * 32 * 32, gen).reshape({n, 3, 32, 32});
  SyntheticPaths p{{dir + "/data_batch_1.bin"}};
  write_cifar10(p.files[0], images, labels);
  return p;
}

SyntheticPaths make_synthetic_text(const std::string& dir, int64_t n_chars, uint64_t seed) {
  // Sentences from a tiny grammar: predictable enough for a small model to learn quickly.
  static const char* subjects[] = {"the cat", "a dog", "the old man", "my friend", "the bird", "a child"};
  static const char* verbs[] = {"sees", "likes", "follows", "finds", "hears", "watches"};
  static const char* objects[] = {"the moon", "a red ball", "the river", "some bread", "the house", "a song"};
  Generator gen(seed);
  std::string text;
  while (static_cast<int64_t>(text.size()) < n_chars) {
    const Tensor r = randint(0, 6, {3}, DType::i64, &gen);
    const int64_t* k = r.data_ptr<int64_t>();
    text += std::string(subjects[k[0]]) + " " + verbs[k[1]] + " " + objects[k[2]] + ".\n";
  }
  text.resize(n_chars);
  Tensor tokens = Tensor::empty({n_chars}, DType::i64);
  for (int64_t i = 0; i < n_chars; ++i) tokens.data_ptr<int64_t>()[i] = static_cast<unsigned char>(text[i]);
  SyntheticPaths p{{dir + "/text.u16"}};
  write_tokens(p.files[0], tokens);
  return p;
}

}  // namespace cohort
