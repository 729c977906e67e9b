// Hostile and malformed input through a raw socket: each gets a clear ERROR
// naming what was wrong, the daemon keeps serving a well-behaved client at
// the same time, and nothing accepted is lost.
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <simsink/client.hpp>

#include "daemon_process.hpp"
#include "raw_client.hpp"

using namespace simsink;
using namespace simsink::testing;
using proto::MsgType;

TEST_CASE("malformed and hostile messages get clear errors; others keep being served",
          "[integration]") {
    DaemonProcess daemon("bad");

    // A well-behaved client records throughout.
    Client good(daemon.ingest());
    Run good_run = good.open_run("mixed", {{"who", "good"}});
    for (int i = 0; i < 100; ++i) good_run.record("x", static_cast<double>(i));

    RawClient raw(daemon.ingest());
    raw.send({{1, 2, 3}});
    raw.expect_error("BAD_FRAME", 0, "16");
    auto bad_magic = RawClient::hdr(MsgType::ping, 0);
    bad_magic[0] = 'X';
    raw.send({bad_magic});
    raw.expect_error("BAD_MAGIC", 0);
    auto v2 = RawClient::hdr(MsgType::ping, 0);
    v2[4] = 2;
    raw.send({v2});
    raw.expect_error("BAD_VERSION", 0);
    raw.send({RawClient::hdr(MsgType::append, 1), {0}});
    raw.expect_error("NEED_HELLO", 1);
    raw.send_meta(MsgType::hello, 0, {{"client", "not-hex"}});
    raw.expect_error("BAD_META", 0, "hex");

    raw.send_meta(MsgType::hello, 0,
                  {{"client", "0123456789abcdef0123456789abcdef"}, {"host", "t"}, {"pid", 1}});
    auto [wh, wm] = raw.recv_answer();
    REQUIRE(wh.type == MsgType::welcome);
    CHECK(wm["expected"] == 1);
    CHECK(wm["credit"].get<std::uint64_t>() > 0);

    raw.send_meta(MsgType::open_run, 1, {{"run", 1}, {"campaign", "../etc"}});
    raw.expect_error("BAD_NAME", 1, "../etc");
    raw.send_meta(MsgType::open_run, 2,
                  {{"run", 1}, {"campaign", "mixed"}, {"params", {{"bad name!", 1}}}});
    raw.expect_error("BAD_NAME", 2, "bad name!");
    raw.send_meta(MsgType::open_run, 3,
                  {{"run", 1}, {"campaign", "mixed"}, {"params", {{"who", "raw"}}}});
    raw.send_meta(MsgType::declare, 4,
                  {{"stream", 1},
                   {"run", 1},
                   {"key", "y"},
                   {"kind", "stream"},
                   {"dtype", "float64"},
                   {"shape", {3}}});
    raw.send_meta(MsgType::declare, 5,
                  {{"stream", 2},
                   {"run", 1},
                   {"key", "/abs"},
                   {"kind", "stream"},
                   {"dtype", "float64"},
                   {"shape", {3}}});
    raw.expect_error("BAD_NAME", 5, "/abs");
    raw.send_meta(MsgType::declare, 6,
                  {{"stream", 3},
                   {"run", 1},
                   {"key", "z"},
                   {"kind", "stream"},
                   {"dtype", "float128"},
                   {"shape", {3}}});
    raw.expect_error("BAD_DTYPE", 6, "float128");
    raw.send_meta(MsgType::declare, 7,
                  {{"stream", 4},
                   {"run", 1},
                   {"key", "z"},
                   {"kind", "stream"},
                   {"dtype", "int8"},
                   {"shape", {1, 2, 3, 4, 5, 6, 7, 8, 9}}});
    raw.expect_error("BAD_SHAPE", 7, "rank 9");
    raw.send_meta(MsgType::declare, 8,
                  {{"stream", 5},
                   {"run", 1},
                   {"key", "y"},
                   {"kind", "stream"},
                   {"dtype", "int32"},
                   {"shape", {3}}});
    raw.expect_error("DTYPE_MISMATCH", 8, "'y' of run");
    raw.send_meta(MsgType::declare, 9,
                  {{"stream", 6},
                   {"run", 1},
                   {"key", "y"},
                   {"kind", "stream"},
                   {"dtype", "float64"},
                   {"shape", {4}}});
    raw.expect_error("SHAPE_MISMATCH", 9, "'y'");

    proto::BlockEntry one{1, 2};
    auto table = proto::encode_block_table(std::span(&one, 1));
    raw.send({RawClient::hdr(MsgType::append, 10), table, std::vector<std::uint8_t>(47)});
    raw.expect_error("ROW_SIZE", 10, "47 bytes");
    std::vector<std::uint8_t> rows(48);
    for (int i = 0; i < 6; ++i) {
        double v = 10.0 + i;
        std::memcpy(rows.data() + 8 * i, &v, 8);
    }
    raw.send({RawClient::hdr(MsgType::append, 11), table, rows});  // accepted
    proto::BlockEntry ghost{99, 1};
    raw.send({RawClient::hdr(MsgType::append, 12),
              proto::encode_block_table(std::span(&ghost, 1)), std::vector<std::uint8_t>(24)});
    raw.expect_error("UNKNOWN_STREAM", 12, "99");
    auto bad_table = table;
    bad_table[0] = 2;  // says two blocks, holds one
    raw.send({RawClient::hdr(MsgType::append, 13), bad_table, rows});
    raw.expect_error("BAD_FRAME", 13, "block table");
    std::string deep(40, '[');
    deep = "{\"a\":" + deep + std::string(40, ']') + "}";
    raw.send({RawClient::hdr(MsgType::set_attrs, 14, proto::kFlagMeta), {deep.begin(), deep.end()}});
    raw.expect_error("BAD_META", 14, "deeper");
    raw.send({RawClient::hdr(MsgType::set_attrs, 15, proto::kFlagMeta), {'{', 'x'}});
    raw.expect_error("BAD_META", 15, "JSON");
    raw.send_meta(MsgType::close_run, 20, {{"run", 1}, {"status", "finished"}});
    raw.expect_error("OUT_OF_ORDER", 20);
    raw.send_meta(MsgType::close_run, 16,
                  {{"run", 1}, {"status", "finished"}, {"results", {{"ok", true}}}});
    raw.send_meta(MsgType::close_run, 11,
                  {{"run", 1}, {"status", "finished"}});  // a duplicate: dropped silently
    raw.send({RawClient::hdr(MsgType::flush, 16)});
    for (;;) {
        auto [h, m] = raw.recv();
        INFO(m.dump());
        REQUIRE(h.type != MsgType::error);
        if (h.type == MsgType::ack && h.number == 16) break;
    }

    // The good client was served throughout and its data is all there.
    for (int i = 100; i < 200; ++i) good_run.record("x", static_cast<double>(i));
    good_run.close({{"n", 200}});
    good.flush();
    auto st = admin_request(daemon.admin(), MsgType::status);
    CHECK(st["state"] == "ok");
    CHECK(st["errors"]["total"].get<int>() >= 15);
    REQUIRE(daemon.stop() == 0);

    // Check via the CLI-independent catalog: 2 runs, the raw one has exactly the 2 accepted rows.
    auto cat = daemon.data_dir() / "catalog.sqlite";
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(cat.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    auto scalar = [&](const char* sql) {
        sqlite3_stmt* s = nullptr;
        REQUIRE(sqlite3_prepare_v2(db, sql, -1, &s, nullptr) == SQLITE_OK);
        REQUIRE(sqlite3_step(s) == SQLITE_ROW);
        auto v = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        return v;
    };
    CHECK(scalar("SELECT count(*) FROM runs WHERE status='finished'") == 2);
    CHECK(scalar("SELECT rows FROM streams WHERE key='y'") == 2);
    CHECK(scalar("SELECT rows FROM streams WHERE key='x'") == 200);
    sqlite3_close(db);
}
