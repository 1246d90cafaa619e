// Communicator's public entry points: validate arguments once, for every backend, assign the
// sequence number, then hand over to the backend.
#include "cohort/parallel/comm/communicator.h"

#include <utility>

namespace cohort::parallel {

using ::cohort::detail::str_cat;

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum: return "sum";
    case ReduceOp::avg: return "avg";
    case ReduceOp::max: return "max";
    case ReduceOp::min: return "min";
  }
  return "?";
}

const char* collective_name(Collective c) {
  switch (c) {
    case Collective::all_reduce: return "all_reduce";
    case Collective::broadcast: return "broadcast";
    case Collective::all_gather: return "all_gather";
    case Collective::reduce_scatter: return "reduce_scatter";
    case Collective::barrier: return "barrier";
    case Collective::split: return "split";
    case Collective::send: return "send";
    case Collective::recv: return "recv";
  }
  return "?";
}

std::string Work::describe() const { return ::cohort::detail::str_cat(collective_name(collective_), " #", seq_); }

Communicator::Communicator(int rank, int size, std::string name)
    : rank_(rank), size_(size), name_(std::move(name)), sends_(size, 0), recvs_(size, 0) {
  COHORT_CHECK(size >= 1 && rank >= 0 && rank < size, ValueError, "communicator '", name_, "': rank ", rank,
               " is not in [0, ", size, ")");
}

void Communicator::check_reduction(Collective c, DType dtype, ReduceOp op) const {
  COHORT_CHECK(op != ReduceOp::avg || is_floating(dtype), DTypeError, backend(), " communicator: ",
               collective_name(c), " with op avg needs a floating dtype (f32, f64, bf16, f16), got ",
               dtype_name(dtype), "; reduce with sum and divide yourself");
}

void Communicator::check_buffer_args(Collective c, const void* input, const void* output, int64_t count) const {
  COHORT_CHECK(count >= 0, ValueError, backend(), " communicator: ", collective_name(c), " got count ", count,
               "; expected a count >= 0");
  COHORT_CHECK(count == 0 || (input != nullptr && output != nullptr), ValueError, backend(), " communicator: ",
               collective_name(c), " got a null buffer for ", count, " elements");
}

void Communicator::check_tensor(Collective c, const char* what, const Tensor& t) const {
  COHORT_CHECK(t.defined(), ValueError, backend(), " communicator: ", collective_name(c), ": the ", what, " is undefined");
  if (t.device() != device()) {
    // Never hand another device's memory to this backend: a host backend would read device
    // pointers as host memory, NCCL would fault on host pointers.
    std::string fix;
    if (device().is_cpu()) {
      fix = str_cat("CUDA tensors go through the nccl communicator (make_process_group with backend \"nccl\", "
                    "or make_nccl_communicator; ProcessGroup routes each tensor by its device), or move it with "
                    ".to(Device::cpu())");
    } else if (t.device().is_cpu()) {
      fix = str_cat("move it to the GPU with .to(Device::cuda(", device().index, ")), or use the group's host ",
                    "communicator (mpi or local) for CPU tensors");
    } else {
      fix = str_cat("each rank's nccl communicator drives one GPU; move the tensor with .to(Device::cuda(",
                    device().index, ")) or build the communicator for ", t.device().str());
    }
    COHORT_THROW(DeviceError, backend(), " communicator: ", collective_name(c), " got the ", what, " on ",
                 t.device().str(), " but this communicator moves ", device().is_cpu() ? "host" : device().str(),
                 " memory; ", fix);
  }
  COHORT_CHECK(t.is_contiguous(), ValueError, backend(), " communicator: ", collective_name(c), ": the ", what,
               " of shape ", t.shape_str(), " is not contiguous; pass t.contiguous() (and copy back)");
}

void Communicator::check_peer(Collective c, int peer) const {
  COHORT_CHECK(peer >= 0 && peer < size_ && peer != rank_, ValueError, backend(), " communicator '", name_, "': ",
               collective_name(c), " on rank ", rank_, " names peer ", peer, "; expected another rank in [0, ",
               size_, ")");
}

// ---- raw buffers ----

WorkPtr Communicator::all_reduce(const void* input, void* output, int64_t count, DType dtype,
                                 const AllReduceOptions& options) {
  check_buffer_args(Collective::all_reduce, input, output, count);
  check_reduction(Collective::all_reduce, dtype, options.op);
  return do_all_reduce(input, output, count, dtype, options, ++seq_);
}

WorkPtr Communicator::broadcast(const void* input, void* output, int64_t count, DType dtype,
                                const BroadcastOptions& options) {
  COHORT_CHECK(options.root >= 0 && options.root < size_, ValueError, backend(), " communicator: broadcast root ",
               options.root, " is not a rank of '", name_, "' (size ", size_, ")");
  check_buffer_args(Collective::broadcast, rank_ == options.root ? input : output, output, count);
  return do_broadcast(input, output, count, dtype, options, ++seq_);
}

WorkPtr Communicator::all_gather(const void* input, void* output, int64_t count, DType dtype,
                                 const AllGatherOptions& options) {
  check_buffer_args(Collective::all_gather, input, output, count);
  return do_all_gather(input, output, count, dtype, options, ++seq_);
}

WorkPtr Communicator::reduce_scatter(const void* input, void* output, int64_t count, DType dtype,
                                     const ReduceScatterOptions& options) {
  check_buffer_args(Collective::reduce_scatter, input, output, count);
  check_reduction(Collective::reduce_scatter, dtype, options.op);
  return do_reduce_scatter(input, output, count, dtype, options, ++seq_);
}

WorkPtr Communicator::barrier(const BarrierOptions& options) { return do_barrier(options, ++seq_); }

WorkPtr Communicator::send(const void* input, int64_t count, DType dtype, int dst, const SendOptions& options) {
  check_peer(Collective::send, dst);
  check_buffer_args(Collective::send, input, input, count);
  return do_send(input, count, dtype, dst, options, ++sends_[dst]);
}

WorkPtr Communicator::recv(void* output, int64_t count, DType dtype, int src, const RecvOptions& options) {
  check_peer(Collective::recv, src);
  check_buffer_args(Collective::recv, output, output, count);
  return do_recv(output, count, dtype, src, options, ++recvs_[src]);
}

std::shared_ptr<Communicator> Communicator::split(int color, int key, const std::string& name) {
  return do_split(color, key, name, ++seq_);
}

// ---- tensors ----

namespace {
WorkPtr keeping(WorkPtr work, std::vector<Tensor> tensors) {
  work->keep_alive(std::move(tensors));
  return work;
}
}  // namespace

WorkPtr Communicator::all_reduce(Tensor& tensor, const AllReduceOptions& options) {
  check_tensor(Collective::all_reduce, "tensor", tensor);
  return keeping(all_reduce(tensor.raw_data(), tensor.raw_data(), tensor.numel(), tensor.dtype(), options), {tensor});
}

WorkPtr Communicator::broadcast(Tensor& tensor, const BroadcastOptions& options) {
  check_tensor(Collective::broadcast, "tensor", tensor);
  return keeping(broadcast(tensor.raw_data(), tensor.raw_data(), tensor.numel(), tensor.dtype(), options), {tensor});
}

WorkPtr Communicator::all_gather(Tensor& output, const Tensor& input, const AllGatherOptions& options) {
  check_tensor(Collective::all_gather, "input tensor", input);
  check_tensor(Collective::all_gather, "output tensor", output);
  COHORT_CHECK(input.dtype() == output.dtype(), DTypeError, backend(), " communicator: all_gather input is ",
               dtype_name(input.dtype()), " but output is ", dtype_name(output.dtype()));
  COHORT_CHECK(output.numel() == input.numel() * size_, ShapeError, backend(),
               " communicator: all_gather of an input with ", input.numel(), " elements on ", size_,
               " ranks needs an output with ", input.numel() * size_, " elements, got shape ", output.shape_str());
  return keeping(all_gather(input.raw_data(), output.raw_data(), input.numel(), input.dtype(), options),
                 {input, output});
}

WorkPtr Communicator::reduce_scatter(Tensor& output, const Tensor& input, const ReduceScatterOptions& options) {
  check_tensor(Collective::reduce_scatter, "input tensor", input);
  check_tensor(Collective::reduce_scatter, "output tensor", output);
  COHORT_CHECK(input.dtype() == output.dtype(), DTypeError, backend(), " communicator: reduce_scatter input is ",
               dtype_name(input.dtype()), " but output is ", dtype_name(output.dtype()));
  COHORT_CHECK(input.numel() == output.numel() * size_, ShapeError, backend(),
               " communicator: reduce_scatter into an output with ", output.numel(), " elements on ", size_,
               " ranks needs an input with ", output.numel() * size_, " elements, got shape ", input.shape_str());
  return keeping(reduce_scatter(input.raw_data(), output.raw_data(), output.numel(), output.dtype(), options),
                 {input, output});
}

WorkPtr Communicator::send(const Tensor& tensor, int dst, const SendOptions& options) {
  check_tensor(Collective::send, "tensor", tensor);
  return keeping(send(tensor.raw_data(), tensor.numel(), tensor.dtype(), dst, options), {tensor});
}

WorkPtr Communicator::recv(Tensor& tensor, int src, const RecvOptions& options) {
  check_tensor(Collective::recv, "tensor", tensor);
  return keeping(recv(tensor.raw_data(), tensor.numel(), tensor.dtype(), src, options), {tensor});
}

}  // namespace cohort::parallel
