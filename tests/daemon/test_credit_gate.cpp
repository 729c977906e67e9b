#include <catch2/catch.hpp>

#include "ingest/credit_gate.hpp"

using simsink::daemon::CreditGate;

namespace {
constexpr std::uint64_t MiB = 1 << 20;
}

TEST_CASE("a client's first limit is one window when memory allows") {
    CreditGate g(64 * MiB, 16 * MiB);
    CHECK(g.connect("a", 0) == 16 * MiB);
    CHECK(g.outstanding() == 16 * MiB);
}

TEST_CASE("no credit is granted past the cap: buffered plus outstanding stay within it") {
    CreditGate g(64 * MiB, 16 * MiB);
    CHECK(g.connect("a", 60 * MiB) == 0);  // 60 buffered + 16 would pass 64
    CHECK(g.outstanding() == 0);
    CHECK(g.grants(60 * MiB).empty());
    auto after_commit = g.grants(0);  // the writer freed memory
    REQUIRE(after_commit.size() == 1);
    CHECK(after_commit[0].second > 0);
    CHECK(g.outstanding() <= 64 * MiB);
}

TEST_CASE("a message past the limit is refused and not counted") {
    CreditGate g(64 * MiB, 16 * MiB);
    g.connect("a", 0);
    CHECK_FALSE(g.receive("a", 16 * MiB + 1));
    CHECK(g.outstanding() == 16 * MiB);
    CHECK(g.receive("a", 16 * MiB));
    CHECK(g.outstanding() == 0);
}

TEST_CASE("credit is topped up once less than half a window is left") {
    CreditGate g(1024 * MiB, 16 * MiB);
    g.connect("a", 0);
    REQUIRE(g.receive("a", 4 * MiB));
    CHECK(g.grants(4 * MiB, nullptr).empty());  // 12 MiB left: enough
    REQUIRE(g.receive("a", 6 * MiB));
    auto gr = g.grants(10 * MiB);
    REQUIRE(gr.size() == 1);
    CHECK(gr[0].second == 10 * MiB + 16 * MiB);
}

TEST_CASE("WANT counts from what was received: a long connection is not refused") {
    // Regression: the limit in WANT is cumulative since HELLO; after more
    // than the cap has flowed, a WANT for a small message must still work.
    CreditGate g(64 * MiB, 16 * MiB);
    g.connect("a", 0);
    std::uint64_t sent = 0;
    for (int i = 0; i < 20; ++i) {  // 320 MiB through a 64 MiB cap
        REQUIRE(g.receive("a", 16 * MiB));
        sent += 16 * MiB;
        g.grants(0);
    }
    CHECK(g.want("a", sent + 32 * MiB));  // a 32 MiB message
    auto gr = g.grants(0);
    REQUIRE(gr.size() == 1);
    CHECK(gr[0].second >= sent + 32 * MiB);
    CHECK_FALSE(g.want("a", sent + 65 * MiB));  // larger than the cap: never fits
}

TEST_CASE("disconnect returns a client's unused credit") {
    CreditGate g(64 * MiB, 16 * MiB);
    g.connect("a", 0);
    g.connect("b", 0);
    REQUIRE(g.receive("a", 1 * MiB));
    g.disconnect("a");
    CHECK(g.outstanding() == g.window());
    CHECK(g.connections() == 1);
}

TEST_CASE("the window shrinks as clients connect, never below 1 MiB") {
    CreditGate g(64 * MiB, 16 * MiB);
    for (int i = 0; i < 100; ++i) g.connect("c" + std::to_string(i), 0);
    CHECK(g.window() == 1 * MiB);
    CHECK(g.outstanding() <= 64 * MiB);
}
