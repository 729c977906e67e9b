// Warm memory for the shared-memory lane (proto/PROTOCOL.md 1.1, "Lent
// arenas"). A worker process that makes its own arena touches every page of
// it for the first time, and on the VMs simsink runs on fresh pages cost
// three times as much as pages that exist (docs/performance.md). Workers come
// and go by the thousand while the daemon stays, so the daemon keeps the
// memfds of finished workers and lends them to the next ones.
//
// The rules that make reuse safe:
// - A memfd goes back into the pool only when its loan has ended (the
//   borrower closed its lease connection, which a process exit does after
//   its mappings are gone) AND no daemon mapping of it is left (every staged
//   block that points into it is committed). A Loan is shared by the lease
//   and by every daemon-side arena mapping; its destructor returns the memfd.
// - It is lent again only to a borrower of the same uid: the pages still
//   hold the previous borrower's bytes, and a process can keep a descriptor
//   or mapping past its loan. Within one uid that reveals nothing a process
//   of that uid could not read anyway (ptrace, /proc/PID/mem).
// - Idle memory is bounded: at most `cap` resident bytes, oldest returned
//   first out, and nothing idle longer than `idle_seconds`.
//
// Thread-safe: the lane's thread lends and trims, a Loan's last reference
// may drop on the writer thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

namespace simsink::daemon {

class ShmPool;

// One memfd lent to one borrower. Shared by the lease and by the daemon's
// mappings of it; the last owner gives the memfd back to the pool.
class Loan {
  public:
    Loan(std::shared_ptr<ShmPool> pool, int fd, uid_t uid, std::uint64_t size,
         std::pair<dev_t, ino_t> file, bool warm) noexcept
        : pool_(std::move(pool)), fd_(fd), uid_(uid), size_(size), file_(file), warm_(warm) {}
    ~Loan();
    Loan(const Loan&) = delete;
    Loan& operator=(const Loan&) = delete;

    int fd() const noexcept { return fd_; }
    std::uint64_t size() const noexcept { return size_; }
    bool warm() const noexcept { return warm_; }  // lent before: its pages may exist

  private:
    std::shared_ptr<ShmPool> pool_;
    int fd_;
    uid_t uid_;
    std::uint64_t size_;
    std::pair<dev_t, ino_t> file_;
    bool warm_;
};

class ShmPool : public std::enable_shared_from_this<ShmPool> {
  public:
    // `cap` resident bytes of idle memory at most (0: lend nothing); idle
    // memfds older than `idle_seconds` are closed by trim().
    static std::shared_ptr<ShmPool> create(std::uint64_t cap, double idle_seconds) {
        return std::shared_ptr<ShmPool>(new ShmPool(cap, idle_seconds));
    }
    ~ShmPool();
    ShmPool(const ShmPool&) = delete;
    ShmPool& operator=(const ShmPool&) = delete;

    bool lends() const noexcept { return cap_ > 0; }
    // A sealed memfd of exactly `size` bytes for a borrower of `uid`: the
    // idle one of that uid and size with the most resident pages, else a new
    // one. Throws std::runtime_error saying why none can be made.
    std::shared_ptr<Loan> lend(uid_t uid, std::uint64_t size);
    // The live loan of the memfd `fd` refers to, or null. A memfd of the pool
    // that is idle yet registered again (someone kept it past its loan) is
    // taken out of the pool and never lent again.
    std::shared_ptr<Loan> loan_of(int fd);
    // Closes idle memfds that have waited longer than idle_seconds.
    void trim();

    struct Stats {
        std::uint64_t lent = 0;        // loans live now
        std::uint64_t idle = 0;        // memfds waiting in the pool
        std::uint64_t idle_bytes = 0;  // their resident bytes
        std::uint64_t loans = 0;       // since start
        std::uint64_t warm_loans = 0;  // of which reused a memfd
        std::uint64_t evicted = 0;     // idle memfds closed (cap, age, kept past a loan)
    };
    Stats stats() const;
    std::uint64_t cap() const noexcept { return cap_; }

  private:
    friend class Loan;
    ShmPool(std::uint64_t cap, double idle_seconds) : cap_(cap), idle_seconds_(idle_seconds) {}
    void give_back(int fd, uid_t uid, std::uint64_t size, std::pair<dev_t, ino_t> file) noexcept;
    void evict_front_locked() noexcept;

    struct Idle {
        int fd;
        uid_t uid;
        std::uint64_t size;
        std::uint64_t resident;
        std::pair<dev_t, ino_t> file;
        double since;
    };
    const std::uint64_t cap_;
    const double idle_seconds_;
    mutable std::mutex mu_;
    std::deque<Idle> idle_;  // oldest returned first
    std::uint64_t idle_bytes_ = 0;
    std::map<std::pair<dev_t, ino_t>, std::weak_ptr<Loan>> live_;
    Stats counters_;
};

}  // namespace simsink::daemon
