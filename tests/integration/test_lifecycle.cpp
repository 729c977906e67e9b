// The daemon's life as a service: it tells systemd when it is ready and when
// it stops, commits and acknowledges what is buffered on SIGTERM, and marks
// the runs of a client that died as lost.
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <simsink/client.hpp>

#include "daemon_process.hpp"
#include "readers.hpp"

using namespace simsink;
using namespace simsink::testing;

namespace {

// A datagram socket standing in for systemd's notification socket.
struct NotifySocket {
    int fd = -1;
    fs::path path;
    explicit NotifySocket(const fs::path& p) : path(p) {
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, p.c_str(), sizeof a.sun_path - 1);
        REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        timeval tv{10, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    ~NotifySocket() { close(fd); }
    // Next datagram, or "" after 10 s.
    std::string next() {
        char buf[4096];
        auto n = recv(fd, buf, sizeof buf, 0);
        return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
    }
};


}  // namespace

TEST_CASE("systemd hears READY once serving and STOPPING on SIGTERM", "[integration][service]") {
    auto dir = make_temp_dir("notify");
    NotifySocket ns(dir / "notify.sock");
    setenv("NOTIFY_SOCKET", ns.path.c_str(), 1);
    DaemonProcess daemon("notify");
    unsetenv("NOTIFY_SOCKET");
    std::string all;
    for (std::string m; (m = ns.next()) != "" && all.find("READY=1") == std::string::npos;)
        all += m + "\n";
    CHECK_THAT(all, Catch::Contains("READY=1"));
    REQUIRE(daemon.stop() == 0);
    std::string after;
    for (std::string m; (m = ns.next()) != "";) {
        after += m + "\n";
        if (m.find("STOPPING=1") != std::string::npos) break;
    }
    CHECK_THAT(after, Catch::Contains("STOPPING=1"));
    fs::remove_all(dir);
}

TEST_CASE("with a systemd watchdog set, the daemon pings it", "[integration][service]") {
    auto dir = make_temp_dir("watchdog");
    NotifySocket ns(dir / "notify.sock");
    setenv("NOTIFY_SOCKET", ns.path.c_str(), 1);
    setenv("WATCHDOG_USEC", "400000", 1);  // pings due every 0.2 s
    DaemonProcess daemon("watchdog");
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    int pings = 0;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (pings < 3 && std::chrono::steady_clock::now() < until) {
        auto m = ns.next();
        if (m.find("WATCHDOG=1") != std::string::npos) ++pings;
    }
    CHECK(pings >= 3);
    REQUIRE(daemon.stop() == 0);
    fs::remove_all(dir);
}

TEST_CASE("SIGTERM commits and acknowledges what is buffered, then exits 0",
          "[integration][service]") {
    // A commit interval of an hour: nothing is durable before the SIGTERM.
    DaemonProcess daemon("sigterm", {"--commit-interval", "3600"});
    Client client(daemon.ingest());
    Run run = client.open_run("term", {{"n", 1}});
    for (int i = 0; i < 5000; ++i) run.record("x", static_cast<std::int64_t>(i));
    run.close();
    // Wait until the daemon has received it all (the client's linger timer ships it).
    for (int i = 0; i < 200; ++i) {
        auto st = admin_request(daemon.admin(), proto::MsgType::status);
        if (st["runs"]["open"] == 0 && st["received"]["rows"] == 5000) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    auto st = admin_request(daemon.admin(), proto::MsgType::status);
    REQUIRE(st["committed"]["rows"] == 0);
    REQUIRE(daemon.stop() == 0);
    // The ACK left before the daemon exited; the client's I/O thread takes
    // it in on its own time.
    for (int i = 0; i < 200 && client.stats().acked_seq < client.stats().last_seq; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    CHECK(client.stats().acked_seq == client.stats().last_seq);
    const auto db = daemon.data_dir() / "catalog.sqlite";
    CHECK(sql_int(db, "SELECT rows FROM streams WHERE key='x'") == 5000);
    CHECK(sql_int(db, "SELECT count(*) FROM runs WHERE status='finished'") == 1);
}

TEST_CASE("the runs of a client that died are marked lost after lost-timeout",
          "[integration][service]") {
    DaemonProcess daemon("lost", {"--lost-timeout", "1", "--client-timeout", "0.5"});
    const auto dir = daemon.dir();
    const std::string writer = env_or("FAULT_WRITER", "build/tests/fault/fault_writer");
    const auto log = dir / "writer.log";
    pid_t w = spawn({writer, daemon.ingest(), "lost", "0", (dir / "never").string(), log.string(),
                     "500", "5000"});
    // Wait for acknowledged rows, then kill the writer without a goodbye.
    for (int i = 0; i < 500 && (!fs::exists(log) || fs::file_size(log) == 0); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    REQUIRE(fs::file_size(log) > 0);
    kill(w, SIGKILL);
    wait_exit(w);
    const auto db = daemon.data_dir() / "catalog.sqlite";
    std::int64_t lost = 0;
    for (int i = 0; i < 100 && lost == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        lost =
            sql_int(db, "SELECT count(*) FROM runs WHERE status='lost' AND reason LIKE '%silent%'");
    }
    CHECK(lost == 1);
    auto st = admin_request(daemon.admin(), proto::MsgType::status);
    CHECK(st["clients"]["connected"] == 0);
    CHECK(st["runs"]["open"] == 0);
    REQUIRE(daemon.stop() == 0);
}
