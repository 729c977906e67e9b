// Wall-clock time as Unix seconds: what the catalog stores (started, ended,
// last_seen, created) and what timeouts on client silence are measured in.
#pragma once

#include <chrono>

namespace simsink {

inline double unix_now() noexcept {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace simsink
