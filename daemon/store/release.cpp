#include "release.hpp"

#include <pthread.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <thread>
#include <variant>
#include <vector>

namespace simsink::store {
namespace {

using Job = std::variant<int, std::filesystem::path>;  // a descriptor to close, a path to remove

void run(const Job& job) noexcept {
    if (const int* fd = std::get_if<int>(&job)) {
        ::close(*fd);
        return;
    }
    std::error_code ec;
    std::filesystem::remove(std::get<std::filesystem::path>(job), ec);
}

// One per process. Its thread starts with the first job; the static
// destructor (at exit) stops it and does whatever is still queued.
class Releaser {
  public:
    static Releaser& get() {
        static Releaser r;
        return r;
    }

    void add(Job job) noexcept {
        try {
            std::unique_lock lock(mutex_);
            if (!thread_.joinable() && !stopping_) {
                thread_ = std::thread([this] { loop(); });
            }
            if (!stopping_) {
                queue_.push_back(std::move(job));
                lock.unlock();
                cv_.notify_one();
                return;
            }
        } catch (...) {
            // No thread or no memory to be had: do it here, as before.
        }
        run(job);
    }

    void drain() noexcept {
        std::unique_lock lock(mutex_);
        drained_.wait(lock, [&] { return queue_.empty() && !busy_; });
    }

    ~Releaser() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        cv_.notify_one();
        if (thread_.joinable()) thread_.join();
        for (const auto& job : queue_) run(job);
    }

    Releaser(const Releaser&) = delete;
    Releaser& operator=(const Releaser&) = delete;

  private:
    Releaser() = default;

    void loop() noexcept {
        pthread_setname_np(pthread_self(), "releaser");
        std::unique_lock lock(mutex_);
        for (;;) {
            cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) return;
            std::vector<Job> batch;
            batch.swap(queue_);
            busy_ = true;
            lock.unlock();
            for (const auto& job : batch) run(job);  // frees (and discards) the blocks
            lock.lock();
            busy_ = false;
            drained_.notify_all();
        }
    }

    std::mutex mutex_;
    std::condition_variable cv_, drained_;
    std::vector<Job> queue_;
    bool busy_ = false;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace

void release_later(int fd) noexcept {
    if (fd >= 0) Releaser::get().add(Job{fd});
}

void remove_later(std::filesystem::path path) noexcept {
    Releaser::get().add(Job{std::move(path)});
}

void release_pending() noexcept {
    Releaser::get().drain();
}

}  // namespace simsink::store
