// Pipelined commits: while the writer rewrites one commit's views, the next
// commit's segments are already being written. Several clients stream at
// once, so commits fall due back to back. Every row must come out once and
// in order, also when catalog transactions fail (an armed "fail:"
// failpoint) and the failed commit is retried with whatever was staged
// since; and when a commit fails right after its segments were renamed into
// place, which must remove them.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <regex>
#include <simsink/client.hpp>
#include <thread>
#include <vector>

#include "daemon_process.hpp"
#include "readers.hpp"

using namespace simsink;
using namespace simsink::testing;

namespace {

constexpr int kClients = 4;
constexpr int kRows = 3000;
constexpr std::size_t kWidth = 500;  // 4000-byte rows: 48 MB in all

double value(int client, int row, std::size_t k) {
    return client * 1e9 + row * 1e4 + double(k);
}

// Each client streams its rows of "y" and "i", then flushes; returns the run ids.
std::vector<std::int64_t> stream_from_clients(const DaemonProcess& daemon) {
    std::vector<std::int64_t> ids(kClients, -1);
    std::vector<std::thread> threads;
    for (int c = 0; c < kClients; ++c)
        threads.emplace_back([&, c] {
            Client client(daemon.ingest());
            Run run = client.open_run("pipe", {{"client", c}});
            std::vector<double> y(kWidth);
            for (int i = 0; i < kRows; ++i) {
                for (std::size_t k = 0; k < kWidth; ++k) y[k] = value(c, i, k);
                run.record("i", std::int64_t{i});
                run.record("y", std::span<const double>(y));
            }
            run.close();
            client.flush();
            ids[c] = run.id();
        });
    for (auto& t : threads) t.join();
    return ids;
}

// Every client's rows are in its run view, once each and in order.
void check_rows(const DaemonProcess& daemon, const std::vector<std::int64_t>& ids) {
    const auto view = daemon.data_dir() / "pipe.h5";
    for (int c = 0; c < kClients; ++c) {
        INFO("client " << c << ", run " << ids[c]);
        REQUIRE(ids[c] >= 0);
        std::vector<hsize_t> dims;
        auto raw = read_dataset(view, "runs/" + std::to_string(ids[c]) + "/i", dims);
        REQUIRE(dims == std::vector<hsize_t>{kRows});
        std::vector<std::int64_t> iv(kRows);
        std::memcpy(iv.data(), raw.data(), raw.size());
        int first_wrong = -1;
        for (int i = 0; i < kRows && first_wrong < 0; ++i)
            if (iv[i] != i) first_wrong = i;
        CHECK(first_wrong == -1);

        raw = read_dataset(view, "runs/" + std::to_string(ids[c]) + "/y", dims);
        REQUIRE(dims == std::vector<hsize_t>{kRows, kWidth});
        std::vector<double> yv(raw.size() / sizeof(double));
        std::memcpy(yv.data(), raw.data(), raw.size());
        first_wrong = -1;
        for (int i = 0; i < kRows && first_wrong < 0; ++i)
            for (std::size_t k = 0; k < kWidth; k += 61)
                if (yv[i * kWidth + k] != value(c, i, k)) first_wrong = i;
        CHECK(first_wrong == -1);
    }
}

// The catalog knows exactly the segment files on disk: a failed commit left
// none of its own (nor of the commit behind it) behind.
void check_segment_files(const DaemonProcess& daemon) {
    const auto db = daemon.data_dir() / "catalog.sqlite";
    std::int64_t files = 0;
    for (const auto& e : fs::directory_iterator(daemon.data_dir() / "pipe"))
        if (std::regex_match(e.path().filename().string(), std::regex(R"(seg-\d+\.h5)"))) ++files;
    CHECK(files == sql_int(db, "SELECT count(*) FROM segments"));
    const std::string cmd = env_or("SIMSINK_CLI", "build/client/cli/simsink") + " --admin " +
                            daemon.admin() + " verify > /dev/null 2>&1";
    CHECK(std::system(cmd.c_str()) == 0);
}

// Sets an environment variable for the daemons started in this scope.
class ScopedEnv {
  public:
    ScopedEnv(const char* name, const char* value) : name_(name) { setenv(name, value, 1); }
    ~ScopedEnv() { unsetenv(name_); }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

  private:
    const char* name_;
};

// Commits fall due by size, every 1 MiB, so with four clients streaming the
// next one is due by the time a commit's segments are on disk.
const std::vector<std::string> kFlags = {"--commit-interval", "3600", "--commit-bytes", "1M",
                                         "--write-threads",   "2",    "--buffer-cap",   "8M",
                                         "--client-window",   "1M"};

}  // namespace

TEST_CASE("commits are pipelined, and every row is stored once and in order",
          "[integration][commit]") {
    DaemonProcess daemon("pipelined", kFlags);
    auto ids = stream_from_clients(daemon);
    auto st = admin_request(daemon.admin(), proto::MsgType::status);
    INFO(st.dump());
    CHECK(st["committed"]["pipelined"].get<std::int64_t>() > 0);
    CHECK(st["committed"]["rows"].get<std::int64_t>() == 2 * kClients * kRows);
    CHECK(st["errors"]["total"].get<std::int64_t>() == 0);
    check_rows(daemon, ids);
    check_segment_files(daemon);
    REQUIRE(daemon.stop() == 0);
}

TEST_CASE("failing catalog transactions and segment renames lose nothing, pipelined or not",
          "[integration][commit][fault]") {
    std::vector<std::int64_t> ids;
    ScopedEnv failing("SIMSINK_FAILPOINTS", "catalog-commit=fail:0.4,segment-renamed=fail:0.1");
    // Failed commits retried after 50 ms rather than 1 s, so that commits
    // go on, and pipeline, while clients stream.
    auto flags = kFlags;
    flags.insert(flags.end(), {"--retry-interval", "0.05"});
    DaemonProcess daemon("pipelined-fail", flags);
    ids = stream_from_clients(daemon);
    auto st = admin_request(daemon.admin(), proto::MsgType::status);
    INFO(st.dump());
    // Failed commits were reported and retried.
    CHECK(st["errors"]["total"].get<std::int64_t>() > 0);
    CHECK(st["errors"]["last"].get<std::string>().find("failpoint ") != std::string::npos);
    CHECK(st["committed"]["rows"].get<std::int64_t>() == 2 * kClients * kRows);
    CHECK(st["state"] == "ok");
    check_rows(daemon, ids);
    check_segment_files(daemon);
    REQUIRE(daemon.stop() == 0);
}
