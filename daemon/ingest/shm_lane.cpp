#include "ingest/shm_lane.hpp"

#include <fcntl.h>
#include <poll.h>
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

void send_json(int fd, const proto::Json& j) {
    auto text = proto::dump_meta(j);
    // A client that is gone or stuck gets nothing; its registration is
    // already in the table and is harmless (it is replaced or forgotten).
    [[maybe_unused]] auto n = ::send(fd, text.data(), text.size(), MSG_NOSIGNAL);
}

}  // namespace

// ---- ShmArena ----------------------------------------------------------------------

ShmArena::~ShmArena() {
    ::munmap(const_cast<std::uint8_t*>(base_), size_);
}

void ShmArena::populate(std::uint64_t offset, std::uint64_t length) const noexcept {
    std::uint64_t begin = offset & ~(kPage - 1);
    std::uint64_t end = std::min(size_, (offset + length + kPage - 1) & ~(kPage - 1));
    ::madvise(const_cast<std::uint8_t*>(base_) + begin, end - begin, MADV_POPULATE_READ);
}

void ShmArena::release(std::uint64_t offset, std::uint64_t length) const noexcept {
    // Whole pages only: a partial page may hold another block still staged.
    std::uint64_t begin = (offset + kPage - 1) & ~(kPage - 1);
    std::uint64_t end = (offset + length) & ~(kPage - 1);
    if (end > begin) ::madvise(const_cast<std::uint8_t*>(base_) + begin, end - begin, MADV_DONTNEED);
}

// ---- ShmLane -----------------------------------------------------------------------

ShmLane::ShmLane(std::string path, std::string daemon_id)
    : path_(std::move(path)), daemon_id_(std::move(daemon_id)) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path_.empty() || path_.size() >= sizeof addr.sun_path)
        throw std::runtime_error("shm-socket '" + path_ + "': a unix socket path must be 1-" +
                                 std::to_string(sizeof addr.sun_path - 1) + " bytes");
    std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
    listen_fd_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) throw std::system_error(errno, std::generic_category(), "socket");
    struct stat st{};
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
    return s;
}

void ShmLane::loop() noexcept {
    for (;;) {
        pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            spdlog::error("shm lane: poll: {}; shared memory is off from now", std::strerror(errno));
            return;
        }
        if (fds[1].revents) return;
        int conn = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (conn < 0) continue;  // the client went away already, or out of fds: it falls back
        try {
            serve(conn);
        } catch (const std::exception& e) {
            spdlog::error("shm lane: {}", e.what());
        }
        ::close(conn);
    }
}

// One registration: a JSON request {"client", "size"} with the arena's fd
// attached, answered with {"token", "daemon"} or {"code", "message"}.
void ShmLane::serve(int conn) {
    // A client that connects and says nothing holds up others for 1 s at most.
    timeval tv{1, 0};
    ::setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

    std::vector<std::uint8_t> buf(proto::kShmMessageMax + 1);
    alignas(cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))];
    iovec iov{buf.data(), buf.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
    if (n <= 0) return;  // timed out or hung up: nothing to answer

    std::vector<int> fds;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            for (std::size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); ++i) {
                int fd;
                std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                fds.push_back(fd);
            }
    struct Closer {
        std::vector<int>& fds;
        ~Closer() {
            for (int fd : fds) ::close(fd);
        }
    } closer{fds};

    std::string client;
    try {
        if (msg.msg_flags & MSG_TRUNC)
            throw Refused("registration message longer than " +
                          std::to_string(proto::kShmMessageMax) + " bytes");
        if (fds.size() != 1 || (msg.msg_flags & MSG_CTRUNC))
            throw Refused("registration must carry exactly one file descriptor (SCM_RIGHTS), got " +
                          std::to_string(fds.size()));
        proto::Json req;
        try {
            req = proto::parse_meta({buf.data(), static_cast<std::size_t>(n)});
        } catch (const proto::ProtocolError& e) {
            throw Refused(std::string("registration is not valid JSON: ") + e.what());
        }
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
        const int fd = fds[0];
        int seals = ::fcntl(fd, F_GET_SEALS);
        if (seals < 0)
            throw Refused("the descriptor is not a memfd with sealing (F_GET_SEALS: " +
                          std::string(std::strerror(errno)) + ")");
        if (!(seals & F_SEAL_SHRINK))
            throw Refused("the arena is not sealed against shrinking (F_SEAL_SHRINK)");
        struct stat st{};
        if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
            static_cast<std::uint64_t>(st.st_size) != size)
            throw Refused("the arena's size is " + std::to_string(st.st_size) + ", not " +
                          std::to_string(size));
        {
            std::lock_guard lock(mu_);
            if (by_token_.size() >= kMaxArenas && !token_of_client_.count(client))
                throw Refused("the daemon holds " + std::to_string(kMaxArenas) +
                              " arenas already");
        }
        void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
            throw Refused(std::string("cannot map the arena: ") + std::strerror(errno));
        auto arena =
            std::make_shared<const ShmArena>(client, static_cast<const std::uint8_t*>(p), size);
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
        spdlog::debug("shm lane: client {} registered an arena of {} bytes", client, size);
        send_json(conn, {{"token", token}, {"daemon", daemon_id_}});
    } catch (const Refused& e) {
        {
            std::lock_guard lock(mu_);
            ++stats_.refused;
            stats_.last_refusal = e.what();
        }
        spdlog::warn("shm lane: refused a registration{}: {}",
                     client.empty() ? "" : " from client " + client, e.what());
        send_json(conn, {{"code", std::string(proto::name(proto::ErrorCode::bad_shm))},
                         {"message", e.what()}});
    }
}

}  // namespace simsink::daemon
