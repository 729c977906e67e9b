#include "ingest/shm_pool.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

namespace simsink::daemon {

namespace {

double steady_now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

std::uint64_t resident_bytes(int fd) {
    struct stat st{};
    return ::fstat(fd, &st) == 0 ? static_cast<std::uint64_t>(st.st_blocks) * 512 : 0;
}

}  // namespace

Loan::~Loan() {
    pool_->give_back(fd_, uid_, size_, file_);
}

ShmPool::~ShmPool() {
    for (const auto& i : idle_) ::close(i.fd);
}

std::shared_ptr<Loan> ShmPool::lend(uid_t uid, std::uint64_t size) {
    if (!lends()) throw std::runtime_error("this daemon lends no memory (shm-pool is 0)");
    {
        std::lock_guard lock(mu_);
        auto best = idle_.end();
        for (auto it = idle_.begin(); it != idle_.end(); ++it)
            if (it->uid == uid && it->size == size &&
                (best == idle_.end() || it->resident > best->resident))
                best = it;
        if (best != idle_.end()) {
            Idle i = *best;
            idle_.erase(best);
            idle_bytes_ -= i.resident;
            auto loan = std::make_shared<Loan>(shared_from_this(), i.fd, uid, size, i.file, true);
            live_[i.file] = loan;
            ++counters_.loans;
            ++counters_.warm_loans;
            return loan;
        }
    }
    int fd = ::memfd_create("simsink-lent-arena", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) throw std::runtime_error(std::string("memfd_create: ") + std::strerror(errno));
    struct stat st{};
    // Sealed like a client's own arena: neither side can change its size
    // (a shrink would make the other's reads SIGBUS), nor the seals.
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0 ||
        ::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0 ||
        ::fstat(fd, &st) != 0) {
        int err = errno;
        ::close(fd);
        throw std::runtime_error(std::string("cannot make a memfd of ") + std::to_string(size) +
                                 " bytes: " + std::strerror(err));
    }
    std::pair<dev_t, ino_t> file{st.st_dev, st.st_ino};
    auto loan = std::make_shared<Loan>(shared_from_this(), fd, uid, size, file, false);
    std::lock_guard lock(mu_);
    live_[file] = loan;
    ++counters_.loans;
    return loan;
}

std::shared_ptr<Loan> ShmPool::loan_of(int fd) {
    struct stat st{};
    if (::fstat(fd, &st) != 0) return nullptr;
    const std::pair<dev_t, ino_t> file{st.st_dev, st.st_ino};
    std::lock_guard lock(mu_);
    if (auto it = live_.find(file); it != live_.end()) return it->second.lock();
    for (auto it = idle_.begin(); it != idle_.end(); ++it)
        if (it->file == file) {
            spdlog::warn("shm pool: a memfd was registered after its loan ended; it is not lent again");
            ::close(it->fd);
            idle_bytes_ -= it->resident;
            idle_.erase(it);
            ++counters_.evicted;
            break;
        }
    return nullptr;
}

void ShmPool::give_back(int fd, uid_t uid, std::uint64_t size,
                        std::pair<dev_t, ino_t> file) noexcept {
    const std::uint64_t resident = resident_bytes(fd);
    std::lock_guard lock(mu_);
    live_.erase(file);
    // Memory nobody touched is not worth keeping; memory above the cap is not
    // kept either (the largest idle memfd may alone exceed it).
    if (resident == 0 || resident > cap_) {
        ::close(fd);
        return;
    }
    try {
        idle_.push_back({fd, uid, size, resident, file, steady_now()});
    } catch (...) {
        ::close(fd);
        return;
    }
    idle_bytes_ += resident;
    while (idle_bytes_ > cap_) evict_front_locked();
}

void ShmPool::evict_front_locked() noexcept {
    ::close(idle_.front().fd);
    idle_bytes_ -= idle_.front().resident;
    idle_.pop_front();
    ++counters_.evicted;
}

void ShmPool::trim() {
    const double now = steady_now();
    std::lock_guard lock(mu_);
    while (!idle_.empty() && now - idle_.front().since > idle_seconds_) evict_front_locked();
}

ShmPool::Stats ShmPool::stats() const {
    std::lock_guard lock(mu_);
    Stats s = counters_;
    s.idle = idle_.size();
    s.idle_bytes = idle_bytes_;
    for (const auto& [file, loan] : live_) s.lent += loan.expired() ? 0 : 1;
    return s;
}

}  // namespace simsink::daemon
