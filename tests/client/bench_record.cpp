// Cost of Run::record() on the worker's thread, against the fake daemon
// (which acknowledges on FLUSH and every `--commit-ms`, like the daemon's
// commit interval), for the W1 pattern of shared/WORKLOADS.md: each step
// records t (float64 scalar) and y (100 float64, an 800-byte row).
//
//   bench_record [--steps N] [--repeat R] [--endpoint ipc://...|tcp://...]
//   bench_record --connect ENDPOINT  (against a running simsinkd instead)
//   bench_record --serve ENDPOINT    (only the fake daemon, until killed)
//
// Reports, per repeat: the median and 99th percentile of one record() of y
// (timed in groups of 32 calls to amortize the clock), the mean cost per
// step (t + y), and the total time including the final flush.
#include <simsink/client.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "fake_daemon.hpp"

using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
    long steps = 1'000'000, repeat = 3;
    std::string endpoint = simsink::test::unique_ipc_endpoint();
    std::string serve, connect;
    bool shm = true;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string o = argv[i];
        if (o == "--steps") steps = std::atol(argv[i + 1]);
        if (o == "--repeat") repeat = std::atol(argv[i + 1]);
        if (o == "--endpoint") endpoint = argv[i + 1];
        if (o == "--serve") serve = argv[i + 1];
        if (o == "--connect") connect = argv[i + 1];
        if (o == "--shm") shm = std::string(argv[i + 1]) != "0";
    }
    simsink::test::Knobs quiet;
    quiet.keep_messages = false;  // storing 800 MB would measure the fake, not the client
    if (!serve.empty()) {
        simsink::test::FakeDaemon d(serve, 0, quiet);
        for (;;) {
            std::this_thread::sleep_for(std::chrono::milliseconds(500));
            d.commit_now();
        }
    }

    std::optional<simsink::test::FakeDaemon> daemon;
    if (connect.empty()) daemon.emplace(endpoint, 0, quiet);
    std::atomic<bool> stop{false};
    std::thread committer([&] {  // the daemon's commit interval, shortened
        while (daemon && !stop) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            daemon->commit_now();
        }
    });
    if (!connect.empty()) endpoint = connect;
    {
        simsink::Options options;
        options.shared_memory = shm;
        simsink::Client client(endpoint, options);
        std::vector<double> y(100, 1.0);
        constexpr int kGroup = 32;
        for (long r = 0; r < repeat; ++r) {
            simsink::Run run = client.open_run("bench", {{"repeat", r}});
            std::vector<double> group_ns;
            group_ns.reserve(steps / kGroup + 1);
            auto start = Clock::now();
            for (long step = 0; step < steps;) {
                // t and y alternate as in W1; only y's calls are in the timed group.
                auto g0 = Clock::now();
                int n = 0;
                for (; n < kGroup && step < steps; ++n, ++step) {
                    y[0] = double(step);
                    run.record("y", std::span<const double>(y));
                }
                auto g1 = Clock::now();
                group_ns.push_back(std::chrono::duration<double, std::nano>(g1 - g0).count() / n);
                for (long s = step - n; s < step; ++s) run.record("t", 0.5 * s);
            }
            auto recorded = Clock::now();
            run.close();
            client.flush();
            auto flushed = Clock::now();
            std::sort(group_ns.begin(), group_ns.end());
            double per_step =
                std::chrono::duration<double, std::nano>(recorded - start).count() / steps;
            double total = std::chrono::duration<double>(flushed - start).count();
            std::printf(
                "repeat %ld: record(y, 800 B) median %.0f ns, p99 %.0f ns (groups of %d); "
                "per step (t+y) %.0f ns; %ld steps + flush %.3f s = %.0f MB/s\n",
                r, group_ns[group_ns.size() / 2], group_ns[group_ns.size() * 99 / 100], kGroup,
                per_step, steps, total, steps * 808.0 / total / 1e6);
            auto st = client.stats();
            std::printf("  client: %llu messages, %llu resent, %llu WELCOMEs\n",
                        static_cast<unsigned long long>(st.last_seq),
                        static_cast<unsigned long long>(st.resent_messages),
                        static_cast<unsigned long long>(st.welcomes));
        }
    }
    stop = true;
    committer.join();
    return 0;
}
