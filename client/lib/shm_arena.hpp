// The client's side of the shared-memory lane (proto/PROTOCOL.md 1.1): a
// sealed memfd that the batch buffers are carved from, registered with the
// daemon over its unix socket so that APPENDs can name ranges of it instead
// of copying the bytes through ZeroMQ.
//
// The arena only reserves address space and a file size; pages are backed
// when first written, like malloc'd buffers. Buffers carved from it are
// recycled by the BufferPool and never returned (the arena is unmapped with
// the client).
//
// A client first asks the daemon to lend it an arena (borrow()): a daemon
// keeps the arenas of finished clients of the same user, whose pages exist
// already, and first touches of fresh memory are what a short-lived worker
// pays most for. It makes its own (create()) only when the daemon lends
// none.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace simsink::detail {

class ShmArena {
  public:
    // A sealed (F_SEAL_SHRINK | F_SEAL_GROW) memfd of at least `size` bytes,
    // mapped read-write; null when the kernel cannot make one (then the
    // client copies, as it does for a remote daemon).
    static std::unique_ptr<ShmArena> create(std::uint64_t size);

    struct Registration {
        std::uint64_t token = 0;
        std::string daemon;  // the daemon id the lane answered with
    };
    // Borrows an arena of `size` bytes (rounded up like create()) from the
    // daemon's lane at `socket_path` as client `client_hex`; it is already
    // registered (`reg`). The lease lasts until the arena is destroyed. On
    // failure returns null and says why in `why`.
    static std::unique_ptr<ShmArena> borrow(const std::string& socket_path,
                                            const std::string& client_hex, std::uint64_t size,
                                            Registration& reg, std::string& why);
    ~ShmArena();
    ShmArena(const ShmArena&) = delete;
    ShmArena& operator=(const ShmArena&) = delete;

    std::uint64_t size() const noexcept { return size_; }
    // `bytes` (a power of two >= 4 KiB) aligned to min(bytes, 2 MiB), or null
    // when the arena is used up. Not thread-safe: the pool calls it locked.
    std::uint8_t* carve(std::size_t bytes) noexcept;
    std::uint64_t offset_of(const std::uint8_t* p) const noexcept {
        return static_cast<std::uint64_t>(p - base_);
    }

    bool borrowed() const noexcept { return lease_fd_ >= 0; }
    // Registers the arena with the daemon's lane at `socket_path` as client
    // `client_hex`. On failure returns nullopt and says why in `why`.
    std::optional<Registration> register_with(const std::string& socket_path,
                                              const std::string& client_hex,
                                              std::string& why) const;

  private:
    ShmArena(int fd, std::uint8_t* base, std::uint64_t size, int lease_fd = -1) noexcept
        : fd_(fd), base_(base), size_(size), lease_fd_(lease_fd) {}
    int fd_;
    std::uint8_t* base_;
    std::uint64_t size_;
    int lease_fd_;  // the open lease connection of a borrowed arena, else -1
    std::uint64_t used_ = 0;
};

// True when `endpoint` can only reach a daemon on this host (ipc://, or tcp
// to a loopback address): only then does a client make an arena.
bool is_local_endpoint(const std::string& endpoint);

}  // namespace simsink::detail
