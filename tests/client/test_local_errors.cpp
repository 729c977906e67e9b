// Errors the client finds by itself, at the offending call, with no daemon
// running (the client connects lazily and never needs one for these).
#include <simsink/client.hpp>

#include <catch2/catch.hpp>
#include <cmath>
#include <complex>
#include <span>
#include <string>
#include <vector>

#include "fake_daemon.hpp"

using simsink::Client;
using simsink::Error;
using simsink::ErrorCode;
using simsink::Options;
using simsink::Run;

namespace {

Options quick_options() {
    Options o;
    o.close_timeout = std::chrono::milliseconds(0);  // nobody will acknowledge
    return o;
}

// Runs f, which must throw simsink::Error; returns it.
template <class F>
Error thrown_by(F f) {
    try {
        f();
    } catch (const Error& e) {
        return e;
    }
    FAIL("expected simsink::Error");
    return Error(ErrorCode::ok, "");
}

}  // namespace

TEST_CASE("a later record with another dtype throws DTYPE_MISMATCH at that call", "[local]") {
    Client client(simsink::test::unique_ipc_endpoint(), quick_options());
    Run run = client.open_run("sweep");
    run.record("t", 0.5);
    run.record("t", 1.0);
    auto staged = client.stats().staged_bytes;
    auto e = thrown_by([&] { run.record("t", 3); });  // int, not double
    CHECK(e.code() == ErrorCode::dtype_mismatch);
    CHECK_THAT(e.what(),
               Catch::Contains("'t'") && Catch::Contains("float64") && Catch::Contains("int32"));
    CHECK(client.stats().staged_bytes == staged);  // nothing recorded
    run.record("t", 1.5);                          // the stream is still usable
}

TEST_CASE("a later record with another row shape throws SHAPE_MISMATCH at that call", "[local]") {
    Client client(simsink::test::unique_ipc_endpoint(), quick_options());
    Run run = client.open_run("sweep");
    std::vector<double> y(100, 1.0);
    run.record("y", std::span<const double>(y));
    auto e = thrown_by([&] { run.record("y", std::span<const double>(y.data(), 99)); });
    CHECK(e.code() == ErrorCode::shape_mismatch);
    CHECK_THAT(e.what(), Catch::Contains("[100]") && Catch::Contains("[99]"));
    auto e2 = thrown_by([&] { run.record("y", y.data(), {10, 10}); });
    CHECK(e2.code() == ErrorCode::shape_mismatch);
    auto e3 = thrown_by([&] { run.record("y", 1.0); });
    CHECK(e3.code() == ErrorCode::shape_mismatch);
}

TEST_CASE("n-d complex rows and record_rows share the row-shape check", "[local]") {
    Client client(simsink::test::unique_ipc_endpoint(), quick_options());
    Run run = client.open_run("sweep");
    std::vector<std::complex<double>> q(64 * 33 * 3);
    run.record("qhat", q.data(), {64, 33});
    run.record_rows("qhat", q.data(), 3, {64, 33});
    CHECK(thrown_by([&] {
              run.record_rows("qhat", q.data(), 2, {33, 64});
          }).code() == ErrorCode::shape_mismatch);
    std::vector<std::complex<float>> qf(64 * 33);
    CHECK(thrown_by([&] {
              run.record("qhat", qf.data(), {64, 33});
          }).code() == ErrorCode::dtype_mismatch);
}

TEST_CASE("key validation errors name the key", "[local]") {
    Client client(simsink::test::unique_ipc_endpoint(), quick_options());
    Run run = client.open_run("sweep");
    for (std::string key : {"a/../b", "/lead", "trail/", "a//b", "sp ace", "", "./x"}) {
        INFO(key);
        auto e = thrown_by([&] { run.record(key, 1.0); });
        CHECK(e.code() == ErrorCode::bad_name);
        if (!key.empty()) CHECK_THAT(e.what(), Catch::Contains("'" + key + "'"));
    }
    double x = 0;
    auto e = thrown_by([&] { run.put(std::string("ctl\x01"), &x, {1}); });
    CHECK(e.code() == ErrorCode::bad_name);
    CHECK_THAT(e.what(), Catch::Contains("ctl?"));
    CHECK(thrown_by([&] { run.record(std::string(256, 'k'), 1.0); }).code() == ErrorCode::bad_name);
    run.record(std::string(255, 'k'), 1.0);
}

TEST_CASE("a key that would nest inside another key's dataset is BAD_NAME", "[local]") {
    Client client(simsink::test::unique_ipc_endpoint(), quick_options());
    Run run = client.open_run("sweep");
    run.record("state/y", 1.0);
    auto e = thrown_by([&] { run.record("state/y/z", 1.0); });
    CHECK(e.code() == ErrorCode::bad_name);
    CHECK_THAT(e.what(), Catch::Contains("'state/y/z'") && Catch::Contains("'state/y'"));
    CHECK(thrown_by([&] { run.record("state", 1.0); }).code() == ErrorCode::bad_name);
    run.record("state/yy", 1.0);  // a sibling, not a child
}

TEST_CASE("bad campaign and field names are BAD_NAME, non-finite values BAD_ARGUMENT", "[local]") {
    Client client(simsink::test::unique_ipc_endpoint(), quick_options());
    CHECK(thrown_by([&] { client.open_run(".hidden"); }).code() == ErrorCode::bad_name);
    CHECK(thrown_by([&] { client.open_run("a/b"); }).code() == ErrorCode::bad_name);
    auto e = thrown_by([&] { client.open_run("sweep", {{"9lives", 1}}); });
    CHECK(e.code() == ErrorCode::bad_name);
    CHECK_THAT(e.what(), Catch::Contains("params") && Catch::Contains("9lives"));
    auto nan = thrown_by([&] { client.open_run("sweep", {{"beta", std::nan("")}}); });
    CHECK(nan.code() == ErrorCode::bad_argument);
    CHECK_THAT(nan.what(), Catch::Contains("beta"));
    Run run = client.open_run("sweep");
    CHECK(thrown_by([&] { run.close({{"e", HUGE_VAL}}); }).code() == ErrorCode::bad_argument);
    CHECK(run.is_open());  // refused results do not close the run
    CHECK(thrown_by([&] {
              run.set_attrs("y", {{"bad name", "m/s"}});
          }).code() == ErrorCode::bad_name);
}

TEST_CASE("arrays are write-once and are not streams", "[local]") {
    Client client(simsink::test::unique_ipc_endpoint(), quick_options());
    Run run = client.open_run("sweep");
    std::vector<double> x(64, 0.0);
    run.put("grid/x", x.data(), {64});
    CHECK(thrown_by([&] { run.put("grid/x", x.data(), {64}); }).code() == ErrorCode::array_exists);
    CHECK(thrown_by([&] { run.record("grid/x", 1.0); }).code() == ErrorCode::array_exists);
    run.record("t", 1.0);
    CHECK(thrown_by([&] { run.put("t", x.data(), {64}); }).code() == ErrorCode::bad_argument);
}

TEST_CASE("bad shapes are BAD_SHAPE", "[local]") {
    Client client(simsink::test::unique_ipc_endpoint(), quick_options());
    Run run = client.open_run("sweep");
    double d[2] = {};
    CHECK(thrown_by([&] {
              run.record("a", d, {1, 1, 1, 1, 1, 1, 1, 1, 1});
          }).code() == ErrorCode::bad_shape);
    CHECK(thrown_by([&] { run.record("b", d, {2, 0}); }).code() == ErrorCode::bad_shape);
    CHECK(thrown_by([&] {
              run.put("c", d, {1u << 31, 1u << 31, 1u << 31});
          }).code() == ErrorCode::bad_shape);  // 2^93 elements overflow
    CHECK(thrown_by([&] {
              run.put("c", d, {1u << 20, 1u << 20});
          }).code() == ErrorCode::too_large);  // past the daemon's frame limit
    CHECK(thrown_by([&] { run.record_rows("c", d, 1u << 30, {2}); }).code() ==
          ErrorCode::too_large);
    run.put("c", d, {2});                           // the refused calls declared nothing
    run.record("r8", d, {1, 1, 1, 1, 1, 1, 1, 2});  // rank 8 is fine
}

TEST_CASE("a closed or empty run throws CLOSED", "[local]") {
    Client client(simsink::test::unique_ipc_endpoint(), quick_options());
    Run run = client.open_run("sweep");
    run.close();
    CHECK_FALSE(run.is_open());
    CHECK(thrown_by([&] { run.record("t", 1.0); }).code() == ErrorCode::closed);
    CHECK(thrown_by([&] { run.close(); }).code() == ErrorCode::closed);
    CHECK(thrown_by([&] { run.fail("again"); }).code() == ErrorCode::closed);

    Run a = client.open_run("sweep");
    Run b = std::move(a);
    CHECK(thrown_by([&] { a.record("t", 1.0); }).code() == ErrorCode::closed);
    b.record("t", 1.0);
    Run empty;
    CHECK_FALSE(empty.is_open());
}

TEST_CASE("a run whose Client is closed throws CLOSED", "[local]") {
    Run run;
    {
        Client client(simsink::test::unique_ipc_endpoint(), quick_options());
        run = client.open_run("sweep");
    }
    CHECK(thrown_by([&] { run.record("t", 1.0); }).code() == ErrorCode::closed);
}

TEST_CASE("flush without a daemon times out with TIMEOUT", "[local]") {
    Options o = quick_options();
    o.timeout = std::chrono::milliseconds(50);
    Client client(simsink::test::unique_ipc_endpoint(), o);
    Run run = client.open_run("sweep");
    run.record("t", 1.0);
    auto e = thrown_by([&] { client.flush(std::chrono::milliseconds(50)); });
    CHECK(e.code() == ErrorCode::timeout);
    CHECK_THAT(e.what(), Catch::Contains("no WELCOME"));
    CHECK(thrown_by([&] { run.id(); }).code() == ErrorCode::timeout);
}

TEST_CASE("non-blocking record throws BUSY when max_unacked_bytes is reached", "[local]") {
    Options o = quick_options();
    o.blocking = false;
    o.max_unacked_bytes = 4096;
    o.batch_bytes = 1024;
    Client client(simsink::test::unique_ipc_endpoint(), o);
    Run run = client.open_run("sweep");
    std::vector<double> y(100, 0.0);
    int recorded = 0;
    auto e = thrown_by([&] {
        for (;; ++recorded) run.record("y", std::span<const double>(y));
    });
    CHECK(e.code() == ErrorCode::busy);
    CHECK(recorded >= 4);
    CHECK(client.stats().unacked_bytes >= 4096);
}

TEST_CASE("a malformed endpoint is BAD_ARGUMENT at construction", "[local]") {
    CHECK(thrown_by([&] { Client c("nonsense://x"); }).code() == ErrorCode::bad_argument);
    CHECK(thrown_by([&] { Client c(""); }).code() == ErrorCode::bad_argument);
}
