// A writer for the fault harness: records deterministic rows through the
// real client library while the daemon is killed and restarted under it.
// Row i of stream "x" (int64) holds i, row i of "y" (float64[16]) holds
// i*16 + j + index/2, so any lost or duplicated row shows in the values.
// After every flush() (which returns only once the rows are acknowledged)
// it appends the number of acknowledged rows to LOG. It stops when STOPFILE
// exists: closes its run with results {"rows": n}, flushes, logs, exits 0.
//
// Usage: fault_writer ENDPOINT CAMPAIGN INDEX STOPFILE LOG [ROWS_PER_FLUSH] [ROWS_PER_SECOND]
#include <simsink/client.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

int main(int argc, char** argv) {
    if (argc < 6) {
        std::cerr << "usage: fault_writer ENDPOINT CAMPAIGN INDEX STOPFILE LOG [ROWS_PER_FLUSH] "
                     "[ROWS_PER_SECOND]\n";
        return 2;
    }
    const int k = std::atoi(argv[3]);
    const std::filesystem::path stop = argv[4];
    const std::int64_t per_flush = argc > 6 ? std::atoll(argv[6]) : 2000;
    const double rate = argc > 7 ? std::atof(argv[7]) : 20000;
    std::FILE* log = std::fopen(argv[5], "a");
    if (!log) {
        std::perror(argv[5]);
        return 2;
    }
    try {
        simsink::Client client(argv[1]);
        simsink::Run run = client.open_run(argv[2], {{"writer", k}});
        double y[16];
        std::int64_t i = 0;
        const auto start = std::chrono::steady_clock::now();
        for (bool stopping = false; !stopping;) {
            for (std::int64_t n = 0; n < per_flush; ++n, ++i) {
                run.record("x", i);
                for (int j = 0; j < 16; ++j) y[j] = static_cast<double>(i * 16 + j) + k * 0.5;
                run.record("y", std::span<const double>(y));
                if (i % 100 == 0) {  // keep to the row rate
                    auto due = start + std::chrono::duration<double>(static_cast<double>(i) / rate);
                    std::this_thread::sleep_until(
                        std::chrono::time_point_cast<std::chrono::steady_clock::duration>(due));
                }
            }
            stopping = std::filesystem::exists(stop);
            if (stopping) run.close({{"rows", i}});
            client.flush();
            std::fprintf(log, "%lld\n", static_cast<long long>(i));
            std::fflush(log);
        }
        std::fprintf(log, "done %lld\n", static_cast<long long>(i));
        std::fclose(log);
    } catch (const std::exception& e) {
        std::cerr << "fault_writer " << k << ": " << e.what() << "\n";
        return 1;
    }
    return 0;
}
