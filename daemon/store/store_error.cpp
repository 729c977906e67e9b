#include "store_error.hpp"

#include <cerrno>

namespace simsink::store {

bool StoreError::disk_full() const noexcept {
    return errno_ == ENOSPC || errno_ == EDQUOT;
}

}  // namespace simsink::store
