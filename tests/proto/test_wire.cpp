// The shared wire codec (proto/): headers, block tables, metadata limits,
// names and dtypes, at the edges that proto/PROTOCOL.md draws.
#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "dtype.hpp"
#include "meta.hpp"
#include "wire.hpp"

using namespace simsink::proto;

namespace {

std::vector<std::uint8_t> valid_header(MsgType t = MsgType::hello, std::uint16_t flags = 0,
                                       std::uint64_t number = 0) {
    return encode_header({t, flags, number});
}

ErrorCode code_of_header(const std::vector<std::uint8_t>& frame) {
    try {
        decode_header(frame);
    } catch (const ProtocolError& e) {
        return e.code();
    }
    return ErrorCode::ok;
}

ErrorCode code_of_table(const std::vector<std::uint8_t>& frame) {
    try {
        decode_block_table(frame);
    } catch (const ProtocolError& e) {
        return e.code();
    }
    return ErrorCode::ok;
}

ErrorCode code_of_shm(const std::vector<std::uint8_t>& frame, std::size_t blocks,
                      std::string* message = nullptr) {
    try {
        decode_shm_descriptor(frame, blocks);
    } catch (const ProtocolError& e) {
        if (message) *message = e.what();
        return e.code();
    }
    return ErrorCode::ok;
}

ErrorCode code_of_meta(const std::string& text) {
    try {
        parse_meta(std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
    } catch (const ProtocolError& e) {
        return e.code();
    }
    return ErrorCode::ok;
}

// {"a":{"a":...{"a":1}...}} with `depth` objects.
std::string nested_objects(int depth) {
    std::string s;
    for (int i = 0; i < depth; ++i) s += i + 1 < depth ? "{\"a\":" : "{\"a\":1";
    return s + std::string(depth, '}');
}

}  // namespace

// ---- header -------------------------------------------------------------------

TEST_CASE("header round-trips every field, little-endian", "[wire][header]") {
    auto f = encode_header({MsgType::append, kFlagMeta, 0x0102030405060708ull});
    REQUIRE(f.size() == kHeaderSize);
    CHECK(std::vector<std::uint8_t>(f.begin(), f.begin() + 4) ==
          std::vector<std::uint8_t>{0x53, 0x53, 0x4E, 0x4B});
    CHECK(f[4] == 1);
    CHECK(f[5] == 0x12);
    CHECK(f[6] == 0x01);
    CHECK(f[7] == 0x00);
    CHECK(f[8] == 0x08);
    CHECK(f[15] == 0x01);
    auto h = decode_header(f);
    CHECK(h.type == MsgType::append);
    CHECK(h.flags == kFlagMeta);
    CHECK(h.number == 0x0102030405060708ull);
}

TEST_CASE("header of 15 bytes is BAD_FRAME", "[wire][header]") {
    auto f = valid_header();
    f.pop_back();
    CHECK(code_of_header(f) == ErrorCode::bad_frame);
}

TEST_CASE("header of 17 bytes is BAD_FRAME", "[wire][header]") {
    auto f = valid_header();
    f.push_back(0);
    CHECK(code_of_header(f) == ErrorCode::bad_frame);
}

TEST_CASE("wrong magic is BAD_MAGIC", "[wire][header]") {
    auto f = valid_header();
    f[3] = 'X';
    CHECK(code_of_header(f) == ErrorCode::bad_magic);
}

TEST_CASE("version 2 is refused with BAD_VERSION", "[wire][header]") {
    auto f = valid_header();
    f[4] = 2;
    CHECK(code_of_header(f) == ErrorCode::bad_version);
    f[4] = 0;
    CHECK(code_of_header(f) == ErrorCode::bad_version);
}

TEST_CASE("unknown type is BAD_TYPE", "[wire][header]") {
    for (std::uint8_t t : {0x00, 0x06, 0x15, 0x43, 0x80, 0x86, 0xC1, 0xFF}) {
        INFO("type " << int(t));
        auto f = valid_header();
        f[5] = t;
        CHECK(code_of_header(f) == ErrorCode::bad_type);
    }
}

TEST_CASE("every known type decodes and has a name", "[wire][header]") {
    for (auto t : {MsgType::hello, MsgType::ping, MsgType::flush, MsgType::want, MsgType::open_run,
                   MsgType::declare, MsgType::append, MsgType::set_attrs, MsgType::close_run,
                   MsgType::status, MsgType::commit, MsgType::compact, MsgType::welcome,
                   MsgType::ack, MsgType::credit, MsgType::error, MsgType::pong, MsgType::reply}) {
        CHECK(decode_header(valid_header(t)).type == t);
        CHECK(name(t) != "UNKNOWN");
    }
}

TEST_CASE("sequenced types are exactly 0x10-0x14", "[wire][header]") {
    CHECK(is_sequenced(MsgType::open_run));
    CHECK(is_sequenced(MsgType::close_run));
    CHECK_FALSE(is_sequenced(MsgType::hello));
    CHECK_FALSE(is_sequenced(MsgType::flush));
    CHECK_FALSE(is_sequenced(MsgType::ack));
}

TEST_CASE("reserved flag bits set is BAD_FRAME", "[wire][header]") {
    for (std::uint16_t flags : {0x0002, 0x0100, 0x8000, 0x8001}) {
        INFO("flags " << flags);
        CHECK(code_of_header(valid_header(MsgType::hello, flags)) == ErrorCode::bad_frame);
    }
    CHECK(code_of_header(valid_header(MsgType::hello, kFlagMeta)) == ErrorCode::ok);
}

// ---- block table ------------------------------------------------------------------

TEST_CASE("block table round-trips", "[wire][blocks]") {
    std::vector<BlockEntry> in{{1, 2}, {7, 1ull << 40}};
    auto f = encode_block_table(in);
    REQUIRE(f.size() == kBlockTablePrefix + 2 * kBlockEntrySize);
    CHECK(get_u32(f.data()) == 2);
    auto out = decode_block_table(f);
    REQUIRE(out.size() == 2);
    CHECK(out[1].stream == 7);
    CHECK(out[1].rows == 1ull << 40);
}

TEST_CASE("block table count 0 is BAD_FRAME", "[wire][blocks]") {
    std::vector<std::uint8_t> f(kBlockTablePrefix, 0);
    CHECK(code_of_table(f) == ErrorCode::bad_frame);
}

TEST_CASE("block table count over 4096 is BAD_FRAME", "[wire][blocks]") {
    std::vector<BlockEntry> in(kMaxBlocks + 1, {1, 1});
    CHECK(code_of_table(encode_block_table(in)) == ErrorCode::bad_frame);
    std::vector<BlockEntry> max(kMaxBlocks, {1, 1});
    CHECK(code_of_table(encode_block_table(max)) == ErrorCode::ok);
}

TEST_CASE("block table count mismatch with size is BAD_FRAME", "[wire][blocks]") {
    auto f = encode_block_table(std::vector<BlockEntry>{{1, 1}, {2, 1}});
    put_u32(f.data(), 3);
    CHECK(code_of_table(f) == ErrorCode::bad_frame);
    put_u32(f.data(), 1);
    CHECK(code_of_table(f) == ErrorCode::bad_frame);
    f.resize(4);
    CHECK(code_of_table(f) == ErrorCode::bad_frame);  // shorter than its prefix
}

TEST_CASE("zero-row block is BAD_FRAME", "[wire][blocks]") {
    auto f = encode_block_table(std::vector<BlockEntry>{{1, 5}, {2, 0}});
    CHECK(code_of_table(f) == ErrorCode::bad_frame);
}

TEST_CASE("block table reserved fields must be zero", "[wire][blocks]") {
    auto f = encode_block_table(std::vector<BlockEntry>{{1, 1}});
    f[4] = 1;
    CHECK(code_of_table(f) == ErrorCode::bad_frame);
    f[4] = 0;
    f[kBlockTablePrefix + 4] = 1;
    CHECK(code_of_table(f) == ErrorCode::bad_frame);
}

// ---- shared-memory descriptor (PROTOCOL.md 1.1) ------------------------------------------

TEST_CASE("SHM flag on APPEND decodes; on any other type it is BAD_FRAME", "[wire][header][shm]") {
    auto h = decode_header(valid_header(MsgType::append, kFlagShm, 9));
    CHECK(h.type == MsgType::append);
    CHECK(h.flags == kFlagShm);
    CHECK(h.number == 9);
    CHECK(valid_header(MsgType::append, kFlagShm)[6] == 0x02);
    for (auto t : {MsgType::hello, MsgType::ping, MsgType::flush, MsgType::want, MsgType::open_run,
                   MsgType::declare, MsgType::set_attrs, MsgType::close_run, MsgType::status,
                   MsgType::welcome, MsgType::ack, MsgType::error}) {
        INFO("type " << name(t));
        CHECK(code_of_header(valid_header(t, kFlagShm)) == ErrorCode::bad_frame);
        CHECK(code_of_header(valid_header(t, kFlagShm | kFlagMeta)) == ErrorCode::bad_frame);
    }
    try {
        decode_header(valid_header(MsgType::declare, kFlagShm | kFlagMeta));
        FAIL("SHM flag on DECLARE accepted");
    } catch (const ProtocolError& e) {
        CHECK_THAT(e.what(), Catch::Contains("APPEND only"));
    }
    // Bits beside META and SHM stay reserved on APPEND too.
    CHECK(code_of_header(valid_header(MsgType::append, kFlagShm | 0x0004)) == ErrorCode::bad_frame);
}

TEST_CASE("shared-memory descriptor round-trips, little-endian", "[wire][shm]") {
    std::vector<ShmRange> in{{0, 1}, {4096, 48}, {0x0102030405060708ull, 0x1000}};
    auto f = encode_shm_descriptor(0xA1B2C3D4E5F60718ull, in);
    REQUIRE(f.size() == kShmDescPrefix + 3 * kShmDescEntry);
    REQUIRE(f.size() == 8 + 3 * 16);
    CHECK(f[0] == 0x18);
    CHECK(f[7] == 0xA1);
    CHECK(get_u64(f.data() + 8 + 16) == 4096);  // offset of block 1
    CHECK(get_u64(f.data() + 16 + 16) == 48);   // length of block 1
    CHECK(f[8 + 32] == 0x08);                   // offset of block 2, low byte first
    auto d = decode_shm_descriptor(f, 3);
    CHECK(d.token == 0xA1B2C3D4E5F60718ull);
    REQUIRE(d.ranges.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
        INFO("block " << i);
        CHECK(d.ranges[i].offset == in[i].offset);
        CHECK(d.ranges[i].length == in[i].length);
    }
    // The largest range that does not overflow: offset + length == 2^64 - 1.
    std::vector<ShmRange> edge{{~0ull - 5, 5}};
    auto e = decode_shm_descriptor(encode_shm_descriptor(1, edge), 1);
    CHECK(e.ranges[0].offset == ~0ull - 5);
    CHECK(e.ranges[0].length == 5);
}

TEST_CASE("shared-memory descriptor of the wrong size is BAD_FRAME", "[wire][shm]") {
    std::vector<ShmRange> two{{0, 8}, {8, 8}};
    auto f = encode_shm_descriptor(7, two);
    std::string msg;
    CHECK(code_of_shm(f, 2) == ErrorCode::ok);
    CHECK(code_of_shm(f, 1, &msg) == ErrorCode::bad_frame);  // one entry too many
    CHECK_THAT(msg, Catch::Contains("40 bytes") && Catch::Contains("1 blocks need 24"));
    CHECK(code_of_shm(f, 3) == ErrorCode::bad_frame);  // one entry too few
    auto longer = f;
    longer.push_back(0);
    CHECK(code_of_shm(longer, 2) == ErrorCode::bad_frame);
    auto shorter = f;
    shorter.pop_back();
    CHECK(code_of_shm(shorter, 2) == ErrorCode::bad_frame);
    CHECK(code_of_shm({}, 1) == ErrorCode::bad_frame);                            // no token
    CHECK(code_of_shm(std::vector<std::uint8_t>(7), 0) == ErrorCode::bad_frame);  // short token
    CHECK(code_of_shm(std::vector<std::uint8_t>(8), 1) == ErrorCode::bad_frame);  // token alone
}

TEST_CASE("shared-memory range of length 0 is BAD_FRAME", "[wire][shm]") {
    std::vector<ShmRange> r{{0, 16}, {4096, 0}};
    std::string msg;
    CHECK(code_of_shm(encode_shm_descriptor(7, r), 2, &msg) == ErrorCode::bad_frame);
    CHECK_THAT(msg, Catch::Contains("block 1") && Catch::Contains("empty"));
}

TEST_CASE("shared-memory range whose end overflows 64 bits is BAD_FRAME", "[wire][shm]") {
    std::string msg;
    std::vector<ShmRange> r{{~0ull - 4, 5}};
    CHECK(code_of_shm(encode_shm_descriptor(7, r), 1, &msg) == ErrorCode::bad_frame);
    CHECK_THAT(msg, Catch::Contains("block 0") && Catch::Contains("overflows"));
    std::vector<ShmRange> r2{{1, 1}, {1ull << 63, 1ull << 63}};
    CHECK(code_of_shm(encode_shm_descriptor(7, r2), 2, &msg) == ErrorCode::bad_frame);
    CHECK_THAT(msg, Catch::Contains("block 1"));
}

// ---- metadata ---------------------------------------------------------------------

TEST_CASE("metadata nested 16 deep is accepted", "[wire][meta]") {
    CHECK(code_of_meta(nested_objects(16)) == ErrorCode::ok);
}

TEST_CASE("metadata nested 17 deep is refused", "[wire][meta]") {
    CHECK(code_of_meta(nested_objects(17)) == ErrorCode::bad_meta);
    CHECK(code_of_meta(std::string(100000, '[') + std::string(100000, ']')) == ErrorCode::bad_meta);
}

TEST_CASE("metadata over 1 MiB is TOO_LARGE", "[wire][meta]") {
    std::string big = "{\"a\":\"" + std::string(kMaxMetaBytes, 'x') + "\"}";
    CHECK(code_of_meta(big) == ErrorCode::too_large);
    std::string fits = "{\"a\":\"" + std::string(kMaxMetaBytes - 8, 'x') + "\"}";
    REQUIRE(fits.size() == kMaxMetaBytes);
    CHECK(code_of_meta(fits) == ErrorCode::ok);
}

TEST_CASE("metadata that is not a JSON object is BAD_META", "[wire][meta]") {
    CHECK(code_of_meta("[1,2]") == ErrorCode::bad_meta);
    CHECK(code_of_meta("42") == ErrorCode::bad_meta);
    CHECK(code_of_meta("{\"a\":") == ErrorCode::bad_meta);
    CHECK(code_of_meta("") == ErrorCode::bad_meta);
    CHECK(code_of_meta("{\"a\":\"\xff\xfe\"}") == ErrorCode::bad_meta);  // not UTF-8
}

TEST_CASE("typed member access names the member", "[wire][meta]") {
    auto j = Json::parse(R"({"run": 1, "key": "y", "shape": [64, 33], "dtype": "complex128",
                            "neg": -1, "bad_shape": [0], "deep": [1,2,3,4,5,6,7,8,9]})");
    CHECK(get_uint(j, "run") == 1);
    CHECK(get_string(j, "key") == "y");
    CHECK(get_shape(j, "shape") == Shape{64, 33});
    CHECK(get_dtype(j, "dtype") == DType::complex128);
    try {
        get_uint(j, "neg");
        FAIL("no throw");
    } catch (const ProtocolError& e) {
        CHECK(e.code() == ErrorCode::bad_meta);
        CHECK_THAT(e.what(), Catch::Contains("'neg'"));
    }
    CHECK_THROWS_AS(get_string(j, "missing"), ProtocolError);
    try {
        get_shape(j, "bad_shape");
        FAIL("no throw");
    } catch (const ProtocolError& e) {
        CHECK(e.code() == ErrorCode::bad_shape);
    }
    try {
        get_shape(j, "deep");
        FAIL("no throw");
    } catch (const ProtocolError& e) {
        CHECK(e.code() == ErrorCode::bad_shape);
    }
    try {
        get_dtype(j, "key");
        FAIL("no throw");
    } catch (const ProtocolError& e) {
        CHECK(e.code() == ErrorCode::bad_dtype);
    }
    CHECK(get_object(j, "absent").empty());
}

TEST_CASE("fields: names and value kinds", "[wire][meta]") {
    auto ok = Json::parse(
        R"({"nx": 64, "beta": 6e-10, "method": "dopri5", "adaptive": true, "c": [1, 2.5], "s": ["a"]})");
    CHECK_NOTHROW(check_fields(ok, "params"));
    auto code = [](const char* text) {
        try {
            check_fields(Json::parse(text), "params");
        } catch (const ProtocolError& e) {
            return e.code();
        }
        return ErrorCode::ok;
    };
    CHECK(code(R"({"9x": 1})") == ErrorCode::bad_name);
    CHECK(code(R"({"a b": 1})") == ErrorCode::bad_name);
    CHECK(code(R"({"a+b": 1})") == ErrorCode::bad_name);
    CHECK(code(R"({"x": {"y": 1}})") == ErrorCode::bad_meta);
    CHECK(code(R"({"x": [1, "a"]})") == ErrorCode::bad_meta);
    CHECK(code(R"({"x": [[1]]})") == ErrorCode::bad_meta);
    CHECK(code(R"({"x": null})") == ErrorCode::bad_meta);
    CHECK(code(R"([1])") == ErrorCode::bad_meta);
    Json many = {{"x", std::vector<int>(4097, 1)}};
    CHECK_THROWS_AS(check_fields(many, "params"), ProtocolError);
    Json max = {{"x", std::vector<int>(4096, 1)}};
    CHECK_NOTHROW(check_fields(max, "params"));
}

// ---- names --------------------------------------------------------------------------

TEST_CASE("valid keys pass", "[wire][names]") {
    for (const char* k :
         {"t", "state/y", "diag/energy.total", "a-b+c_d", "x/y/z/w", "..x", "a/.b"}) {
        INFO(k);
        CHECK_FALSE(check_key(k));
    }
    CHECK_FALSE(check_key(std::string(255, 'k')));
}

TEST_CASE("key with .. component is refused", "[wire][names]") {
    for (const char* k : {"..", "a/..", "../a", "a/../b", ".", "a/./b"}) {
        INFO(k);
        auto err = check_key(k);
        REQUIRE(err);
        CHECK_THAT(*err, Catch::Contains(k));
    }
}

TEST_CASE("key with leading slash is refused", "[wire][names]") {
    REQUIRE(check_key("/y"));
    CHECK_THAT(*check_key("/y"), Catch::Contains("'/y'") && Catch::Contains("starts with"));
    CHECK(check_key("y/"));
    CHECK(check_key("a//b"));
    CHECK(check_key(""));
}

TEST_CASE("key with control character is refused, and not echoed raw", "[wire][names]") {
    auto err = check_key(std::string("a\nb"));
    REQUIRE(err);
    CHECK(err->find('\n') == std::string::npos);
    CHECK(check_key(std::string("a\x7f")));
    CHECK(check_key(std::string("a\0b", 3)));
    CHECK(check_key("caf\xc3\xa9"));  // non-ASCII
    CHECK(check_key("a b"));
    CHECK(check_key(std::string(256, 'k')));
}

TEST_CASE("campaign names", "[wire][names]") {
    CHECK_FALSE(check_campaign("sweep-2024_v1.0+x"));
    CHECK(check_campaign(""));
    CHECK(check_campaign(".hidden"));
    CHECK(check_campaign("a/b"));
    CHECK(check_campaign(std::string(129, 'c')));
    CHECK_FALSE(check_campaign(std::string(128, 'c')));
}

// ---- dtypes ---------------------------------------------------------------------------

TEST_CASE("every dtype name round-trips", "[wire][dtype]") {
    const std::size_t sizes[] = {0, 1, 2, 4, 8, 1, 2, 4, 8, 4, 8, 8, 16, 1};
    for (std::uint8_t code = 1; code <= kMaxDTypeCode; ++code) {
        auto t = dtype_from_code(code);
        REQUIRE(t);
        auto n = name(*t);
        INFO(n);
        CHECK_FALSE(n.empty());
        CHECK(parse_dtype(n) == t);
        CHECK(itemsize(*t) == sizes[code]);
    }
    CHECK(name(DType::boolean) == "bool");
    CHECK(name(DType::complex64) == "complex64");
    CHECK_FALSE(dtype_from_code(0));
    CHECK_FALSE(dtype_from_code(14));
    CHECK_FALSE(parse_dtype("float"));
    CHECK_FALSE(parse_dtype(""));
}

TEST_CASE("element_count overflow is empty", "[wire][dtype]") {
    CHECK(element_count({}) == 1u);
    CHECK(element_count({64, 33}) == 2112u);
    CHECK(element_count({1ull << 31, 1ull << 31}) == 1ull << 62);
    CHECK_FALSE(element_count({1ull << 31, 1ull << 31, 2}));
    CHECK_FALSE(element_count({~0ull, ~0ull}));
    CHECK(element_count({0, ~0ull}) == 0u);
}

// ---- error codes ------------------------------------------------------------------------

TEST_CASE("every error code name round-trips", "[wire][errors]") {
    for (int c = 0; c <= static_cast<int>(ErrorCode::bad_shm); ++c) {
        auto n = name(static_cast<ErrorCode>(c));
        INFO(c);
        CHECK(n != "UNKNOWN");
        CHECK(parse_error_code(n) == static_cast<ErrorCode>(c));
    }
    CHECK(name(ErrorCode::dtype_mismatch) == "DTYPE_MISMATCH");
    CHECK_FALSE(parse_error_code("NOPE"));
}
