// kvcore::make_real_runtime: a runtime of real threads and the steady clock,
// for an application that runs several stores (and a MemoryNetwork) in one
// process and wants them to share timers and randomness.
//
// A Store opened with StoreOptions::runtime == nullptr makes its own; share
// one only when you want to. The Runtime type stays opaque here: pass the
// pointer to StoreOptions::runtime and to MemoryNetwork's constructor.
#pragma once

#include <memory>

namespace kvcore {

namespace runtime {
class Runtime;
}  // namespace runtime

// REQUIRES: the returned runtime outlives every Store and MemoryNetwork
// given it (destroy them first).
[[nodiscard]] std::shared_ptr<runtime::Runtime> make_real_runtime();

}  // namespace kvcore
