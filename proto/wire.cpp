#include "wire.hpp"

#include <algorithm>
#include <array>
#include <cstring>

namespace simsink::proto {

bool is_sequenced(MsgType t) noexcept {
    auto v = static_cast<std::uint8_t>(t);
    return v >= 0x10 && v <= 0x14;
}

namespace {

struct TypeName {
    MsgType type;
    std::string_view name;
};

constexpr std::array<TypeName, 19> kTypeNames{{
    {MsgType::hello, "HELLO"},
    {MsgType::ping, "PING"},
    {MsgType::flush, "FLUSH"},
    {MsgType::want, "WANT"},
    {MsgType::bye, "BYE"},
    {MsgType::open_run, "OPEN_RUN"},
    {MsgType::declare, "DECLARE"},
    {MsgType::append, "APPEND"},
    {MsgType::set_attrs, "SET_ATTRS"},
    {MsgType::close_run, "CLOSE_RUN"},
    {MsgType::status, "STATUS"},
    {MsgType::commit, "COMMIT"},
    {MsgType::compact, "COMPACT"},
    {MsgType::welcome, "WELCOME"},
    {MsgType::ack, "ACK"},
    {MsgType::credit, "CREDIT"},
    {MsgType::error, "ERROR"},
    {MsgType::pong, "PONG"},
    {MsgType::reply, "REPLY"},
}};

// Indexed by ErrorCode value.
constexpr std::array<std::string_view, 30> kErrorNames{{
    "OK",          "BAD_FRAME",      "BAD_MAGIC",      "BAD_VERSION",
    "BAD_TYPE",    "BAD_META",       "NEED_HELLO",     "OUT_OF_ORDER",
    "UNKNOWN_RUN", "UNKNOWN_STREAM", "RUN_CLOSED",     "BAD_NAME",
    "BAD_DTYPE",   "BAD_SHAPE",      "DTYPE_MISMATCH", "SHAPE_MISMATCH",
    "ROW_SIZE",    "ARRAY_EXISTS",   "TOO_LARGE",      "CREDIT_EXCEEDED",
    "DISK_FULL",   "IO_ERROR",       "SHUTTING_DOWN",  "INTERNAL",
    "TIMEOUT",     "BUSY",           "CLOSED",         "BAD_ARGUMENT",
    "DUPLICATE",   "BAD_SHM",
}};

}  // namespace

bool is_known(MsgType t) noexcept {
    return std::any_of(kTypeNames.begin(), kTypeNames.end(),
                       [t](const TypeName& n) { return n.type == t; });
}

std::string_view name(MsgType t) noexcept {
    for (const auto& n : kTypeNames)
        if (n.type == t) return n.name;
    return "UNKNOWN";
}

std::string_view name(ErrorCode c) noexcept {
    auto i = static_cast<std::size_t>(c);
    return i < kErrorNames.size() ? kErrorNames[i] : "UNKNOWN";
}

std::optional<ErrorCode> parse_error_code(std::string_view n) noexcept {
    for (std::size_t i = 0; i < kErrorNames.size(); ++i)
        if (kErrorNames[i] == n) return static_cast<ErrorCode>(i);
    return std::nullopt;
}

void encode_header(const Header& h, std::uint8_t out[kHeaderSize]) noexcept {
    std::memcpy(out, kMagic, 4);
    out[4] = kVersion;
    out[5] = static_cast<std::uint8_t>(h.type);
    put_u16(out + 6, h.flags);
    put_u64(out + 8, h.number);
}

std::vector<std::uint8_t> encode_header(const Header& h) {
    std::vector<std::uint8_t> out(kHeaderSize);
    encode_header(h, out.data());
    return out;
}

Header decode_header(std::span<const std::uint8_t> f) {
    if (f.size() != kHeaderSize)
        throw ProtocolError(ErrorCode::bad_frame, "header frame is " + std::to_string(f.size()) +
                                                      " bytes, expected " +
                                                      std::to_string(kHeaderSize));
    if (std::memcmp(f.data(), kMagic, 4) != 0)
        throw ProtocolError(ErrorCode::bad_magic, "header frame does not start with 'SSNK'");
    if (f[4] != kVersion)
        throw ProtocolError(ErrorCode::bad_version, "protocol version " + std::to_string(f[4]) +
                                                        " not supported (this is " +
                                                        std::to_string(kVersion) + ")");
    Header h;
    h.type = static_cast<MsgType>(f[5]);
    if (!is_known(h.type))
        throw ProtocolError(
            ErrorCode::bad_type, "unknown message type 0x" + [&] {
                char buf[3];
                std::snprintf(buf, sizeof buf, "%02x", f[5]);
                return std::string(buf);
            }());
    h.flags = get_u16(f.data() + 6);
    if (h.flags & ~(kFlagMeta | kFlagShm))
        throw ProtocolError(ErrorCode::bad_frame, "reserved header flag bits are set");
    if ((h.flags & kFlagShm) && h.type != MsgType::append)
        throw ProtocolError(ErrorCode::bad_frame, "the SHM flag is valid on APPEND only");
    h.number = get_u64(f.data() + 8);
    return h;
}

std::vector<std::uint8_t> encode_block_table(std::span<const BlockEntry> blocks) {
    std::vector<std::uint8_t> out(kBlockTablePrefix + blocks.size() * kBlockEntrySize, 0);
    put_u32(out.data(), static_cast<std::uint32_t>(blocks.size()));
    std::uint8_t* p = out.data() + kBlockTablePrefix;
    for (const auto& b : blocks) {
        put_u32(p, b.stream);
        put_u64(p + 8, b.rows);
        p += kBlockEntrySize;
    }
    return out;
}

std::vector<BlockEntry> decode_block_table(std::span<const std::uint8_t> f) {
    if (f.size() < kBlockTablePrefix)
        throw ProtocolError(ErrorCode::bad_frame, "block table shorter than its 8-byte prefix");
    std::uint32_t count = get_u32(f.data());
    if (count == 0 || count > kMaxBlocks)
        throw ProtocolError(ErrorCode::bad_frame, "block table count " + std::to_string(count) +
                                                      " outside 1.." + std::to_string(kMaxBlocks));
    if (get_u32(f.data() + 4) != 0)
        throw ProtocolError(ErrorCode::bad_frame, "block table reserved field is not zero");
    if (f.size() != kBlockTablePrefix + std::size_t{count} * kBlockEntrySize)
        throw ProtocolError(ErrorCode::bad_frame,
                            "block table is " + std::to_string(f.size()) + " bytes, " +
                                std::to_string(count) + " entries need " +
                                std::to_string(kBlockTablePrefix + count * kBlockEntrySize));
    std::vector<BlockEntry> blocks(count);
    const std::uint8_t* p = f.data() + kBlockTablePrefix;
    for (auto& b : blocks) {
        b.stream = get_u32(p);
        if (get_u32(p + 4) != 0)
            throw ProtocolError(ErrorCode::bad_frame, "block entry reserved field is not zero");
        b.rows = get_u64(p + 8);
        if (b.rows == 0) throw ProtocolError(ErrorCode::bad_frame, "block entry with 0 rows");
        p += kBlockEntrySize;
    }
    return blocks;
}

std::vector<std::uint8_t> encode_shm_descriptor(std::uint64_t token,
                                                std::span<const ShmRange> ranges) {
    std::vector<std::uint8_t> out(kShmDescPrefix + ranges.size() * kShmDescEntry);
    put_u64(out.data(), token);
    std::uint8_t* p = out.data() + kShmDescPrefix;
    for (const auto& r : ranges) {
        put_u64(p, r.offset);
        put_u64(p + 8, r.length);
        p += kShmDescEntry;
    }
    return out;
}

ShmDescriptor decode_shm_descriptor(std::span<const std::uint8_t> f, std::size_t blocks) {
    const std::size_t want = kShmDescPrefix + blocks * kShmDescEntry;
    if (f.size() != want)
        throw ProtocolError(ErrorCode::bad_frame, "shared-memory descriptor is " +
                                                      std::to_string(f.size()) + " bytes, " +
                                                      std::to_string(blocks) + " blocks need " +
                                                      std::to_string(want));
    ShmDescriptor d;
    d.token = get_u64(f.data());
    d.ranges.resize(blocks);
    const std::uint8_t* p = f.data() + kShmDescPrefix;
    for (std::size_t i = 0; i < blocks; ++i, p += kShmDescEntry) {
        auto& r = d.ranges[i];
        r.offset = get_u64(p);
        r.length = get_u64(p + 8);
        if (r.length == 0)
            throw ProtocolError(ErrorCode::bad_frame,
                                "shared-memory range of block " + std::to_string(i) + " is empty");
        if (r.offset + r.length < r.offset)
            throw ProtocolError(ErrorCode::bad_frame, "shared-memory range of block " +
                                                          std::to_string(i) + " overflows");
    }
    return d;
}

namespace {

bool is_key_char(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-' || c == '+';
}

std::string quoted(std::string_view s) {
    std::string out = "'";
    for (char c : s.substr(0, 64)) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            out += '?';
        else
            out += c;
    }
    if (s.size() > 64) out += "...";
    return out + "'";
}

}  // namespace

std::optional<std::string> check_key(std::string_view key) {
    if (key.empty()) return "key is empty";
    if (key.size() > kMaxKeyLength)
        return "key " + quoted(key) + " is longer than " + std::to_string(kMaxKeyLength) + " bytes";
    if (key.front() == '/') return "key " + quoted(key) + " starts with '/'";
    if (key.back() == '/') return "key " + quoted(key) + " ends with '/'";
    std::size_t start = 0;
    while (start <= key.size()) {
        auto end = key.find('/', start);
        if (end == std::string_view::npos) end = key.size();
        auto part = key.substr(start, end - start);
        if (part.empty()) return "key " + quoted(key) + " has an empty component";
        if (part == "." || part == "..")
            return "key " + quoted(key) + " has a '" + std::string(part) + "' component";
        for (char c : part)
            if (!is_key_char(c))
                return "key " + quoted(key) + " has a character outside [A-Za-z0-9_.+-/]";
        start = end + 1;
    }
    return std::nullopt;
}

std::optional<std::string> check_campaign(std::string_view n) {
    if (n.empty()) return "campaign name is empty";
    if (n.size() > kMaxNameLength)
        return "campaign name " + quoted(n) + " is longer than " + std::to_string(kMaxNameLength);
    if (n.front() == '.') return "campaign name " + quoted(n) + " starts with '.'";
    for (char c : n)
        if (!is_key_char(c))
            return "campaign name " + quoted(n) + " has a character outside [A-Za-z0-9_.+-]";
    return std::nullopt;
}

std::optional<std::string> check_field_name(std::string_view n) {
    if (n.empty()) return "name is empty";
    if (n.size() > kMaxNameLength)
        return "name " + quoted(n) + " is longer than " + std::to_string(kMaxNameLength);
    char c0 = n.front();
    if (!((c0 >= 'a' && c0 <= 'z') || (c0 >= 'A' && c0 <= 'Z') || c0 == '_'))
        return "name " + quoted(n) + " must start with a letter or '_'";
    for (char c : n)
        if (!is_key_char(c) || c == '+')
            return "name " + quoted(n) + " has a character outside [A-Za-z0-9_.-]";
    return std::nullopt;
}

}  // namespace simsink::proto
