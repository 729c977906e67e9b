// An example simulation worker using the C++ client: opens a run with its
// parameters, records a time series (t, y[100]) every step and a complex
// field qhat[64,33] every 100 steps, writes a grid once, closes the run with
// results and flushes.
//
//   simsink-example-worker --connect tcp://master:5555 --campaign sweep
//                          --steps 1000 --seed 471913919 --id 3
#include <simsink/client.hpp>

#include <chrono>
#include <cmath>
#include <complex>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numbers>
#include <span>
#include <string>
#include <vector>

namespace {

struct Args {
    std::string connect = "ipc:///tmp/simsink.sock";
    std::string campaign = "example";
    long steps = 1000;
    long seed = 1;
    long id = 0;
};

[[noreturn]] void usage(const char* argv0) {
    std::fprintf(stderr, "usage: %s --connect ENDPOINT --campaign NAME --steps N --seed S --id K\n",
                 argv0);
    std::exit(2);
}

Args parse(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        std::string opt = argv[i];
        if (i + 1 >= argc) usage(argv[0]);
        const char* v = argv[++i];
        if (opt == "--connect")
            a.connect = v;
        else if (opt == "--campaign")
            a.campaign = v;
        else if (opt == "--steps")
            a.steps = std::atol(v);
        else if (opt == "--seed")
            a.seed = std::atol(v);
        else if (opt == "--id")
            a.id = std::atol(v);
        else
            usage(argv[0]);
    }
    return a;
}

}  // namespace

int main(int argc, char** argv) {
    const Args a = parse(argc, argv);
    const int nx = 64, ny = 33;
    const double beta = 6e-10 * (1 + a.id), kappa = 0.1 + 0.01 * a.id, dt = 1e-3;
    try {
        simsink::Client client(a.connect);
        simsink::Run run = client.open_run(a.campaign, {{"nx", nx},
                                                        {"ny", ny},
                                                        {"beta", beta},
                                                        {"kappa", kappa},
                                                        {"method", "dopri5"},
                                                        {"dt", dt},
                                                        {"seed", a.seed},
                                                        {"worker", a.id}});
        run.set_attrs("y", {{"units", "m/s"}, {"description", "state vector"}});
        run.set_attrs("qhat", {{"description", "spectral field, every 100 steps"}});

        std::vector<double> x(nx);
        for (int i = 0; i < nx; ++i) x[i] = 2 * std::numbers::pi * i / nx;
        run.put("grid/x", x.data(), {static_cast<std::uint64_t>(nx)});

        std::vector<double> y(100);
        for (int i = 0; i < 100; ++i) y[i] = std::sin(0.1 * i + a.seed % 7);
        std::vector<std::complex<double>> qhat(nx * ny);
        double energy = 0;
        auto start = std::chrono::steady_clock::now();
        for (long step = 0; step < a.steps; ++step) {
            const double t = step * dt;
            for (auto& v : y) v += dt * (-kappa * v);
            run.record("t", t);
            run.record("y", std::span<const double>(y));
            if (step % 100 == 0) {
                for (int i = 0; i < nx * ny; ++i)
                    qhat[i] = std::polar(std::exp(-kappa * t), 0.01 * i);
                run.record("qhat", qhat.data(),
                           {static_cast<std::uint64_t>(nx), static_cast<std::uint64_t>(ny)});
            }
        }
        for (double v : y) energy += v * v;
        run.close({{"energy", energy}, {"steps", a.steps}, {"converged", true}});
        client.flush();
        double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::printf("worker %ld: run %lld of campaign %s, %ld steps in %.3f s\n", a.id,
                    static_cast<long long>(run.id()), a.campaign.c_str(), a.steps, seconds);
    } catch (const simsink::Error& e) {
        std::fprintf(stderr, "worker %ld: %s\n", a.id, e.what());
        return 1;
    }
    return 0;
}
