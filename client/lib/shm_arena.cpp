#include "shm_arena.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "meta.hpp"
#include "wire.hpp"

namespace simsink::detail {

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

namespace {
constexpr std::uint64_t kHuge = std::uint64_t{2} << 20;
}

std::unique_ptr<ShmArena> ShmArena::create(std::uint64_t size) {
    size = std::clamp<std::uint64_t>((size + kHuge - 1) / kHuge * kHuge, kHuge,
                                     proto::kShmArenaMax);
    int fd = ::memfd_create("simsink-arena", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return nullptr;
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0 ||
        ::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
        ::close(fd);
        return nullptr;
    }
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        ::close(fd);
        return nullptr;
    }
    // A forked child must not write into the parent's unacknowledged data:
    // it does not inherit the mapping (a stray touch faults instead).
    ::madvise(p, size, MADV_DONTFORK);
    return std::unique_ptr<ShmArena>(new ShmArena(fd, static_cast<std::uint8_t*>(p), size));
}

ShmArena::~ShmArena() {
    ::munmap(base_, size_);
    ::close(fd_);
}

std::uint8_t* ShmArena::carve(std::size_t bytes) noexcept {
    const std::uint64_t align = std::min<std::uint64_t>(bytes, kHuge);
    const std::uint64_t at = (used_ + align - 1) / align * align;
    if (at > size_ || bytes > size_ - at) return nullptr;
    used_ = at + bytes;
    // Back the whole buffer now, in one call: cheaper than a fault per page
    // when the caller first writes it (older kernels: EINVAL, faults as usual).
    ::madvise(base_ + at, bytes, MADV_POPULATE_WRITE);
    return base_ + at;
}

std::optional<ShmArena::Registration> ShmArena::register_with(const std::string& socket_path,
                                                              const std::string& client_hex,
                                                              std::string& why) const {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path.empty() || socket_path.size() >= sizeof addr.sun_path) {
        why = "socket path '" + socket_path + "' is not a valid unix socket path";
        return std::nullopt;
    }
    std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
    int s = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (s < 0) {
        why = std::string("socket: ") + std::strerror(errno);
        return std::nullopt;
    }
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{s};
    timeval tv{1, 0};
    ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        why = "connect " + socket_path + ": " + std::strerror(errno);
        return std::nullopt;
    }
    auto text = proto::dump_meta({{"client", client_hex}, {"size", size_}});
    iovec iov{text.data(), text.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd_, sizeof(int));
    if (::sendmsg(s, &msg, MSG_NOSIGNAL) < 0) {
        why = std::string("sendmsg: ") + std::strerror(errno);
        return std::nullopt;
    }
    char reply[proto::kShmMessageMax];
    ssize_t n = ::recv(s, reply, sizeof reply, 0);
    if (n <= 0) {
        why = n == 0 ? "the daemon closed the registration" : std::string("recv: ") + std::strerror(errno);
        return std::nullopt;
    }
    try {
        auto j = proto::parse_meta({reinterpret_cast<const std::uint8_t*>(reply),
                                    static_cast<std::size_t>(n)});
        auto t = j.find("token");
        auto d = j.find("daemon");
        if (t != j.end() && t->is_number_unsigned() && d != j.end() && d->is_string())
            return Registration{t->get<std::uint64_t>(), d->get<std::string>()};
        auto m = j.find("message");
        why = m != j.end() && m->is_string() ? m->get<std::string>() : "refused";
    } catch (const proto::ProtocolError& e) {
        why = std::string("bad reply: ") + e.what();
    }
    return std::nullopt;
}

bool is_local_endpoint(const std::string& ep) {
    if (ep.rfind("ipc://", 0) == 0) return true;
    if (ep.rfind("tcp://", 0) != 0) return false;
    std::string host = ep.substr(6);
    host = host.substr(0, host.rfind(':'));
    return host == "localhost" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

}  // namespace simsink::detail
