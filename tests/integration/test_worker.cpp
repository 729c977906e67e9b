// A simulation worker for the integration tests: records the deterministic
// data of expected.hpp through the C++ client, then closes its run and
// flushes. Usage: test_worker ENDPOINT CAMPAIGN INDEX STEPS
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "expected.hpp"

using namespace simsink;
using namespace simsink::testing;

int main(int argc, char** argv) {
    if (argc != 5) {
        std::cerr << "usage: test_worker ENDPOINT CAMPAIGN INDEX STEPS\n";
        return 2;
    }
    const int k = std::atoi(argv[3]);
    const std::uint64_t steps = std::strtoull(argv[4], nullptr, 10);
    try {
        Client client(argv[1]);
        Run run = client.open_run(argv[2], {{"k", k},
                                            {"beta", beta(k)},
                                            {"method", method(k)},
                                            {"adaptive", k % 2 == 0},
                                            {"seed", 1000 + k},
                                            {"coeffs", std::vector<double>{double(k), k + 0.5}}});
        run.set_attrs("state/y", {{"units", "m/s"}});
        const auto& specs = stream_specs();
        std::vector<double> y(100);
        for (std::uint64_t step = 0; step < steps; ++step) {
            for (std::size_t s = 0; s < specs.size(); ++s) {
                const auto& spec = specs[s];
                if (step % spec.every) continue;
                auto row = row_bytes(spec, k, static_cast<int>(s), step);
                if (s == 0) {  // the typed scalar path
                    double t;
                    std::memcpy(&t, row.data(), 8);
                    run.record("t", t);
                } else if (s == 1) {  // the typed span path
                    std::memcpy(y.data(), row.data(), row.size());
                    run.record("state/y", std::span<const double>(y));
                } else {
                    run.record_raw(spec.key, spec.dtype, row.data(), 1, Dims(spec.shape));
                }
            }
        }
        std::vector<double> grid(64);
        for (std::size_t i = 0; i < grid.size(); ++i) grid[i] = grid_value(k, i);
        run.put("grid/x", grid.data(), {64});
        run.close({{"energy", energy(k)},
                   {"steps", static_cast<std::int64_t>(steps)},
                   {"converged", true}});
        client.flush();
    } catch (const std::exception& e) {
        std::cerr << "test_worker " << k << ": " << e.what() << "\n";
        return 1;
    }
    return 0;
}
