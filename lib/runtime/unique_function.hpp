// The runtime's task type. UniqueFunction itself is public (kvcore/unique_function.hpp)
// because the Store API's completion callbacks use it too.
#pragma once

#include "kvcore/unique_function.hpp"

namespace kvcore::runtime {

using kvcore::UniqueFunction;
using Task = UniqueFunction<void()>;

}  // namespace kvcore::runtime
