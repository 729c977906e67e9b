// Errors of the storage layer (HDF5 files and the file system under them).
#pragma once

#include <stdexcept>
#include <string>

namespace simsink::store {

// Thrown by every function of simsink::store. `disk_full()` is true when the
// cause was ENOSPC or EDQUOT (the daemon then reports DISK_FULL and retries
// later); otherwise it is an I/O error. The message names the file, the
// object and the operation, followed by the HDF5 error stack's innermost
// message when HDF5 produced one.
class StoreError : public std::runtime_error {
  public:
    StoreError(const std::string& what, int sys_errno = 0)
        : std::runtime_error(what), errno_(sys_errno) {}
    int sys_errno() const noexcept { return errno_; }
    bool disk_full() const noexcept;

  private:
    int errno_;
};

}  // namespace simsink::store
