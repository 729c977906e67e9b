// The simsink CLI against a real daemon: status, flush, runs --where, show,
// tail, verify, export, and a clear error when no daemon is there.
#include <catch2/catch.hpp>
#include <cstdio>
#include <simsink/client.hpp>

#include "daemon_process.hpp"

using namespace simsink;
using namespace simsink::testing;

namespace {

struct Output {
    int status;
    std::string text;
};

Output run_cli(const std::string& args) {
    const std::string cmd =
        env_or("SIMSINK_CLI", "build/client/cli/simsink") + " " + args + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    REQUIRE(p);
    std::string out;
    char buf[4096];
    while (std::size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    int rc = pclose(p);
    return {WEXITSTATUS(rc), out};
}

}  // namespace

TEST_CASE("CLI: status, flush, runs --where, show, tail, verify, export", "[integration][cli]") {
    DaemonProcess daemon("cli", {"--commit-interval", "60"});
    const std::string admin = "--admin " + daemon.admin();
    Client client(daemon.ingest());
    for (int k = 0; k < 4; ++k) {
        Run run =
            client.open_run("cli", {{"kappa", k * 0.5}, {"method", k % 2 ? "rk4" : "dopri5"}});
        for (int i = 0; i < 50; ++i) run.record("energy", static_cast<double>(k * 100 + i));
        run.close({{"final", k * 10}});
    }
    // With a 60 s commit interval nothing is durable until `simsink flush`.
    auto st = run_cli(admin + " status --json");
    REQUIRE(st.status == 0);
    auto flush = run_cli(admin + " flush");
    REQUIRE(flush.status == 0);
    CHECK_THAT(flush.text, Catch::Contains("committed"));
    client.flush();

    st = run_cli(admin + " status");
    REQUIRE(st.status == 0);
    CHECK_THAT(st.text, Catch::Contains("state:      ok"));
    CHECK_THAT(st.text, Catch::Contains("4 total"));
    // The client is local (ipc://): its rows came through memory the daemon lent it.
    CHECK_THAT(st.text, Catch::Contains("messages read in place"));
    CHECK_THAT(st.text, Catch::Contains("lent mem:   1 arenas lent, 0 idle"));

    auto runs = run_cli(admin + " runs --where \"kappa >= 0.5 and method = 'dopri5'\" --csv");
    REQUIRE(runs.status == 0);
    CHECK_THAT(runs.text, Catch::Contains("dopri5"));
    CHECK_THAT(runs.text, !Catch::Contains("rk4"));
    CHECK(std::count(runs.text.begin(), runs.text.end(), '\n') ==
          2);  // header + run with kappa 1.0

    auto bad = run_cli(admin + " runs --where \"kappa >>> 1\"");
    CHECK(bad.status == 2);
    CHECK_THAT(bad.text, Catch::Contains("--where"));

    auto show = run_cli(admin + " show 2");
    REQUIRE(show.status == 0);
    CHECK_THAT(show.text, Catch::Contains("energy  stream float64 (50,)"));

    auto tail = run_cli(admin + " tail 2 energy -n 3");
    REQUIRE(tail.status == 0);
    CHECK_THAT(tail.text, Catch::Contains("47\t147"));
    CHECK_THAT(tail.text, Catch::Contains("49\t149"));
    CHECK_THAT(tail.text, !Catch::Contains("46\t146"));

    auto verify = run_cli(admin + " verify");
    CHECK(verify.status == 0);
    CHECK_THAT(verify.text, Catch::Contains("4 runs"));

    // Six more commits make six small segments; compaction merges them
    // (and the first one) while every row stays readable, in order.
    {
        Run more = client.open_run("cli", {{"kappa", 9.0}, {"method", "euler"}});
        for (int c = 0; c < 6; ++c) {
            for (int i = 0; i < 10; ++i) more.record("n", static_cast<std::int64_t>(c * 10 + i));
            client.flush();
        }
        more.close();
        client.flush();
    }
    auto before = proto::Json::parse(run_cli(admin + " campaigns --json").text);
    auto compact = run_cli(admin + " compact cli");
    REQUIRE(compact.status == 0);
    CHECK_THAT(compact.text, Catch::Contains("merged"));
    auto after = proto::Json::parse(run_cli(admin + " campaigns --json").text);
    CHECK(before[0]["segments"].get<int>() >= 7);
    CHECK(after[0]["segments"] == 1);
    auto merged_tail = run_cli(admin + " tail 5 n -n 60");
    REQUIRE(merged_tail.status == 0);
    for (int r = 0; r < 60; ++r)
        CHECK_THAT(merged_tail.text,
                   Catch::Contains(std::to_string(r) + "\t" + std::to_string(r) + "\n"));
    CHECK(run_cli(admin + " verify").status == 0);

    auto out = daemon.dir() / "export.h5";
    auto exp = run_cli(admin + " export cli -o " + out.string() + " --quiet");
    REQUIRE(exp.status == 0);
    CHECK(fs::file_size(out) > 4 * 50 * 8);

    for (const auto& cmd :
         {"status", "flush", "runs", "show", "tail", "export", "verify", "compact", "campaigns"}) {
        auto help = run_cli(std::string(cmd) + " --help");
        CHECK(help.status == 0);
        CHECK_THAT(help.text, Catch::Contains("Usage: simsink"));
    }
    REQUIRE(daemon.stop() == 0);
    auto none = run_cli(admin + " --timeout 2 status");
    CHECK(none.status == 3);
    CHECK_THAT(none.text, Catch::Contains("no daemon"));
}
