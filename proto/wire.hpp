// The simsink wire format: constants and the encode/decode helpers that the
// client library and the daemon share. proto/PROTOCOL.md is the normative
// description; this header only mirrors it. Nothing here touches ZeroMQ:
// callers pass frames as byte spans.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "dtype.hpp"

namespace simsink::proto {

// ---- header frame -------------------------------------------------------

inline constexpr std::uint8_t kMagic[4] = {'S', 'S', 'N', 'K'};
inline constexpr std::uint8_t kVersion = 1;
inline constexpr std::size_t kHeaderSize = 16;

enum class MsgType : std::uint8_t {
    // client -> daemon, ingest socket, not sequenced
    hello = 0x01,
    ping = 0x02,
    flush = 0x03,
    want = 0x04,
    bye = 0x05,
    // client -> daemon, ingest socket, sequenced (number = seq)
    open_run = 0x10,
    declare = 0x11,
    append = 0x12,
    set_attrs = 0x13,
    close_run = 0x14,
    // admin socket requests (number = request id)
    status = 0x40,
    commit = 0x41,
    compact = 0x42,
    // daemon -> client
    welcome = 0x81,
    ack = 0x82,
    credit = 0x83,
    error = 0x84,
    pong = 0x85,
    reply = 0xC0,
};

inline constexpr std::uint16_t kFlagMeta = 0x0001;  // frame 1 is JSON metadata
// APPEND only: the payloads are in the client's shared-memory arena and frame
// 2 describes where (PROTOCOL.md section 1.1).
inline constexpr std::uint16_t kFlagShm = 0x0002;

struct Header {
    MsgType type{};
    std::uint16_t flags = 0;
    std::uint64_t number = 0;  // seq, request id, acked seq, credit: see PROTOCOL.md
};

bool is_sequenced(MsgType t) noexcept;
bool is_known(MsgType t) noexcept;
std::string_view name(MsgType t) noexcept;

void encode_header(const Header& h, std::uint8_t out[kHeaderSize]) noexcept;
std::vector<std::uint8_t> encode_header(const Header& h);

// ---- errors -------------------------------------------------------------

// Error codes carried in ERROR replies ("code" member of the metadata) and
// returned (negated) by the C API. Never renumber.
enum class ErrorCode : int {
    ok = 0,
    bad_frame = 1,  // wrong frame count or size, bad block table
    bad_magic = 2,
    bad_version = 3,
    bad_type = 4,      // unknown or misplaced message type
    bad_meta = 5,      // metadata JSON invalid, too big, too deep, wrong members
    need_hello = 6,    // no HELLO on this connection since the daemon started
    out_of_order = 7,  // sequence gap; metadata "expected" says where to resume
    unknown_run = 8,
    unknown_stream = 9,
    run_closed = 10,
    bad_name = 11,  // campaign, key, param or attribute name invalid
    bad_dtype = 12,
    bad_shape = 13,
    dtype_mismatch = 14,
    shape_mismatch = 15,
    row_size = 16,      // payload length != rows x row bytes
    array_exists = 17,  // second write to a write-once array
    too_large = 18,     // message, frame or request past a daemon limit
    credit_exceeded = 19,
    disk_full = 20,
    io_error = 21,
    shutting_down = 22,
    internal = 23,
    timeout = 24,       // client side: no answer in time
    busy = 25,          // client side: non-blocking call would block
    closed = 26,        // client side: object already closed
    bad_argument = 27,  // client side: invalid argument to an API call
    duplicate = 28,     // stream or run handle declared twice
    bad_shm = 29,       // shared-memory APPEND names an arena or a range the daemon does not hold
};

std::string_view name(ErrorCode c) noexcept;  // "DTYPE_MISMATCH", ...
std::optional<ErrorCode> parse_error_code(std::string_view name) noexcept;

// A protocol violation found while decoding; the receiver turns it into an
// ERROR reply (daemon) or an exception (client).
class ProtocolError : public std::runtime_error {
  public:
    ProtocolError(ErrorCode code, const std::string& what)
        : std::runtime_error(what), code_(code) {}
    ErrorCode code() const noexcept { return code_; }

  private:
    ErrorCode code_;
};

// Throws ProtocolError(bad_frame / bad_magic / bad_version / bad_type).
Header decode_header(std::span<const std::uint8_t> frame);

// ---- APPEND block table ---------------------------------------------------

inline constexpr std::size_t kMaxBlocks = 4096;
inline constexpr std::size_t kBlockTablePrefix = 8;
inline constexpr std::size_t kBlockEntrySize = 16;

struct BlockEntry {
    std::uint32_t stream = 0;  // client's stream handle
    std::uint64_t rows = 0;
};

std::vector<std::uint8_t> encode_block_table(std::span<const BlockEntry> blocks);
// Throws ProtocolError(bad_frame) on a malformed table.
std::vector<BlockEntry> decode_block_table(std::span<const std::uint8_t> frame);

// ---- shared-memory APPEND descriptor (frame 2 of an APPEND with kFlagShm) ----

inline constexpr std::size_t kShmDescPrefix = 8;   // arena token
inline constexpr std::size_t kShmDescEntry = 16;   // offset, length of one block

struct ShmRange {
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
};

struct ShmDescriptor {
    std::uint64_t token = 0;
    std::vector<ShmRange> ranges;  // one per block, in block order
};

std::vector<std::uint8_t> encode_shm_descriptor(std::uint64_t token,
                                                std::span<const ShmRange> ranges);
// Throws ProtocolError(bad_frame) unless the frame holds exactly `blocks`
// entries, each with a length >= 1 and offset + length without overflow.
ShmDescriptor decode_shm_descriptor(std::span<const std::uint8_t> frame, std::size_t blocks);

// Registration on the daemon's shared-memory socket (PROTOCOL.md 1.1): the
// request and the reply are JSON objects of at most this many bytes.
inline constexpr std::size_t kShmMessageMax = 4096;
inline constexpr std::uint64_t kShmArenaMin = 4096;
inline constexpr std::uint64_t kShmArenaMax = std::uint64_t{64} << 30;

// ---- metadata JSON limits -------------------------------------------------

inline constexpr std::size_t kMaxMetaBytes = 1 << 20;
inline constexpr int kMaxMetaDepth = 16;

// ---- names ----------------------------------------------------------------

inline constexpr std::size_t kMaxKeyLength = 255;
inline constexpr std::size_t kMaxNameLength = 128;

// A stream/array key: '/'-separated components of [A-Za-z0-9_.+-], none
// empty, "." or "..", no leading or trailing '/'. Returns an explanation of
// what is wrong, or empty if valid.
std::optional<std::string> check_key(std::string_view key);
// A campaign name: one component as above, not starting with '.'.
std::optional<std::string> check_campaign(std::string_view name);
// A client id as HELLO and the shared-memory registration carry it: 32
// lowercase hex characters.
inline bool is_client_id(std::string_view s) noexcept {
    if (s.size() != 32) return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}
// A param, result or attribute name: [A-Za-z_][A-Za-z0-9_.-]*.
std::optional<std::string> check_field_name(std::string_view name);

// ---- little-endian helpers ------------------------------------------------

inline void put_u16(std::uint8_t* p, std::uint16_t v) noexcept {
    p[0] = static_cast<std::uint8_t>(v);
    p[1] = static_cast<std::uint8_t>(v >> 8);
}
inline void put_u32(std::uint8_t* p, std::uint32_t v) noexcept {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
inline void put_u64(std::uint8_t* p, std::uint64_t v) noexcept {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
inline std::uint16_t get_u16(const std::uint8_t* p) noexcept {
    return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
inline std::uint32_t get_u32(const std::uint8_t* p) noexcept {
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}
inline std::uint64_t get_u64(const std::uint8_t* p) noexcept {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

}  // namespace simsink::proto
