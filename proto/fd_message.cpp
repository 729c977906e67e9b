#include "fd_message.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace simsink::proto {

namespace {
constexpr std::size_t kMaxFds = 8;
}

bool send_with_fds(int sock, std::string_view bytes, std::span<const int> fds) {
    if (fds.size() > kMaxFds) {
        errno = EINVAL;
        return false;
    }
    iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(kMaxFds * sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (!fds.empty()) {
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(fds.size() * sizeof(int));
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
        std::memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
    }
    return ::sendmsg(sock, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
}

std::optional<FdMessage> receive_with_fds(int sock, std::size_t max_bytes, std::size_t max_fds) {
    FdMessage m;
    m.bytes.resize(max_bytes + 1);  // one more: tells a message of exactly max_bytes from a longer one
    iovec iov{m.bytes.data(), m.bytes.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(kMaxFds * sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(std::min(max_fds, kMaxFds) * sizeof(int));
    ssize_t n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (n <= 0) {
        if (n == 0) errno = 0;
        return std::nullopt;
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            for (std::size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); ++i) {
                int fd;
                std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                m.fds.push_back(fd);
            }
    m.truncated = (msg.msg_flags & MSG_TRUNC) || static_cast<std::size_t>(n) > max_bytes;
    m.fds_truncated = (msg.msg_flags & MSG_CTRUNC) != 0;
    m.bytes.resize(std::min(static_cast<std::size_t>(n), max_bytes));
    return m;
}

}  // namespace simsink::proto
