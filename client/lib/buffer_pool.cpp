#include "buffer_pool.hpp"

#include <bit>
#include <cstdlib>
#include <new>

namespace simsink::detail {

BufferPool::~BufferPool() {
    for (auto& list : free_)
        for (Buffer* b : list) {
            if (b->arena_offset == kNotShared) std::free(b->data);
            delete b;
        }
}

Buffer* BufferPool::acquire(std::size_t min_capacity) {
    unsigned cls = kMinClass;
    if (min_capacity > (std::size_t{1} << kMinClass))
        cls = static_cast<unsigned>(std::bit_width(min_capacity - 1));
    if (cls >= kClasses) throw std::bad_alloc();
    {
        std::lock_guard lock(mu_);
        auto& list = free_[cls];
        if (!list.empty()) {
            Buffer* b = list.back();
            list.pop_back();
            if (b->arena_offset == kNotShared) free_bytes_ -= b->capacity;
            b->refs.store(1, std::memory_order_relaxed);
            return b;
        }
    }
    auto* b = new Buffer;
    b->capacity = std::size_t{1} << cls;
    if (arena_) {
        std::lock_guard lock(mu_);
        if (auto* p = arena_->carve(b->capacity)) {
            b->data = p;
            b->arena_offset = arena_->offset_of(p);
        } else {
            arena_full_ = true;
        }
    }
    if (!b->data) b->data = static_cast<std::uint8_t*>(std::malloc(b->capacity));
    if (!b->data) {
        delete b;
        throw std::bad_alloc();
    }
    b->pool = this;
    b->size_class = cls;
    b->refs.store(1, std::memory_order_relaxed);
    return b;
}

void BufferPool::unref(Buffer* b) noexcept {
    if (b->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) b->pool->give_back(b);
}

void BufferPool::give_back(Buffer* b) noexcept {
    {
        std::lock_guard lock(mu_);
        // Arena buffers cannot go back to the system: always keep them.
        // Malloc'd ones only while there is no arena with room to carve.
        const bool shared = b->arena_offset != kNotShared;
        if (shared || ((!arena_ || arena_full_) && free_bytes_ + b->capacity <= max_free_bytes_)) {
            try {
                free_[b->size_class].push_back(b);
                if (b->arena_offset == kNotShared) free_bytes_ += b->capacity;
                return;
            } catch (const std::bad_alloc&) {
                // fall through: free it (an arena buffer's space stays unused)
            }
        }
    }
    if (b->arena_offset == kNotShared) std::free(b->data);
    delete b;
}

const ShmArena* BufferPool::arena() const {
    std::lock_guard lock(mu_);
    return arena_.get();
}

void BufferPool::arena_settled() {
    {
        std::lock_guard lock(mu_);
        arena_settled_ = true;
    }
    settled_cv_.notify_all();
}

bool BufferPool::wait_arena_settled(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mu_);
    return settled_cv_.wait_until(lock, deadline, [&] { return arena_settled_; });
}

bool BufferPool::attach_arena(std::unique_ptr<ShmArena> arena) {
    if (!arena) return false;
    std::vector<Buffer*> drop;
    {
        std::lock_guard lock(mu_);
        if (arena_) return false;
        arena_ = std::move(arena);
        // Idle malloc'd buffers would be reused before the arena is carved.
        for (auto& list : free_)
            for (auto it = list.begin(); it != list.end();)
                if ((*it)->arena_offset == kNotShared) {
                    drop.push_back(*it);
                    free_bytes_ -= (*it)->capacity;
                    it = list.erase(it);
                } else {
                    ++it;
                }
    }
    for (Buffer* b : drop) {
        std::free(b->data);
        delete b;
    }
    return true;
}

std::size_t BufferPool::free_bytes() const {
    std::lock_guard lock(mu_);
    return free_bytes_;
}

}  // namespace simsink::detail
