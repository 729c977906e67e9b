#include "ingest/shm_lane.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <vector>

#include "fd_message.hpp"
#include "meta.hpp"
#include "wire.hpp"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux 5.14; older kernels answer EINVAL and we fault instead
#endif

namespace simsink::daemon {

namespace {

constexpr std::uint64_t kPage = 4096;

class Refused : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

std::uint64_t random_token() {
    std::uint64_t t = 0;
    while (t == 0)
        if (getrandom(&t, sizeof t, 0) != sizeof t) t = 0;
    return t;
}

// An answer, with the lent memfd for a lease. False when the client is gone
// or stuck: a registration is then already in the table and is harmless
// (it is replaced or forgotten); a lease is ended by the caller.
bool send_json(int conn, const proto::Json& j, int fd = -1) {
    auto text = proto::dump_meta(j);
    return proto::send_with_fds(conn, text,
                                fd >= 0 ? std::span<const int>(&fd, 1) : std::span<const int>());
}

}  // namespace

// ---- ShmArena ----------------------------------------------------------------------

ShmArena::~ShmArena() {
    ::munmap(const_cast<std::uint8_t*>(base_), size_);
}

void ShmArena::release(std::uint64_t offset, std::uint64_t length) const noexcept {
    // Whole pages only: a partial page may hold another block still staged.
    std::uint64_t begin = (offset + kPage - 1) & ~(kPage - 1);
    std::uint64_t end = (offset + length) & ~(kPage - 1);
    if (end > begin)
        ::madvise(const_cast<std::uint8_t*>(base_) + begin, end - begin, MADV_DONTNEED);
}

// ---- ShmLane -----------------------------------------------------------------------

ShmLane::ShmLane(std::string path, std::string daemon_id, std::uint64_t pool_cap, double pool_idle)
    : path_(std::move(path)),
      daemon_id_(std::move(daemon_id)),
      pool_(ShmPool::create(pool_cap, pool_idle)) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path_.empty() || path_.size() >= sizeof addr.sun_path)
        throw std::runtime_error("shm-socket '" + path_ + "': a unix socket path must be 1-" +
                                 std::to_string(sizeof addr.sun_path - 1) + " bytes");
    std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
    listen_fd_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) throw std::system_error(errno, std::generic_category(), "socket");
    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path_.c_str());
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::chmod(path_.c_str(), 0666) != 0 || ::listen(listen_fd_, 64) != 0) {
        int err = errno;
        ::close(listen_fd_);
        throw std::runtime_error("shm-socket '" + path_ + "': " + std::strerror(err));
    }
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_fd_ < 0) {
        int err = errno;
        ::close(listen_fd_);
        ::unlink(path_.c_str());
        throw std::system_error(err, std::generic_category(), "eventfd");
    }
}

ShmLane::~ShmLane() {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(stop_fd_, &one, sizeof one);
    if (thread_.joinable()) thread_.join();
    while (!leases_.empty()) end_lease(leases_.size() - 1);
    ::close(listen_fd_);
    ::close(stop_fd_);
    ::unlink(path_.c_str());
}

void ShmLane::start() {
    thread_ = std::thread([this] { loop(); });
}

std::shared_ptr<const ShmArena> ShmLane::find(std::uint64_t token,
                                              std::string_view client_id) const {
    std::lock_guard lock(mu_);
    auto it = by_token_.find(token);
    if (it == by_token_.end() || it->second->client_id() != client_id) return nullptr;
    return it->second;
}

void ShmLane::forget(const std::string& client_id) {
    std::lock_guard lock(mu_);
    auto it = token_of_client_.find(client_id);
    if (it == token_of_client_.end()) return;
    by_token_.erase(it->second);
    token_of_client_.erase(it);
}

ShmLane::Stats ShmLane::stats() const {
    std::lock_guard lock(mu_);
    Stats s = stats_;
    s.arenas = by_token_.size();
    s.pool = pool_->stats();
    s.pool_cap = pool_->cap();
    return s;
}

void ShmLane::loop() noexcept {
    pthread_setname_np(pthread_self(), "shm-lane");
    std::vector<pollfd> fds;
    for (;;) {
        fds.assign({{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}});
        for (const auto& l : leases_) fds.push_back({l.conn, POLLIN, 0});
        // Wake once a second to close memory that idled too long in the pool.
        int n = ::poll(fds.data(), fds.size(), 1000);
        if (n < 0) {
            if (errno == EINTR) continue;
            spdlog::error("shm lane: poll: {}; shared memory is off from now",
                          std::strerror(errno));
            return;
        }
        pool_->trim();
        if (fds[1].revents) return;
        // A lease ends when the borrower closes its connection (or sends
        // anything: the protocol has nothing more for it to say).
        for (std::size_t i = fds.size(); i-- > 2;)
            if (fds[i].revents) end_lease(i - 2);
        if (!(fds[0].revents & POLLIN)) continue;
        int conn = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (conn < 0) continue;  // the client went away already, or out of fds: it falls back
        bool kept = false;
        try {
            kept = serve(conn);
        } catch (const std::exception& e) {
            spdlog::error("shm lane: {}", e.what());
        }
        if (!kept) ::close(conn);
    }
}

void ShmLane::end_lease(std::size_t i) {
    Lease lease = std::move(leases_[i]);
    leases_.erase(leases_.begin() + static_cast<std::ptrdiff_t>(i));
    ::close(lease.conn);
    // The borrower is done with the memory: no token may name it any more.
    // Staged blocks keep their mappings (and the loan) until committed.
    std::lock_guard lock(mu_);
    for (auto it = by_token_.begin(); it != by_token_.end();) {
        if (it->second->loan_ != lease.loan) {
            ++it;
            continue;
        }
        auto c = token_of_client_.find(it->second->client_id());
        if (c != token_of_client_.end() && c->second == it->first) token_of_client_.erase(c);
        it = by_token_.erase(it);
    }
}

// One request. A registration is a JSON object {"client", "size"} with the
// arena's fd attached; a lease request {"client", "size", "lend": true} has
// no fd and gets one back. Either is answered with {"token", "daemon"} (and
// "size" for a lease) or {"code", "message"}.
bool ShmLane::serve(int conn) {
    // A client that connects and says nothing holds up others for 1 s at most.
    timeval tv{1, 0};
    ::setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

    // Room for 4 descriptors, so that "got 2" can be told apart from "got 1".
    auto msg = proto::receive_with_fds(conn, proto::kShmMessageMax, 4);
    if (!msg) return false;  // timed out or hung up: nothing to answer
    std::vector<int>& fds = msg->fds;
    struct Closer {
        std::vector<int>& fds;
        ~Closer() {
            for (int fd : fds) ::close(fd);
        }
    } closer{fds};

    std::string client;
    try {
        if (msg->truncated)
            throw Refused("registration message longer than " +
                          std::to_string(proto::kShmMessageMax) + " bytes");
        proto::Json req;
        try {
            req = proto::parse_meta(msg->bytes);
        } catch (const proto::ProtocolError& e) {
            throw Refused(std::string("registration is not valid JSON: ") + e.what());
        }
        bool lease = false;
        if (auto lit = req.find("lend"); lit != req.end()) {
            if (!lit->is_boolean()) throw Refused("registration 'lend' must be true or false");
            lease = lit->get<bool>();
        }
        const std::size_t want_fds = lease ? 0 : 1;
        if (fds.size() != want_fds || msg->fds_truncated)
            throw Refused(lease ? "a lease request must carry no file descriptor, got " +
                                      std::to_string(fds.size())
                                : "registration must carry exactly one file descriptor "
                                  "(SCM_RIGHTS), got " +
                                      std::to_string(fds.size()));
        auto cit = req.find("client");
        if (cit == req.end() || !cit->is_string() || !proto::is_client_id(cit->get<std::string>()))
            throw Refused("registration 'client' must be 32 lowercase hex characters");
        client = cit->get<std::string>();
        auto sit = req.find("size");
        if (sit == req.end() || !sit->is_number_unsigned())
            throw Refused("registration 'size' must be an unsigned integer");
        const std::uint64_t size = sit->get<std::uint64_t>();
        if (size < proto::kShmArenaMin || size > proto::kShmArenaMax || size % kPage != 0)
            throw Refused("arena size " + std::to_string(size) +
                          " must be a multiple of 4096 between 4096 and 64 GiB");
        {
            std::lock_guard lock(mu_);
            if (by_token_.size() >= kMaxArenas && !token_of_client_.count(client))
                throw Refused("the daemon holds " + std::to_string(kMaxArenas) + " arenas already");
        }
        std::shared_ptr<Loan> loan;
        int fd = -1;
        if (lease) {
            if (!pool_->lends()) throw Refused("this daemon lends no memory (shm-pool is 0)");
            if (leases_.size() >= kMaxArenas)
                throw Refused("the daemon has " + std::to_string(kMaxArenas) +
                              " arenas lent already");
            ucred cred{};
            socklen_t len = sizeof cred;
            if (::getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
                throw Refused(std::string("cannot tell the borrower's uid: ") +
                              std::strerror(errno));
            try {
                loan = pool_->lend(cred.uid, size);
            } catch (const std::runtime_error& e) {
                throw Refused(e.what());
            }
            fd = loan->fd();
        } else {
            fd = fds[0];
            int seals = ::fcntl(fd, F_GET_SEALS);
            if (seals < 0)
                throw Refused("the descriptor is not a memfd with sealing (F_GET_SEALS: " +
                              std::string(std::strerror(errno)) + ")");
            if (!(seals & F_SEAL_SHRINK))
                throw Refused("the arena is not sealed against shrinking (F_SEAL_SHRINK)");
            struct stat st {};
            if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
                static_cast<std::uint64_t>(st.st_size) != size)
                throw Refused("the arena's size is " + std::to_string(st.st_size) + ", not " +
                              std::to_string(size));
            // The client's arena may be memory this daemon lent it: then it
            // goes back to the pool only when this mapping is gone too.
            loan = pool_->loan_of(fd);
        }
        void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
            throw Refused(std::string("cannot map the arena: ") + std::strerror(errno));
        auto arena = std::make_shared<const ShmArena>(client, static_cast<const std::uint8_t*>(p),
                                                      size, loan);
        std::uint64_t token;
        {
            std::lock_guard lock(mu_);
            do token = random_token();
            while (by_token_.count(token));
            if (auto old = token_of_client_.find(client); old != token_of_client_.end())
                by_token_.erase(old->second);
            by_token_[token] = arena;
            token_of_client_[client] = token;
            ++stats_.registrations;
        }
        if (!lease) {
            spdlog::debug("shm lane: client {} registered an arena of {} bytes", client, size);
            send_json(conn, {{"token", token}, {"daemon", daemon_id_}});
            return false;
        }
        spdlog::debug("shm lane: lent client {} {} an arena of {} bytes", client,
                      loan->warm() ? "a warm" : "a new", size);
        leases_.push_back({conn, loan});
        if (!send_json(conn, {{"token", token}, {"daemon", daemon_id_}, {"size", size}}, fd))
            end_lease(leases_.size() - 1);  // the borrower is gone; closes conn
        return true;
    } catch (const Refused& e) {
        {
            std::lock_guard lock(mu_);
            ++stats_.refused;
            stats_.last_refusal = e.what();
        }
        // A daemon that lends nothing refuses every lease: the client then
        // registers its own arena, which is normal, not worth a warning.
        spdlog::log(pool_->lends() ? spdlog::level::warn : spdlog::level::debug,
                    "shm lane: refused a registration{}: {}",
                    client.empty() ? "" : " from client " + client, e.what());
        send_json(conn, {{"code", std::string(proto::name(proto::ErrorCode::bad_shm))},
                         {"message", e.what()}});
    }
    return false;
}

}  // namespace simsink::daemon
