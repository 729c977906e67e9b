// The shared-memory lane (proto/PROTOCOL.md section 1.1). A client on the
// daemon's host creates its batch buffers in a sealed memfd (its arena) and
// passes the descriptor once over a unix socket; its APPENDs then name
// ranges of the arena instead of carrying the bytes through ZeroMQ. That
// takes two copies of every byte (into and out of the socket) and the
// daemon's receive buffers off the data path.
//
// ShmLane owns the unix socket, a thread that accepts registrations, and the
// table of mapped arenas. The arena must be sealed against shrinking, so a
// client cannot truncate it under the daemon (which would be SIGBUS); every
// range an APPEND names is checked against the arena's size by the caller.
//
// A client may also borrow its arena from the daemon instead (a lease, see
// shm_pool.hpp): then the memory is warm when a previous worker of the same
// user left it, and the lease connection stays open for as long as the
// client uses it.
//
// Threads: the lane's own thread registers and lends; find(), forget() and
// stats() are called by the I/O thread; ShmArena::release() runs on
// whichever thread drops the last reference to a staged block (the writer,
// after a commit).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "ingest/shm_pool.hpp"

namespace simsink::daemon {

// One client's arena, mapped read-only. Unmapped when the last staged block
// that points into it is committed and the client no longer uses it; a lent
// arena then returns to the pool (when its lease has ended too).
class ShmArena {
  public:
    ShmArena(std::string client_id, const std::uint8_t* base, std::uint64_t size,
             std::shared_ptr<Loan> loan = nullptr) noexcept
        : client_id_(std::move(client_id)), base_(base), size_(size), loan_(std::move(loan)) {}
    ~ShmArena();
    ShmArena(const ShmArena&) = delete;
    ShmArena& operator=(const ShmArena&) = delete;

    const std::string& client_id() const noexcept { return client_id_; }
    const std::uint8_t* base() const noexcept { return base_; }
    std::uint64_t size() const noexcept { return size_; }
    bool contains(std::uint64_t offset, std::uint64_t length) const noexcept {
        return length <= size_ && offset <= size_ - length;
    }
    // Drops the daemon's mapping of the whole pages inside a range, so that
    // committed data stops counting in the daemon's resident memory. The
    // client's pages stay; a later read maps them again.
    void release(std::uint64_t offset, std::uint64_t length) const noexcept;

  private:
    friend class ShmLane;
    std::string client_id_;
    const std::uint8_t* base_;
    std::uint64_t size_;
    std::shared_ptr<Loan> loan_;  // destroyed after the mapping (~ShmArena unmaps first)
};

class ShmLane {
  public:
    // Binds a SOCK_SEQPACKET unix socket at `path` (an existing socket file
    // there is replaced) and makes it connectable by every local user: a
    // client can only ever hand over its own memory, or borrow memory last
    // used by its own uid. Keeps at most `pool_cap` resident bytes of
    // returned arenas for `pool_idle` seconds (0: lends nothing). Throws
    // std::runtime_error naming the path.
    ShmLane(std::string path, std::string daemon_id, std::uint64_t pool_cap = 0,
            double pool_idle = 0);
    ~ShmLane();  // stops the thread, unlinks the socket
    ShmLane(const ShmLane&) = delete;
    ShmLane& operator=(const ShmLane&) = delete;

    void start();
    const std::string& path() const noexcept { return path_; }

    // The arena registered under `token` by `client_id`, or null.
    std::shared_ptr<const ShmArena> find(std::uint64_t token, std::string_view client_id) const;
    // The client left: its arena leaves the table (staged blocks keep it mapped).
    void forget(const std::string& client_id);
    // Forgets the arenas of every client id for which `connected` is false
    // (registrations by ids that never said HELLO, or whose connection is
    // gone), so that the table cannot grow without bound.
    template <class Pred>
    void forget_unless(Pred connected) {
        std::lock_guard lock(mu_);
        for (auto it = token_of_client_.begin(); it != token_of_client_.end();) {
            if (connected(it->first)) {
                ++it;
                continue;
            }
            by_token_.erase(it->second);
            it = token_of_client_.erase(it);
        }
    }
    // At most this many arenas are registered, and this many leased, at once;
    // more are refused.
    static constexpr std::size_t kMaxArenas = 4096;

    struct Stats {
        std::uint64_t arenas = 0;         // in the table now
        std::uint64_t registrations = 0;  // accepted since start (leases included)
        std::uint64_t refused = 0;        // refused since start
        std::string last_refusal;
        ShmPool::Stats pool;
        std::uint64_t pool_cap = 0;
    };
    Stats stats() const;

  private:
    struct Lease {
        int conn;
        std::shared_ptr<Loan> loan;
    };
    void loop() noexcept;
    // Answers one request on `conn`; true when it became a lease (the
    // connection stays open and is now in leases_).
    bool serve(int conn);
    void end_lease(std::size_t i);

    const std::string path_;
    const std::string daemon_id_;
    int listen_fd_ = -1;
    int stop_fd_ = -1;
    std::thread thread_;
    std::shared_ptr<ShmPool> pool_;
    std::vector<Lease> leases_;  // the lane's thread only

    mutable std::mutex mu_;
    std::map<std::uint64_t, std::shared_ptr<const ShmArena>> by_token_;
    std::map<std::string, std::uint64_t, std::less<>> token_of_client_;
    Stats stats_;
};

}  // namespace simsink::daemon
