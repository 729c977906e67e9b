// The C API: argument errors, error codes and messages, and one session
// against the fake daemon.
#include <simsink/simsink.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <string>

#include "fake_daemon.hpp"

namespace proto = simsink::proto;

namespace {

simsink_options quick_options() {
    simsink_options o;
    simsink_options_init(&o);
    o.close_timeout_seconds = 0;
    o.timeout_seconds = 0.05;
    return o;
}

struct Connected {
    simsink_client* client = nullptr;
    simsink_run* run = nullptr;
    explicit Connected(const std::string& endpoint, simsink_options o = quick_options()) {
        REQUIRE(simsink_connect(endpoint.c_str(), &o, &client) == 0);
        REQUIRE(simsink_open_run(client, "sweep", "{\"nx\": 64}", &run) == 0);
    }
    ~Connected() {
        simsink_release_run(run);
        simsink_client_close(client);
    }
};

}  // namespace

TEST_CASE("C API: NULL arguments are BAD_ARGUMENT with a message", "[c_api]") {
    simsink_client* c = nullptr;
    CHECK(simsink_connect(nullptr, nullptr, &c) == -SIMSINK_ERR_BAD_ARGUMENT);
    CHECK(simsink_last_error_code() == SIMSINK_ERR_BAD_ARGUMENT);
    CHECK_THAT(simsink_last_error_message(), Catch::Contains("endpoint is NULL"));
    CHECK(simsink_connect("ipc:///tmp/x.sock", nullptr, nullptr) == -SIMSINK_ERR_BAD_ARGUMENT);
    CHECK(simsink_flush(nullptr, 0) == -SIMSINK_ERR_BAD_ARGUMENT);
    CHECK(simsink_record(nullptr, "t", SIMSINK_FLOAT64, nullptr, 0, nullptr) ==
          -SIMSINK_ERR_BAD_ARGUMENT);
    CHECK(simsink_close_run(nullptr, nullptr) == -SIMSINK_ERR_BAD_ARGUMENT);
    CHECK(simsink_client_close(nullptr) == 0);
    CHECK(simsink_last_error_code() == 0);
    CHECK(std::string(simsink_last_error_message()).empty());
}

TEST_CASE("C API: options with a wrong struct_size are refused", "[c_api]") {
    simsink_options o;
    simsink_options_init(&o);
    CHECK(o.struct_size == sizeof o);
    CHECK(o.blocking == 1);
    CHECK(o.batch_bytes == (1u << 20));
    CHECK(o.timeout_seconds < 0);
    o.struct_size = 3;
    simsink_client* c = nullptr;
    CHECK(simsink_connect("ipc:///tmp/x.sock", &o, &c) == -SIMSINK_ERR_BAD_ARGUMENT);
    CHECK(c == nullptr);
}

TEST_CASE("C API: record argument errors", "[c_api]") {
    Connected s(simsink::test::unique_ipc_endpoint());
    double y[4] = {1, 2, 3, 4};
    std::uint64_t shape[2] = {2, 2};
    CHECK(simsink_record(s.run, "y", SIMSINK_FLOAT64, y, -1, shape) == -SIMSINK_ERR_BAD_ARGUMENT);
    CHECK(simsink_record(s.run, "y", SIMSINK_FLOAT64, y, 2, nullptr) == -SIMSINK_ERR_BAD_ARGUMENT);
    CHECK(simsink_record(s.run, "y", static_cast<simsink_dtype>(0), y, 2, shape) ==
          -SIMSINK_ERR_BAD_DTYPE);
    CHECK(simsink_record(s.run, "y", static_cast<simsink_dtype>(14), y, 2, shape) ==
          -SIMSINK_ERR_BAD_DTYPE);
    CHECK(simsink_record(s.run, "y", SIMSINK_FLOAT64, nullptr, 2, shape) ==
          -SIMSINK_ERR_BAD_ARGUMENT);
    CHECK(simsink_record(s.run, "../y", SIMSINK_FLOAT64, y, 2, shape) == -SIMSINK_ERR_BAD_NAME);
    CHECK_THAT(simsink_last_error_message(), Catch::Contains("'../y'"));
    CHECK(simsink_record(s.run, "y", SIMSINK_FLOAT64, y, 9, shape) == -SIMSINK_ERR_BAD_SHAPE);
    CHECK(simsink_record(s.run, "y", SIMSINK_FLOAT64, y, 2, shape) == 0);
    CHECK(simsink_last_error_code() == 0);
    CHECK(simsink_record(s.run, "y", SIMSINK_FLOAT32, y, 2, shape) == -SIMSINK_ERR_DTYPE_MISMATCH);
    CHECK(simsink_record(s.run, "y", SIMSINK_FLOAT64, y, 1, shape) == -SIMSINK_ERR_SHAPE_MISMATCH);
    CHECK(simsink_record_rows(s.run, "y", SIMSINK_FLOAT64, y, 0, 2, shape) == 0);
    CHECK(simsink_put(s.run, "y", SIMSINK_FLOAT64, y, 1, shape) == -SIMSINK_ERR_BAD_ARGUMENT);
    CHECK(simsink_put(s.run, "g", SIMSINK_FLOAT64, y, 1, shape) == 0);
    CHECK(simsink_put(s.run, "g", SIMSINK_FLOAT64, y, 1, shape) == -SIMSINK_ERR_ARRAY_EXISTS);
}

TEST_CASE("C API: JSON arguments are checked", "[c_api]") {
    Connected s(simsink::test::unique_ipc_endpoint());
    simsink_run* r = nullptr;
    CHECK(simsink_open_run(s.client, "sweep", "{not json", &r) == -SIMSINK_ERR_BAD_ARGUMENT);
    CHECK(r == nullptr);
    CHECK(simsink_open_run(s.client, "sweep", "[1, 2]", &r) == -SIMSINK_ERR_BAD_ARGUMENT);
    CHECK(simsink_open_run(s.client, "sweep", "{\"9x\": 1}", &r) == -SIMSINK_ERR_BAD_NAME);
    CHECK(simsink_open_run(s.client, "sweep", "{\"x\": {\"nested\": 1}}", &r) ==
          -SIMSINK_ERR_BAD_ARGUMENT);
    CHECK(simsink_open_run(s.client, "bad/campaign", nullptr, &r) == -SIMSINK_ERR_BAD_NAME);
    CHECK(simsink_set_attrs(s.run, "y", nullptr) == -SIMSINK_ERR_BAD_ARGUMENT);
    CHECK(simsink_set_attrs(s.run, nullptr, "{\"units\": \"m/s\"}") == 0);
}

TEST_CASE("C API: close with refused results still closes the run and frees it", "[c_api]") {
    Connected s(simsink::test::unique_ipc_endpoint());
    simsink_run* r = nullptr;
    REQUIRE(simsink_open_run(s.client, "sweep", nullptr, &r) == 0);
    CHECK(simsink_close_run(r, "{\"bad name\": 1}") == -SIMSINK_ERR_BAD_NAME);
}

TEST_CASE("C API: error names and version", "[c_api]") {
    CHECK(std::string(simsink_error_name(SIMSINK_ERR_DTYPE_MISMATCH)) == "DTYPE_MISMATCH");
    CHECK(std::string(simsink_error_name(-SIMSINK_ERR_TIMEOUT)) == "TIMEOUT");
    CHECK(std::string(simsink_error_name(999)) == "UNKNOWN");
    CHECK(std::string(simsink_version()) == SIMSINK_TEST_VERSION);
}

TEST_CASE("C API: a session against the fake daemon", "[c_api]") {
    simsink::test::FakeDaemon d;
    simsink_options o;
    simsink_options_init(&o);
    o.timeout_seconds = 5;
    o.name = "c-test";
    simsink_client* c = nullptr;
    REQUIRE(simsink_connect(d.endpoint().c_str(), &o, &c) == 0);
    simsink_run* r = nullptr;
    REQUIRE(simsink_open_run(c, "sweep", "{\"nx\": 64, \"method\": \"dopri5\"}", &r) == 0);
    double t = 0.5;
    double y[3] = {1, 2, 3};
    std::uint64_t n = 3;
    REQUIRE(simsink_record(r, "t", SIMSINK_FLOAT64, &t, 0, nullptr) == 0);
    REQUIRE(simsink_record_rows(r, "y", SIMSINK_FLOAT64, y, 1, 1, &n) == 0);
    unsigned char flags[2] = {0, 7};
    std::uint64_t two = 2;
    REQUIRE(simsink_record(r, "ok", SIMSINK_BOOL, flags, 1, &two) == 0);
    std::int64_t id = -1;
    REQUIRE(simsink_run_id(r, &id) == 0);
    CHECK(id == 100);
    REQUIRE(simsink_close_run(r, "{\"energy\": 1.5}") == 0);
    REQUIRE(simsink_flush(c, 5.0) == 0);
    auto msgs = d.processed();
    REQUIRE(msgs.size() >= 5);
    CHECK(d.received()[0].meta["name"] == "c-test");
    CHECK(msgs.back().meta["results"]["energy"] == 1.5);
    bool saw_bool = false;
    for (const auto& m : msgs)
        if (m.header.type == proto::MsgType::append)
            for (const auto& p : m.payloads)
                if (p.size() == 2) {
                    saw_bool = true;
                    CHECK(p[1] == 1);  // any nonzero byte is stored as 1
                }
    CHECK(saw_bool);
    CHECK(simsink_client_close(c) == 0);
}
