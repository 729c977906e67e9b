// Reference-counted byte buffers for staged rows, recycled through a pool.
//
// Why a pool: on the VMs simsink targets, copying into memory that was
// touched before runs at 10-20 GB/s, into freshly faulted memory at
// 0.5-1.5 GB/s (shared/WORKLOADS.md). A batch buffer goes back to the pool
// when its APPEND is acknowledged and ZeroMQ has released it, and the next
// batch reuses it warm.
//
// A Buffer is shared by its owner (the staging batch, then the unacknowledged
// message log) and by every ZeroMQ message that references it (zero-copy
// send): each holds one reference. The last unref() returns it to its pool,
// from any thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "shm_arena.hpp"

namespace simsink::detail {

class BufferPool;

inline constexpr std::uint64_t kNotShared = ~std::uint64_t{0};

struct Buffer {
    std::uint8_t* data = nullptr;
    std::size_t capacity = 0;
    std::atomic<std::uint32_t> refs{0};
    BufferPool* pool = nullptr;
    unsigned size_class = 0;                // capacity == 2^size_class
    std::uint64_t arena_offset = kNotShared;  // where in the shared-memory arena, if there
};

// Thread-safe. Buffers have power-of-two capacities from 4 KiB up; the pool
// keeps at most `max_free_bytes` of idle malloc'd buffers and frees the rest.
// With an arena attached, new buffers are carved from it while it has room
// (and are always kept for reuse), then malloc'd. The arena can be attached
// later (the I/O thread gets it from the daemon); malloc'd buffers coming
// back are then freed while the arena has room, so that later batches use
// the arena. It must outlive every
// Buffer it handed out (the client destroys its ZeroMQ context, which drops
// ZeroMQ's references, before its pool).
class BufferPool {
  public:
    explicit BufferPool(std::size_t max_free_bytes) : max_free_bytes_(max_free_bytes) {}
    ~BufferPool();
    BufferPool(const BufferPool&) = delete;
    BufferPool& operator=(const BufferPool&) = delete;

    // A buffer of at least `min_capacity` bytes with one reference. Throws
    // std::bad_alloc.
    Buffer* acquire(std::size_t min_capacity);

    static void ref(Buffer* b) noexcept { b->refs.fetch_add(1, std::memory_order_relaxed); }
    // Drops one reference; the last one returns the buffer to its pool.
    static void unref(Buffer* b) noexcept;

    std::size_t free_bytes() const;  // idle malloc'd buffers (arena buffers cost nothing idle)
    // Carve new buffers from `arena` from now on. Once only: false (and
    // `arena` destroyed) when one is attached already. The pool owns it.
    bool attach_arena(std::unique_ptr<ShmArena> arena);
    // The attached arena, or null.
    const ShmArena* arena() const;
    // The I/O thread has answered the first WELCOME's question of where the
    // arena comes from (lent, own, or none); wakes wait_arena_settled().
    void arena_settled();
    // Waits until arena_settled() or `deadline`; true when settled.
    bool wait_arena_settled(std::chrono::steady_clock::time_point deadline);

  private:
    static constexpr unsigned kMinClass = 12;  // 4 KiB
    static constexpr unsigned kClasses = 64;
    void give_back(Buffer* b) noexcept;

    mutable std::mutex mu_;
    std::array<std::vector<Buffer*>, kClasses> free_{};
    std::size_t free_bytes_ = 0;
    const std::size_t max_free_bytes_;
    std::unique_ptr<ShmArena> arena_;  // attached and carved under mu_
    bool arena_full_ = false;          // a carve failed: malloc'd buffers are kept again
    bool arena_settled_ = false;
    std::condition_variable settled_cv_;
};

// Owns one reference to a Buffer and knows how many of its bytes are used.
class BufferRef {
  public:
    BufferRef() = default;
    BufferRef(Buffer* b, std::size_t size) noexcept : buf_(b), size_(size) {}
    ~BufferRef() {
        if (buf_) BufferPool::unref(buf_);
    }
    BufferRef(BufferRef&& o) noexcept
        : buf_(std::exchange(o.buf_, nullptr)), size_(std::exchange(o.size_, 0)) {}
    BufferRef& operator=(BufferRef&& o) noexcept {
        if (this != &o) {
            if (buf_) BufferPool::unref(buf_);
            buf_ = std::exchange(o.buf_, nullptr);
            size_ = std::exchange(o.size_, 0);
        }
        return *this;
    }
    BufferRef(const BufferRef&) = delete;
    BufferRef& operator=(const BufferRef&) = delete;

    Buffer* get() const noexcept { return buf_; }
    const std::uint8_t* data() const noexcept { return buf_->data; }
    std::size_t size() const noexcept { return size_; }

  private:
    Buffer* buf_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace simsink::detail
