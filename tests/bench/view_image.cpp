// The writer thread's cost of one run view (store::run_view_image): the
// in-memory HDF5 file with a W4 run's attributes (11 params, 2 results, the
// run's own 8) and its three streams' virtual datasets, no disk involved.
// W4 builds about one per run, on the writer thread, which W4 keeps busy.
//
//   view_image [--views 1000] [--repeat 5] [--dir DIR]
//
// Prints, per repeat, the microseconds per view and the image's bytes, then
// the best repeat as one JSON line. DIR (default a new directory under
// /tmp, removed afterwards) only gets the campaign's directory: the views
// are built, not saved. docs/performance.md, eleventh round.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "bench_common.hpp"
#include "view.hpp"

namespace {

simsink::StreamView stream(std::int64_t id, const char* key, simsink::DType dtype,
                           simsink::Shape shape, std::uint64_t rows) {
    simsink::StreamView s;
    s.stream_id = id;
    s.key = key;
    s.dtype = dtype;
    s.shape = std::move(shape);
    s.rows = rows;
    s.extents.push_back(
        simsink::Extent{"w4/seg-1.h5", "/s" + std::to_string(id), 0, 0, rows});
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    simsink::bench::Args args(argc, argv,
                              "view_image [--views 1000] [--repeat 5] [--dir DIR]\n");
    const long views = args.integer("views", 1000);
    const long repeat = args.integer("repeat", 5);
    if (views < 1 || repeat < 1) simsink::bench::die("--views and --repeat must be at least 1");
    const bool own_dir = args.str("dir", "").empty();
    std::filesystem::path dir =
        own_dir ? std::filesystem::temp_directory_path() /
                      ("view_image-" + std::to_string(::getpid()))
                : std::filesystem::path(args.str("dir", ""));

    simsink::RunView run;
    run.campaign = "w4";
    run.status = "finished";
    run.host = "node1";
    run.pid = 1234;
    run.started = 1.7e9;
    run.ended = 1.7e9 + 10;
    run.params = {{"nx", 64},    {"ny", 64},    {"lx", 6.28},        {"ly", 6.28},
                  {"beta", 1e-9}, {"kappa", 0.1}, {"w", 1.5},          {"method", "dopri5"},
                  {"dt", 1e-3},  {"initial_amp", 1e-3}, {"seed", 42}};
    run.results = {{"energy", 27.5}, {"steps", 1000}};
    run.streams.push_back(stream(1, "t", simsink::DType::float64, {}, 1000));
    run.streams.push_back(stream(2, "y", simsink::DType::float64, {100}, 1000));
    run.streams.push_back(stream(3, "qhat", simsink::DType::complex128, {64, 33}, 10));

    double best = 1e300;
    std::size_t bytes = 0;
    for (long r = 0; r < repeat; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        for (long i = 0; i < views; ++i) {
            run.run_id = i + 1;
            bytes = simsink::store::run_view_image(dir, run).bytes.size();
        }
        const double us = std::chrono::duration<double, std::micro>(
                              std::chrono::steady_clock::now() - t0)
                              .count() /
                          double(views);
        best = std::min(best, us);
        std::fprintf(stderr, "repeat %ld: %.1f us per run view, %zu bytes\n", r, us, bytes);
    }
    if (own_dir) std::filesystem::remove_all(dir);
    simsink::bench::JsonLine()
        .str("mode", "view_image")
        .integer("views", views)
        .num("best_us", best)
        .integer("image_bytes", static_cast<long long>(bytes))
        .print();
}
