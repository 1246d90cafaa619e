#include "cohort/core/serialize.h"

#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include "cohort/core/ops/factory.h"

namespace cohort {

namespace {
constexpr char kMagic[8] = {'C', 'O', 'H', 'O', 'R', 'T', 'S', 'D'};
constexpr uint32_t kVersion = 1;

template <class T>
void put(std::string* out, T v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(T));
}

class Reader {
 public:
  // Reads from `bytes`, which must outlive the Reader.
  Reader(const std::string& path, const std::string& bytes) : path_(path), bytes_(bytes) {}
  template <class T>
  T get(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }
  const char* take(size_t n, const char* what) {
    need(n, what);
    const char* p = bytes_.data() + at_;
    at_ += n;
    return p;
  }
  bool done() const { return at_ == bytes_.size(); }

 private:
  void need(size_t n, const char* what) {
    COHORT_CHECK(at_ + n <= bytes_.size(), ValueError, "load: '", path_, "' ends at byte ", bytes_.size(),
                 " while reading ", what, "; the file is truncated (an interrupted copy?) — use an earlier save");
  }
  const std::string& path_;
  const std::string& bytes_;
  size_t at_ = 0;
};
}  // namespace

uint64_t fnv1a64(const void* data, size_t size) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < size; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

void save(const StateDict& state, const std::string& path) {
  std::string out(kMagic, 8);
  put<uint32_t>(&out, kVersion);
  put<uint64_t>(&out, state.size());
  for (const auto& [name, t] : state) {
    const Tensor c = t.detach().to(Device::cpu()).contiguous();  // a GPU tensor is saved from a host copy
    put<uint32_t>(&out, static_cast<uint32_t>(name.size()));
    out += name;
    put<uint8_t>(&out, static_cast<uint8_t>(c.dtype()));
    put<uint32_t>(&out, static_cast<uint32_t>(c.dim()));
    for (int64_t s : c.shape()) put<int64_t>(&out, s);
    put<uint64_t>(&out, c.nbytes());
    put<uint64_t>(&out, fnv1a64(c.raw_data(), c.nbytes()));
    out.append(static_cast<const char*>(c.raw_data()), c.nbytes());
  }
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  COHORT_CHECK(fd >= 0, ValueError, "save: cannot create '", tmp, "': ", std::strerror(errno));
  size_t written = 0;
  while (written < out.size()) {
    const ssize_t n = ::write(fd, out.data() + written, out.size() - written);
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      COHORT_THROW(ValueError, "save: writing '", tmp, "' failed: ", std::strerror(err), "; '", path, "' is unchanged");
    }
    written += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    COHORT_THROW(ValueError, "save: could not commit '", path, "': ", std::strerror(err), "; the old file is unchanged");
  }
}

StateDict load(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  COHORT_CHECK(f != nullptr, ValueError, "load: cannot open '", path, "': ", std::strerror(errno));
  std::string bytes;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) bytes.append(buf, n);
  std::fclose(f);
  Reader r(path, bytes);
  const char* magic = r.take(8, "the magic");
  COHORT_CHECK(std::memcmp(magic, kMagic, 8) == 0, ValueError, "load: '", path,
               "' is not a cohort state file (expected magic COHORTSD)");
  const uint32_t version = r.get<uint32_t>("the version");
  COHORT_CHECK(version == kVersion, ValueError, "load: '", path, "' has format version ", version,
               " but this cohort reads version ", kVersion);
  const uint64_t count = r.get<uint64_t>("the tensor count");
  StateDict out;
  for (uint64_t i = 0; i < count; ++i) {
    const uint32_t len = r.get<uint32_t>("a name length");
    const std::string name(r.take(len, "a name"), len);
    const uint8_t dt = r.get<uint8_t>("a dtype");
    COHORT_CHECK(dt <= static_cast<uint8_t>(DType::boolean), ValueError, "load: '", path, "': tensor '", name,
                 "' has unknown dtype code ", int(dt));
    const uint32_t ndim = r.get<uint32_t>("a rank");
    Shape shape(ndim);
    for (uint32_t d = 0; d < ndim; ++d) shape[d] = r.get<int64_t>("a size");
    const uint64_t nbytes = r.get<uint64_t>("a byte count");
    const uint64_t checksum = r.get<uint64_t>("a checksum");
    Tensor t = Tensor::empty(shape, static_cast<DType>(dt));
    COHORT_CHECK(nbytes == t.nbytes(), ValueError, "load: '", path, "': tensor '", name, "' of shape ",
                 shape_str(shape), " should have ", t.nbytes(), " bytes but the file says ", nbytes);
    const char* data = r.take(nbytes, "tensor data");
    const uint64_t actual = fnv1a64(data, nbytes);
    COHORT_CHECK(actual == checksum, ValueError, "load: '", path, "': tensor '", name, "' has checksum ", std::hex,
                 actual, " but the file recorded ", checksum, "; the file is corrupt — use an earlier save");
    std::memcpy(t.raw_data(), data, nbytes);
    out[name] = t;
  }
  COHORT_CHECK(r.done(), ValueError, "load: '", path, "' has trailing bytes after ", count, " tensors; corrupt file");
  return out;
}

}  // namespace cohort
