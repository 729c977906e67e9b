// Deliberately without <unistd.h>: this file defines pwrite and write itself.
#include "write_fault.hpp"

#include <dlfcn.h>
#include <sys/types.h>

#include <cerrno>
#include <cstddef>
#include <filesystem>
#include <system_error>

namespace simsink::store::testing {
namespace {

// Single-threaded tests: plain globals.
bool armed = false;
std::string prefix;
std::uint64_t remaining = 0;
int error_code = 0;

bool hits_fault(int fd, std::size_t bytes) {
    if (!armed) return false;
    std::error_code ec;
    const auto target =
        std::filesystem::read_symlink("/proc/self/fd/" + std::to_string(fd), ec).string();
    if (ec || target.rfind(prefix, 0) != 0) return false;
    if (bytes <= remaining) {
        remaining -= bytes;
        return false;
    }
    remaining = 0;
    return true;
}

}  // namespace

void arm_write_fault(const std::string& path_prefix, std::uint64_t budget, int err) {
    prefix = path_prefix;
    remaining = budget;
    error_code = err;
    armed = true;
}

void disarm_write_fault() {
    armed = false;
}

}  // namespace simsink::store::testing

namespace {

// libc's `name`, unless the write hits the armed fault: then -1 with its errno.
template <class... Args>
ssize_t write_or_fault(const char* name, int fd, std::size_t n, Args... args) {
    if (simsink::store::testing::hits_fault(fd, n)) {
        errno = simsink::store::testing::error_code;
        return -1;
    }
    using Fn = ssize_t (*)(int, Args...);
    const auto real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
    return real(fd, args...);
}

}  // namespace

extern "C" ssize_t pwrite(int fd, const void* buf, std::size_t n, off_t offset) {
    return write_or_fault("pwrite", fd, n, buf, n, offset);
}

// The store's own raw writes: built with _FILE_OFFSET_BITS=64, its pwrite
// calls are pwrite64.
extern "C" ssize_t pwrite64(int fd, const void* buf, std::size_t n, off_t offset) {
    return write_or_fault("pwrite64", fd, n, buf, n, offset);
}

extern "C" ssize_t write(int fd, const void* buf, std::size_t n) {
    return write_or_fault("write", fd, n, buf, n);
}
