// The TCP store's wire format. A request is
//   [u8 op][u32 nargs]{[u32 len][bytes]}*nargs[i64 timeout_ms, -1 = none]
// and the answer [u8 status][u32 len][bytes]. Integers are little-endian (both ends are this code
// on Linux/x86 or ARM, so host order; the store is not meant to cross architectures).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace cohort::parallel::detail {

enum class StoreOp : uint8_t { set = 1, get = 2, add = 3, wait = 4, check = 5 };
enum class StoreStatus : uint8_t { ok = 0, timeout = 1, error = 2 };

template <class T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

template <class T>
bool take(const std::string& in, size_t& pos, T& v) {
  if (in.size() - pos < sizeof v) return false;
  std::memcpy(&v, in.data() + pos, sizeof v);
  pos += sizeof v;
  return true;
}

inline std::string encode_request(StoreOp op, const std::vector<std::string>& args, int64_t timeout_ms) {
  std::string out;
  put<uint8_t>(out, static_cast<uint8_t>(op));
  put<uint32_t>(out, static_cast<uint32_t>(args.size()));
  for (const auto& a : args) {
    put<uint32_t>(out, static_cast<uint32_t>(a.size()));
    out += a;
  }
  put<int64_t>(out, timeout_ms);
  return out;
}

struct StoreRequest {
  StoreOp op;
  std::vector<std::string> args;
  int64_t timeout_ms;
};

// Parses one request from the front of `in`; returns the bytes it used, 0 when incomplete.
inline size_t decode_request(const std::string& in, StoreRequest& req) {
  size_t pos = 0;
  uint8_t op;
  uint32_t nargs;
  if (!take(in, pos, op) || !take(in, pos, nargs)) return 0;
  req.op = static_cast<StoreOp>(op);
  req.args.clear();
  for (uint32_t i = 0; i < nargs; ++i) {
    uint32_t len;
    if (!take(in, pos, len) || in.size() - pos < len) return 0;
    req.args.emplace_back(in.substr(pos, len));
    pos += len;
  }
  if (!take(in, pos, req.timeout_ms)) return 0;
  return pos;
}

inline std::string encode_reply(StoreStatus status, const std::string& payload) {
  std::string out;
  put<uint8_t>(out, static_cast<uint8_t>(status));
  put<uint32_t>(out, static_cast<uint32_t>(payload.size()));
  return out + payload;
}

}  // namespace cohort::parallel::detail
