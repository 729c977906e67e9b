#include "shm_arena.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "fd_message.hpp"
#include "meta.hpp"
#include "wire.hpp"

namespace simsink::detail {

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux 5.14
#endif

namespace {

constexpr std::uint64_t kHuge = std::uint64_t{2} << 20;

std::uint64_t arena_size(std::uint64_t size) {
    return std::clamp<std::uint64_t>((size + kHuge - 1) / kHuge * kHuge, kHuge,
                                     proto::kShmArenaMax);
}

// Maps an arena read-write. A forked child must not write into the parent's
// unacknowledged data: it does not inherit the mapping (a stray touch faults
// instead).
std::uint8_t* map_arena(int fd, std::uint64_t size) {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return nullptr;
    ::madvise(p, size, MADV_DONTFORK);
    return static_cast<std::uint8_t*>(p);
}

// A connection to the lane with 1 s timeouts, or -1 (and `why`).
int connect_lane(const std::string& socket_path, std::string& why) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path.empty() || socket_path.size() >= sizeof addr.sun_path) {
        why = "socket path '" + socket_path + "' is not a valid unix socket path";
        return -1;
    }
    std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
    int s = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (s < 0) {
        why = std::string("socket: ") + std::strerror(errno);
        return -1;
    }
    timeval tv{1, 0};
    ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        why = "connect " + socket_path + ": " + std::strerror(errno);
        ::close(s);
        return -1;
    }
    return s;
}

// Sends `request` (with `fd` attached unless it is -1), receives the answer
// (and the descriptor it carries, into `fd_back` when not null).
std::optional<ShmArena::Registration> exchange(int s, const proto::Json& request, int fd,
                                               int* fd_back, std::uint64_t* size_back,
                                               std::string& why) {
    const auto text = proto::dump_meta(request);
    if (!proto::send_with_fds(s, text,
                              fd >= 0 ? std::span<const int>(&fd, 1) : std::span<const int>())) {
        why = std::string("sendmsg: ") + std::strerror(errno);
        return std::nullopt;
    }
    auto reply = proto::receive_with_fds(s, proto::kShmMessageMax, 1);
    if (!reply) {
        why = errno == 0 ? "the daemon closed the registration"
                         : std::string("recv: ") + std::strerror(errno);
        return std::nullopt;
    }
    int got = reply->fds.empty() ? -1 : reply->fds.front();
    for (std::size_t i = 1; i < reply->fds.size(); ++i) ::close(reply->fds[i]);
    struct Closer {
        int& fd;
        ~Closer() {
            if (fd >= 0) ::close(fd);
        }
    } closer{got};
    try {
        auto j = proto::parse_meta(reply->bytes);
        auto t = j.find("token");
        auto d = j.find("daemon");
        if (t != j.end() && t->is_number_unsigned() && d != j.end() && d->is_string()) {
            if (fd_back) {
                auto sz = j.find("size");
                if (got < 0 || sz == j.end() || !sz->is_number_unsigned()) {
                    why = "the lease answer has no descriptor or no size";
                    return std::nullopt;
                }
                *size_back = sz->get<std::uint64_t>();
                *fd_back = std::exchange(got, -1);
            }
            return ShmArena::Registration{t->get<std::uint64_t>(), d->get<std::string>()};
        }
        auto m = j.find("message");
        why = m != j.end() && m->is_string() ? m->get<std::string>() : "refused";
    } catch (const proto::ProtocolError& e) {
        why = std::string("bad reply: ") + e.what();
    }
    return std::nullopt;
}

}  // namespace

std::unique_ptr<ShmArena> ShmArena::create(std::uint64_t size) {
    size = arena_size(size);
    int fd = ::memfd_create("simsink-arena", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return nullptr;
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0 ||
        ::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
        ::close(fd);
        return nullptr;
    }
    auto* p = map_arena(fd, size);
    if (!p) {
        ::close(fd);
        return nullptr;
    }
    return std::unique_ptr<ShmArena>(new ShmArena(fd, p, size));
}

std::unique_ptr<ShmArena> ShmArena::borrow(const std::string& socket_path,
                                           const std::string& client_hex, std::uint64_t size,
                                           Registration& reg, std::string& why) {
    size = arena_size(size);
    int s = connect_lane(socket_path, why);
    if (s < 0) return nullptr;
    int fd = -1;
    std::uint64_t got_size = 0;
    auto r = exchange(s, {{"client", client_hex}, {"size", size}, {"lend", true}}, -1, &fd,
                      &got_size, why);
    std::uint8_t* p = nullptr;
    if (r) {
        struct stat st {};
        int seals = ::fcntl(fd, F_GET_SEALS);
        // Trust but check: an arena that could shrink would SIGBUS us.
        if (got_size != size || seals < 0 || !(seals & F_SEAL_SHRINK) || ::fstat(fd, &st) != 0 ||
            static_cast<std::uint64_t>(st.st_size) != size)
            why = "the lent arena is not a sealed memfd of " + std::to_string(size) + " bytes";
        else if (!(p = map_arena(fd, size)))
            why = std::string("cannot map the lent arena: ") + std::strerror(errno);
    }
    if (!p) {
        if (fd >= 0) ::close(fd);
        ::close(s);  // ends the lease, if there was one
        return nullptr;
    }
    reg = *r;
    return std::unique_ptr<ShmArena>(new ShmArena(fd, p, size, s));
}

ShmArena::~ShmArena() {
    ::munmap(base_, size_);
    ::close(fd_);
    // Only now, with our mapping gone, may the daemon lend the memory again.
    if (lease_fd_ >= 0) ::close(lease_fd_);
}

std::uint8_t* ShmArena::carve(std::size_t bytes) noexcept {
    const std::uint64_t align = std::min<std::uint64_t>(bytes, kHuge);
    const std::uint64_t at = (used_ + align - 1) / align * align;
    if (at > size_ || bytes > size_ - at) return nullptr;
    used_ = at + bytes;
    // Back the whole buffer now, in one call: cheaper than a fault per page
    // when the caller first writes it (older kernels: EINVAL, faults as usual).
    // A read populate, although we write next: the mapping is shared and
    // shmem needs no write notification, so the entries it makes are
    // writable already, and a read fault maps the pages around it that
    // exist (fault-around, 16 at a time) where a write fault maps one. A
    // lent, warm arena thus costs a sixteenth of the faults; a fresh one
    // the same as before (measured: docs/performance.md, fifth round).
    ::madvise(base_ + at, bytes, MADV_POPULATE_READ);
    return base_ + at;
}

std::optional<ShmArena::Registration> ShmArena::register_with(const std::string& socket_path,
                                                              const std::string& client_hex,
                                                              std::string& why) const {
    int s = connect_lane(socket_path, why);
    if (s < 0) return std::nullopt;
    auto r = exchange(s, {{"client", client_hex}, {"size", size_}}, fd_, nullptr, nullptr, why);
    ::close(s);
    return r;
}

bool is_local_endpoint(const std::string& ep) {
    if (ep.rfind("ipc://", 0) == 0) return true;
    if (ep.rfind("tcp://", 0) != 0) return false;
    std::string host = ep.substr(6);
    host = host.substr(0, host.rfind(':'));
    return host == "localhost" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

}  // namespace simsink::detail
