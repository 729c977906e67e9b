// One message on a unix SOCK_SEQPACKET socket with file descriptors attached
// (SCM_RIGHTS): how the shared-memory lane (PROTOCOL.md 1.1) hands arenas
// between a client and the daemon, in either direction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace simsink::proto {

// Sends `bytes` as one message with `fds` attached (at most 8). True when
// the whole message went; false with errno set otherwise.
bool send_with_fds(int sock, std::string_view bytes, std::span<const int> fds = {});

struct FdMessage {
    std::vector<std::uint8_t> bytes;
    std::vector<int> fds;        // received descriptors (close-on-exec); the caller closes them
    bool truncated = false;      // the message was longer than max_bytes
    bool fds_truncated = false;  // more descriptors came than there was room for
};

// Receives one message of up to `max_bytes` with up to `max_fds`
// descriptors (at most 8). Null on end of stream or error (errno set;
// EAGAIN when a receive timeout passed).
std::optional<FdMessage> receive_with_fds(int sock, std::size_t max_bytes, std::size_t max_fds);

}  // namespace simsink::proto
