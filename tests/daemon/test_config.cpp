#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "config.hpp"

using namespace simsink::daemon;

namespace {

std::optional<Config> parse(std::vector<std::string> args) {
    args.insert(args.begin(), "simsinkd");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    return parse_command_line(static_cast<int>(argv.size()), argv.data());
}

}  // namespace

TEST_CASE("defaults: local tcp listen, admin socket in the data directory") {
    auto c = parse({"--data-dir", "/tmp/x"});
    REQUIRE(c);
    CHECK(c->listen == std::vector<std::string>{"tcp://127.0.0.1:5555"});
    CHECK(c->admin == "ipc:///tmp/x/admin.sock");
    CHECK(c->commit_interval == 1.0);
    CHECK(c->retry_interval == 1.0);
    CHECK(c->shm_pool == 1ull << 30);
    CHECK(c->shm_pool_idle == 300.0);
    CHECK(c->drop_cache);
    CHECK_FALSE(c->direct_io);
    CHECK(c->write_threads >= 1);
    CHECK(c->write_threads <= 4);
    auto d = parse({"--data-dir", "d", "--shm-pool", "0", "--shm-pool-idle", "5", "--drop-cache",
                    "false", "--write-threads", "3", "--write-split-bytes", "1M", "--direct-io",
                    "true"});
    REQUIRE(d);
    CHECK(d->shm_pool == 0);
    CHECK(d->shm_pool_idle == 5.0);
    CHECK_FALSE(d->drop_cache);
    CHECK(d->write_threads == 3);
    CHECK(d->direct_io);
    CHECK(d->write_split_bytes == 1u << 20);
    CHECK(c->write_split_bytes == 32u << 20);
}

TEST_CASE("sizes take K, M and G suffixes") {
    auto c = parse(
        {"--data-dir", "d", "--buffer-cap", "2G", "--commit-bytes=512K", "--client-window", "3M"});
    CHECK(c->buffer_cap == 2ull << 30);
    CHECK(c->commit_bytes == 512ull << 10);
    CHECK(c->client_window == 3ull << 20);
}

TEST_CASE("a missing data directory, an unknown flag and a bad value are named") {
    CHECK_THROWS_WITH(parse({}), Catch::Contains("--data-dir"));
    CHECK_THROWS_WITH(parse({"--data-dir", "d", "--bogus", "1"}), Catch::Contains("bogus"));
    CHECK_THROWS_WITH(parse({"--data-dir", "d", "--buffer-cap", "12X"}),
                      Catch::Contains("buffer-cap"));
    CHECK_THROWS_WITH(parse({"--data-dir", "d", "--commit-interval", "-1"}),
                      Catch::Contains("commit-interval"));
    CHECK_THROWS_WITH(parse({"--data-dir", "d", "--retry-interval", "0"}),
                      Catch::Contains("retry-interval"));
    CHECK(parse({"--data-dir", "d", "--retry-interval", "0.05"})->retry_interval == 0.05);
    CHECK_THROWS_WITH(parse({"--data-dir", "d", "--fsync", "maybe"}), Catch::Contains("fsync"));
    CHECK_THROWS_WITH(parse({"--data-dir", "d", "--drop-cache", "maybe"}),
                      Catch::Contains("drop-cache"));
    CHECK_THROWS_WITH(parse({"--data-dir", "d", "--direct-io", "sometimes"}),
                      Catch::Contains("direct-io"));
    CHECK_THROWS_WITH(parse({"--data-dir", "d", "--shm-pool", "lots"}),
                      Catch::Contains("shm-pool"));
    CHECK_THROWS_WITH(parse({"--data-dir", "d", "--write-threads", "many"}),
                      Catch::Contains("write-threads"));
    CHECK_THROWS_WITH(parse({"--data-dir", "d", "--write-threads", "65"}),
                      Catch::Contains("write-threads"));
    CHECK_THROWS_WITH(parse({"--data-dir", "d", "--write-split-bytes", "0"}),
                      Catch::Contains("write-split-bytes"));
    CHECK_THROWS_WITH(parse({"--data-dir", "d", "--shm-pool-idle", "-1"}),
                      Catch::Contains("shm-pool-idle"));
}

TEST_CASE("the config file applies first, flags override it, errors name file and line") {
    auto path = std::filesystem::temp_directory_path() / "simsinkd-test.conf";
    {
        std::ofstream f(path);
        f << "# comment\ndata-dir = /srv/a\nlisten = tcp://0.0.0.0:1\nlisten = "
             "ipc:///x\ncommit-interval = 2  # trailing\n";
    }
    auto c = parse({"--config", path.string(), "--commit-interval", "0.5"});
    CHECK(c->data_dir == "/srv/a");
    CHECK(c->listen == std::vector<std::string>{"tcp://0.0.0.0:1", "ipc:///x"});
    CHECK(c->commit_interval == 0.5);
    {
        std::ofstream f(path);
        f << "data-dir = /srv/a\nthis line is wrong\n";
    }
    CHECK_THROWS_WITH(parse({"--config", path.string()}), Catch::Contains(":2:"));
    std::filesystem::remove(path);
}

TEST_CASE("--help prints usage and returns no config") {
    CHECK_FALSE(parse({"--help"}));
}
