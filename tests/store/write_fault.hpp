// Fault injection for the store tests: this test binary defines its own
// pwrite(2) (and pwrite64) and write(2), which HDF5's file driver and the store's own code
// call instead of libc's. When armed, writes to files whose path starts with
// a given prefix fail with a given errno once a byte budget is used up: a
// full disk (ENOSPC) or a failing one (EIO) at any point of a write, without
// root or a small file system.
#pragma once

#include <cstdint>
#include <string>

namespace simsink::store::testing {

// Writes to files under `path_prefix` succeed until `budget` bytes have been
// written to them, counted from now; the write that would pass it fails with
// `err`, and so does every later one.
void arm_write_fault(const std::string& path_prefix, std::uint64_t budget, int err);
void disarm_write_fault();

// Disarms at the end of a scope.
struct WriteFault {
    WriteFault(const std::string& path_prefix, std::uint64_t budget, int err) {
        arm_write_fault(path_prefix, budget, err);
    }
    ~WriteFault() { disarm_write_fault(); }
    WriteFault(const WriteFault&) = delete;
    WriteFault& operator=(const WriteFault&) = delete;
};

}  // namespace simsink::store::testing
