// kvcore::Transport: the one thing an application supplies to run a cluster.
//
// Stores exchange opaque frames (byte strings). A store hands each frame it
// wants delivered to Transport::send(); the application carries it to the
// machine of the destination store and calls Store::deliver() there with the
// same bytes. kvcore makes no assumption about the medium (TCP, RDMA, a queue,
// an in-process hand-off).
//
// Delivery may be unreliable: a frame may be dropped, delayed, duplicated or
// reordered. Raft retransmits what matters, so a transport should drop rather
// than queue without bound. A transport must not alter bytes (a damaged frame
// is detected and dropped, but costs a retransmission).
#pragma once

#include <cstdint>
#include <string>

namespace kvcore {

class Transport {
 public:
  virtual ~Transport() = default;

  // Queues `frame` for store `to_store` and returns at once.
  //
  // REQUIRES: does not block (it is called from a store's raft thread) and
  // does not call back into the sending Store. It may drop the frame; when it
  // knows the destination is down, it should say so through
  // Store::report_unreachable(to_store) from another thread or later.
  //
  // Thread-safety: called from the store's internal threads, possibly several
  // at once.
  virtual void send(std::uint64_t to_store, std::string frame) = 0;
};

}  // namespace kvcore
