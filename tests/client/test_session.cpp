// The client's side of the protocol, against a scripted fake daemon
// (fake_daemon.hpp): message order, sequencing, acknowledgements, credit,
// resends after loss and daemon restarts, errors reported asynchronously.
#include <simsink/client.hpp>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <map>
#include <set>
#include <span>
#include <thread>
#include <vector>

#include "fake_daemon.hpp"

using namespace std::chrono_literals;
using simsink::Client;
using simsink::Error;
using simsink::ErrorCode;
using simsink::Options;
using simsink::Run;
using simsink::test::FakeDaemon;
using simsink::test::Received;
namespace proto = simsink::proto;

namespace {

Options test_options() {
    Options o;
    o.timeout = 5s;  // a broken test fails instead of hanging
    o.close_timeout = 1s;
    o.heartbeat = 50ms;
    return o;
}

std::string type_name(const Received& r) {
    return std::string(proto::name(r.header.type));
}

// Checks what any correct client stream of messages satisfies: seqs 1..N
// without gaps or repeats, every APPEND block names a stream declared
// earlier, payload sizes match rows x row bytes. Returns the rows of each
// key, concatenated (key -> bytes).
std::map<std::string, std::vector<std::uint8_t>> check_stream(const std::vector<Received>& msgs) {
    struct Decl {
        std::string key;
        std::uint64_t row_bytes;
    };
    std::map<std::uint32_t, Decl> declared;
    std::map<std::string, std::vector<std::uint8_t>> rows;
    std::uint64_t seq = 0;
    for (const auto& m : msgs) {
        REQUIRE(m.header.number == ++seq);
        if (m.header.type == proto::MsgType::declare) {
            auto shape = m.meta["shape"].get<proto::Shape>();
            auto dt = *proto::parse_dtype(m.meta["dtype"].get<std::string>());
            declared[m.meta["stream"].get<std::uint32_t>()] = {
                m.meta["key"].get<std::string>(),
                *proto::element_count(shape) * proto::itemsize(dt)};
        }
        if (m.header.type == proto::MsgType::append) {
            REQUIRE(m.blocks.size() == m.payloads.size());
            for (std::size_t i = 0; i < m.blocks.size(); ++i) {
                REQUIRE(declared.count(m.blocks[i].stream) == 1);
                const auto& d = declared[m.blocks[i].stream];
                REQUIRE(m.payloads[i].size() == m.blocks[i].rows * d.row_bytes);
                auto& out = rows[d.key];
                out.insert(out.end(), m.payloads[i].begin(), m.payloads[i].end());
            }
        }
    }
    return rows;
}

std::vector<double> as_doubles(const std::vector<std::uint8_t>& bytes) {
    std::vector<double> v(bytes.size() / sizeof(double));
    std::memcpy(v.data(), bytes.data(), v.size() * sizeof(double));
    return v;
}

}  // namespace

TEST_CASE("batch sealing order: control messages seal staged rows first", "[session]") {
    FakeDaemon d;
    Client client(d.endpoint(), test_options());
    Run run = client.open_run("sweep", {{"nx", 64}, {"method", "dopri5"}});
    std::vector<double> y(100);
    for (int i = 0; i < 10; ++i) {
        run.record("t", 0.5 * i);
        std::fill(y.begin(), y.end(), double(i));
        run.record("y", std::span<const double>(y));
    }
    std::vector<double> x(64, 2.0);
    run.put("grid/x", x.data(), {64});
    run.set_attrs("y", {{"units", "m/s"}});
    run.close({{"energy", 1.23}});
    client.flush();

    auto msgs = d.processed();
    std::vector<std::string> types;
    for (const auto& m : msgs) types.push_back(type_name(m));
    CHECK(types == std::vector<std::string>{"OPEN_RUN", "DECLARE", "APPEND", "DECLARE", "APPEND",
                                            "DECLARE", "APPEND", "SET_ATTRS", "CLOSE_RUN"});
    auto rows = check_stream(msgs);
    auto t = as_doubles(rows["t"]);
    REQUIRE(t.size() == 10);
    for (int i = 0; i < 10; ++i) CHECK(t[i] == 0.5 * i);
    auto yy = as_doubles(rows["y"]);
    REQUIRE(yy.size() == 1000);
    CHECK(yy[999] == 9.0);
    CHECK(as_doubles(rows["grid/x"]) == x);

    CHECK(msgs[0].meta["campaign"] == "sweep");
    CHECK(msgs[0].meta["params"]["nx"] == 64);
    CHECK(msgs[0].meta["params"]["method"] == "dopri5");
    CHECK(msgs[1].meta["key"] == "t");
    CHECK(msgs[1].meta["kind"] == "stream");
    CHECK(msgs[1].meta["dtype"] == "float64");
    CHECK(msgs[1].meta["shape"] == proto::Json::array());
    CHECK(msgs[3].meta["shape"] == proto::Json::array({100}));
    CHECK(msgs[5].meta["kind"] == "array");
    CHECK(msgs[7].meta["key"] == "y");
    CHECK(msgs[7].meta["attrs"]["units"] == "m/s");
    CHECK(msgs[8].meta["status"] == "finished");
    CHECK(msgs[8].meta["results"]["energy"] == 1.23);
    CHECK(client.stats().unacked_messages == 0);
    CHECK(client.stats().acked_seq == 9);
}

TEST_CASE("header flags and credit bytes follow the protocol", "[session]") {
    FakeDaemon d;
    Client client(d.endpoint(), test_options());
    Run run = client.open_run("sweep");
    run.record("t", 1.0);
    client.flush();
    auto all = d.received();
    REQUIRE(all.size() >= 4);
    CHECK(type_name(all[0]) == "HELLO");
    CHECK(all[0].meta["client"] == client.client_id());
    CHECK(all[0].meta["pid"].is_number_integer());
    for (const auto& m : all) {
        bool has_meta =
            m.header.type != proto::MsgType::append && m.header.type != proto::MsgType::flush &&
            m.header.type != proto::MsgType::ping && m.header.type != proto::MsgType::want;
        CHECK(((m.header.flags & proto::kFlagMeta) != 0) == has_meta);
    }
    auto flush = std::find_if(all.begin(), all.end(), [](const Received& r) {
        return r.header.type == proto::MsgType::flush;
    });
    REQUIRE(flush != all.end());
    CHECK(flush->header.number == 3);  // the highest seq sent
}

TEST_CASE("attributes may precede the first record of their key", "[session]") {
    FakeDaemon d;
    Client client(d.endpoint(), test_options());
    Run run = client.open_run("sweep");
    run.set_attrs("q", {{"units", "K"}});
    run.set_attrs({{"note", "run attrs"}});
    run.record("q", 1.0f);
    client.flush();
    std::vector<std::string> types;
    for (const auto& m : d.processed()) types.push_back(type_name(m));
    CHECK(types ==
          std::vector<std::string>{"OPEN_RUN", "SET_ATTRS", "SET_ATTRS", "DECLARE", "APPEND"});
    auto msgs = d.processed();
    CHECK(msgs[1].meta["key"] == "q");
    CHECK(msgs[1].meta["attrs"]["units"] == "K");
    CHECK(msgs[2].meta.count("key") == 0);
}

TEST_CASE("run id is the one the daemon reports after the commit", "[session]") {
    FakeDaemon d;
    Client client(d.endpoint(), test_options());
    Run a = client.open_run("sweep");
    Run b = client.open_run("sweep");
    CHECK(b.id() == 101);  // asks for a commit; a's id comes in the same ACK
    CHECK(a.id() == 100);
    CHECK(a.handle() == 1);
    CHECK(b.handle() == 2);
}

TEST_CASE("an error the daemon reports for OPEN_RUN is raised by flush, naming the campaign",
          "[session]") {
    FakeDaemon d;
    d.set([](auto& k) {
        k.reject = [](const Received& r) {
            return r.header.type == proto::MsgType::open_run ? "BAD_NAME" : "";
        };
    });
    Client client(d.endpoint(), test_options());
    Run run = client.open_run("sweep");
    try {
        client.flush();
        FAIL("flush did not raise");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::bad_name);
        CHECK_THAT(e.what(), Catch::Contains("'sweep'") && Catch::Contains("OPEN_RUN") &&
                                 Catch::Contains("rejected by the fake daemon"));
    }
    client.flush();  // raised once
}

TEST_CASE("an error the daemon reports is raised by the next call on that run", "[session]") {
    FakeDaemon d;
    d.set([](auto& k) {
        k.reject = [](const Received& r) {
            return r.header.type == proto::MsgType::declare && r.meta["key"] == "t" ? "BAD_DTYPE"
                                                                                    : "";
        };
    });
    Client client(d.endpoint(), test_options());
    Run run = client.open_run("sweep");
    Run other = client.open_run("sweep");
    run.record("t", 1.0);
    bool raised = false;
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!raised && std::chrono::steady_clock::now() < deadline) {
        other.record("u", 1.0);  // never raises another run's error
        try {
            run.record("t", 2.0);
        } catch (const Error& e) {
            raised = true;
            CHECK(e.code() == ErrorCode::bad_dtype);
            CHECK_THAT(e.what(), Catch::Contains("'t'") && Catch::Contains("run 1"));
        }
        std::this_thread::sleep_for(1ms);
    }
    CHECK(raised);
    client.flush();  // already raised: not again
}

TEST_CASE("a lost message is resent after OUT_OF_ORDER, rows arrive once", "[session]") {
    FakeDaemon d;
    d.set([](auto& k) { k.drop_seq_once = 3; });
    Client client(d.endpoint(), test_options());
    Run run = client.open_run("sweep");
    for (int i = 0; i < 5; ++i) {
        run.record("t", double(i));
        run.set_attrs({{"i", i}});  // seals: one APPEND per row
    }
    client.flush();
    auto rows = check_stream(d.processed());
    CHECK(as_doubles(rows["t"]) == std::vector<double>{0, 1, 2, 3, 4});
    CHECK(client.stats().resent_messages > 0);
}

TEST_CASE("a lost last message is found by PING/PONG and resent", "[session]") {
    FakeDaemon d;
    Client client(d.endpoint(), test_options());
    Run run = client.open_run("sweep");
    client.flush();
    d.set([](auto& k) { k.drop_seq_once = 2; });
    run.close();  // seq 2, the last message: no later one reveals the gap
    client.flush();
    auto msgs = d.processed();
    REQUIRE(msgs.size() == 2);
    CHECK(type_name(msgs[1]) == "CLOSE_RUN");
}

TEST_CASE("short of credit the client sends WANT and waits for CREDIT", "[session]") {
    FakeDaemon d;
    d.set([](auto& k) {
        k.credit = 400;
        k.credit_step = 0;
    });
    Options o = test_options();
    o.batch_bytes = 256;
    Client client(d.endpoint(), o);
    Run run = client.open_run("sweep");
    std::vector<double> y(16);
    for (int i = 0; i < 200; ++i) {
        y[0] = i;
        run.record("y", std::span<const double>(y));
    }
    client.flush();
    auto rows = as_doubles(check_stream(d.processed())["y"]);
    REQUIRE(rows.size() == 200 * 16);
    CHECK(rows[199 * 16] == 199);
    CHECK(d.count(proto::MsgType::want) > 0);
    CHECK(d.count(proto::MsgType::hello) == 1);  // never past credit (no CREDIT_EXCEEDED)
}

TEST_CASE("a WANT refused for bytes counted since HELLO is retried after a new HELLO",
          "[session]") {
    FakeDaemon d;
    d.set([](auto& k) {
        k.credit = 16 * 1024;
        k.want_cap = 64 * 1024;  // a connection may count at most this much
    });
    Options o = test_options();
    o.batch_bytes = 4096;
    Client client(d.endpoint(), o);
    Run run = client.open_run("sweep");
    std::vector<double> y(100);
    for (int i = 0; i < 1000; ++i) {
        y[0] = i;
        run.record("y", std::span<const double>(y));
    }
    client.flush();
    auto rows = as_doubles(check_stream(d.processed())["y"]);
    REQUIRE(rows.size() == 100000);
    CHECK(rows[99900] == 999);
    CHECK(client.stats().welcomes > 5);
}

TEST_CASE("a message larger than the daemon grants is TOO_LARGE at flush", "[session]") {
    FakeDaemon d;
    d.set([](auto& k) {
        k.credit = 1024;
        k.want_cap = 4096;
    });
    Client client(d.endpoint(), test_options());
    Run run = client.open_run("sweep");
    std::vector<double> big(1000);
    run.record("big", std::span<const double>(big));  // 8000 bytes in one APPEND
    try {
        client.flush();
        FAIL("flush did not raise");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::too_large);
    }
}

TEST_CASE("the linger timer ships a slow recorder's rows without flush", "[session]") {
    FakeDaemon d;
    Options o = test_options();
    o.linger = 20ms;
    Client client(d.endpoint(), o);
    Run run = client.open_run("sweep");
    run.record("t", 1.0);
    run.record("t", 2.0);
    CHECK(d.wait_for([](FakeDaemon& f) { return f.count(proto::MsgType::append) == 1; }, 2s));
    CHECK(client.stats().staged_bytes == 0);
}

TEST_CASE("a full batch is sealed at batch_bytes", "[session]") {
    FakeDaemon d;
    Options o = test_options();
    o.batch_bytes = 8000;
    o.linger = 10s;
    Client client(d.endpoint(), o);
    Run run = client.open_run("sweep");
    std::vector<double> y(100);
    for (int i = 0; i < 25; ++i) run.record("y", std::span<const double>(y));
    // DECLARE sealed nothing; rows 1-10 make 8000 bytes: sealed; 11-20 too; 21-25 staged.
    CHECK(d.wait_for([](FakeDaemon& f) { return f.count(proto::MsgType::append) == 2; }, 2s));
    CHECK(client.stats().staged_bytes == 5 * 800);
}

TEST_CASE("records of more keys than the lookup cache holds reach their own streams",
          "[session]") {
    // The client remembers the last few streams it looked up (RunState::find);
    // seven keys of equal length, in an order that changes every step, miss it
    // and hit it in turn.
    FakeDaemon d;
    Client client(d.endpoint(), test_options());
    Run run = client.open_run("sweep");
    const std::vector<std::string> keys = {"k0", "k1", "k2", "k3", "k4", "k5", "k6"};
    std::map<std::string, std::vector<double>> expect;
    for (int step = 0; step < 50; ++step)
        for (std::size_t j = 0; j < keys.size(); ++j) {
            const std::string& key = keys[step % 2 ? (j * 3) % keys.size() : j];
            const double v = step * 10.0 + double(j);
            run.record(key, v);
            expect[key].push_back(v);
        }
    // Another dtype for a key of this run is refused, whether the key was
    // looked up last (k4, odd steps end with it) or long ago (k0).
    for (const char* key : {"k4", "k0"}) {
        try {
            run.record(key, 1);
            FAIL("an int32 row of float64 stream " << key << " was accepted");
        } catch (const Error& e) {
            CHECK(e.code() == ErrorCode::dtype_mismatch);
        }
    }
    // The streams are the run's own: another run may make "k0" an int32 stream.
    Run other = client.open_run("sweep");
    other.record("k0", 7);
    client.flush();
    auto rows = check_stream(d.processed());
    for (const auto& key : keys) {
        INFO(key);
        const std::size_t n = expect[key].size() * sizeof(double);
        REQUIRE(rows[key].size() >= n);
        CHECK(as_doubles({rows[key].begin(), rows[key].begin() + n}) == expect[key]);
    }
    CHECK(rows["k0"].size() == 50 * sizeof(double) + sizeof(std::int32_t));
}

TEST_CASE("record blocks at max_unacked_bytes and resumes as ACKs free room", "[session]") {
    FakeDaemon d;
    Options o = test_options();
    o.max_unacked_bytes = 16 * 1024;
    o.batch_bytes = 4096;
    Client client(d.endpoint(), o);
    Run run = client.open_run("sweep");
    std::vector<double> y(100);
    for (int i = 0; i < 1000; ++i) {
        y[0] = i;
        run.record("y", std::span<const double>(y));
        CHECK(client.stats().unacked_bytes < o.max_unacked_bytes + 8192);
    }
    client.flush();
    auto rows = as_doubles(check_stream(d.processed())["y"]);
    REQUIRE(rows.size() == 100000);
    CHECK(rows[99900] == 999);
}

TEST_CASE("after a daemon restart the client resends what was not committed", "[session]") {
    auto endpoint = simsink::test::unique_ipc_endpoint();
    auto d1 = std::make_unique<FakeDaemon>(endpoint);
    Client client(endpoint, test_options());
    Run run = client.open_run("sweep");
    run.record("t", 0.0);
    client.flush();
    std::uint64_t committed = d1->committed();
    REQUIRE(committed == 3);
    for (int i = 1; i < 5; ++i) {
        run.record("t", double(i));
        run.set_attrs({{"i", i}});
    }
    // d1 receives and stages them, then dies before committing.
    REQUIRE(d1->wait_for([](FakeDaemon& f) { return f.processed().size() == 11; }));
    d1.reset();
    FakeDaemon d2(endpoint, committed);
    client.flush();
    auto msgs = d2.processed();
    REQUIRE(!msgs.empty());
    CHECK(msgs.front().header.number == committed + 1);
    CHECK(msgs.back().header.number == 11);
    CHECK(client.stats().welcomes == 2);
    std::vector<double> t;
    for (const auto& m : msgs)
        if (m.header.type == proto::MsgType::append) {
            auto v = as_doubles(m.payloads[0]);
            t.insert(t.end(), v.begin(), v.end());
        }
    CHECK(t == std::vector<double>{1, 2, 3, 4});
}

TEST_CASE("a DISK_FULL notice turns a flush timeout into DISK_FULL", "[session]") {
    FakeDaemon d;
    d.set([](auto& k) { k.ack_on_flush = false; });
    Client client(d.endpoint(), test_options());
    Run run = client.open_run("sweep");
    REQUIRE(d.wait_for([](FakeDaemon& f) { return f.processed().size() == 1; }));
    proto::Json notice = {{"code", "DISK_FULL"}, {"message", "no space left on /data"}};
    d.send_to_client(proto::MsgType::error, 0, &notice);
    try {
        client.flush(300ms);
        FAIL("flush did not time out");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::disk_full);
        CHECK_THAT(e.what(), Catch::Contains("no space left"));
    }
    d.set([](auto& k) { k.ack_on_flush = true; });
    client.flush();  // space is back: the data is committed
}

TEST_CASE("records from several threads all arrive", "[session]") {
    FakeDaemon d;
    Client client(d.endpoint(), test_options());
    std::vector<std::thread> threads;
    for (int k = 0; k < 4; ++k)
        threads.emplace_back([&, k] {
            Run run = client.open_run("sweep", {{"k", k}});
            for (int i = 0; i < 2000; ++i) run.record("t", double(i));
            run.close();
        });
    for (auto& t : threads) t.join();
    client.flush();
    auto rows = check_stream(d.processed());
    CHECK(as_doubles(rows["t"]).size() == 8000);
}
