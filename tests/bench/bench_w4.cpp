// W4 of shared/WORKLOADS.md, the sweep: RUNS short runs from PROCS worker
// processes. Each run has the params nx, ny, lx, ly, beta, kappa, w,
// method, dt, initial_amp, seed; records STEPS steps of t (float64) and
// y (float64[100]) and a complex128 qhat[64,33] every 100 steps; and ends
// with the results energy, steps, converged. Worker p does runs p, p+PROCS, ...
//
//   bench_w4 --mode simsink --connect ENDPOINT [--runs 1000] [--procs 16] [--steps 1000]
//            [--client-per-run 0|1] [--campaign w4]
//       One Client per process (or, with --client-per-run 1, one per run, as
//       a job array would), open_run / records / close(results) per run, and
//       flush() at the end of each Client: the sweep is done when every
//       worker's flush() has returned.
//   bench_w4 --mode hdf5 --dir DIR [--runs 1000] [--procs 16] [--steps 1000]
//       The file-per-run peer: each run writes DIR/run-<k>.h5 in process
//       (params and results as attributes, t / y / qhat as extendible chunked
//       datasets written from in-memory buffers, as in bench_w1), closes and
//       fsyncs it.
//   bench_w4 --mode hdf5-query --dir DIR
//       The peer's query: open every DIR/run-*.h5 and read the attributes
//       method, beta and energy; count the runs with
//       method = 'dopri5' and beta > 1e-10 and energy < 500.
//
// The params of run k make the query's answer known: method cycles through
// dopri5, rk4, euler (k % 3), beta = 1e-11 * (0.5 + k % 20), energy = k + 0.5.
// (simsink's query is `simsink runs --where ...`, run and timed by
// scripts/bench.) Prints one JSON object.
#include <dirent.h>
#include <sys/stat.h>
#include <hdf5.h>
#include <simsink/client.hpp>

#include <cmath>
#include <complex>
#include <span>
#include <vector>

#include "bench_common.hpp"

namespace {

using simsink::bench::now;
using simsink::bench::WorkerResult;

const char* kUsage =
    "bench_w4 --mode simsink --connect ENDPOINT [--runs 1000] [--procs 16] [--steps 1000]\n"
    "         [--client-per-run 0|1] [--campaign w4]\n"
    "bench_w4 --mode hdf5 --dir DIR [--runs 1000] [--procs 16] [--steps 1000]\n"
    "bench_w4 --mode hdf5-query --dir DIR\n";

constexpr int kNx = 64, kNy = 33, kRow = 100, kEvery = 100;
const char* kMethods[] = {"dopri5", "rk4", "euler"};

struct Params {
    long k;
    double beta, kappa, dt = 1e-3, lx = 2 * M_PI, ly = 2 * M_PI, w = 0.5, amp = 0.1;
    std::string method;
    long seed;
};

Params params_of(long k) {
    Params p;
    p.k = k;
    p.beta = 1e-11 * (0.5 + double(k % 20));
    p.kappa = 0.1 + 1e-4 * double(k);
    p.method = kMethods[k % 3];
    p.seed = 1000 + k;
    return p;
}

double energy_of(long k) {
    return double(k) + 0.5;
}

// The simulation both sides run: y decays, qhat is scaled every 100 steps.
struct Sim {
    std::vector<double> y;
    std::vector<std::complex<double>> qhat;
    explicit Sim(const Params& p) : y(kRow), qhat(kNx * kNy) {
        for (int i = 0; i < kRow; ++i) y[i] = p.amp * std::sin(0.1 * i + double(p.seed % 7));
        for (int i = 0; i < kNx * kNy; ++i) qhat[i] = std::polar(p.amp, 0.01 * i);
    }
    void step(const Params& p) {
        for (auto& v : y) v += p.dt * (-p.kappa * v);
    }
    void decay_qhat(const Params& p) {
        const double f = std::exp(-p.kappa * p.dt * kEvery);
        for (auto& q : qhat) q *= f;
    }
};

// ---- simsink ------------------------------------------------------------------

void simsink_run(simsink::Client& client, const std::string& campaign, long k, long steps) {
    const Params p = params_of(k);
    simsink::Run run = client.open_run(campaign, {{"nx", kNx},
                                                  {"ny", kNy},
                                                  {"lx", p.lx},
                                                  {"ly", p.ly},
                                                  {"beta", p.beta},
                                                  {"kappa", p.kappa},
                                                  {"w", p.w},
                                                  {"method", p.method},
                                                  {"dt", p.dt},
                                                  {"initial_amp", p.amp},
                                                  {"seed", p.seed}});
    Sim sim(p);
    for (long s = 0; s < steps; ++s) {
        sim.step(p);
        run.record("t", double(s) * p.dt);
        run.record("y", std::span<const double>(sim.y));
        if (s % kEvery == 0) {
            sim.decay_qhat(p);
            run.record("qhat", sim.qhat.data(), {kNx, kNy});
        }
    }
    run.close({{"energy", energy_of(k)}, {"steps", steps}, {"converged", true}});
}

WorkerResult simsink_worker(const std::string& endpoint, const std::string& campaign, long runs,
                            int procs, long steps, bool client_per_run, int i) {
    WorkerResult r;
    r.started = now();
    if (client_per_run) {
        for (long k = i; k < runs; k += procs) {
            simsink::Client client(endpoint);
            simsink_run(client, campaign, k, steps);
            client.flush();
        }
    } else {
        simsink::Client client(endpoint);
        for (long k = i; k < runs; k += procs) simsink_run(client, campaign, k, steps);
        r.loop = now() - r.started;
        client.flush();
    }
    r.finished = now();
    return r;
}

// ---- HDF5, one file per run -------------------------------------------------------

void check(herr_t rc, const char* what) {
    if (rc < 0) throw std::runtime_error(std::string("HDF5: ") + what + " failed");
}

hid_t check_id(hid_t id, const char* what) {
    if (id < 0) throw std::runtime_error(std::string("HDF5: ") + what + " failed");
    return id;
}

hid_t complex_type() {
    hid_t t = check_id(H5Tcreate(H5T_COMPOUND, 16), "H5Tcreate");
    check(H5Tinsert(t, "r", 0, H5T_IEEE_F64LE), "H5Tinsert");
    check(H5Tinsert(t, "i", 8, H5T_IEEE_F64LE), "H5Tinsert");
    return t;
}

void attr_double(hid_t obj, const char* name, double v) {
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a =
        check_id(H5Acreate2(obj, name, H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT), "H5Acreate2");
    check(H5Awrite(a, H5T_NATIVE_DOUBLE, &v), "H5Awrite");
    H5Aclose(a);
    H5Sclose(s);
}

void attr_long(hid_t obj, const char* name, long long v) {
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a =
        check_id(H5Acreate2(obj, name, H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT), "H5Acreate2");
    check(H5Awrite(a, H5T_NATIVE_LLONG, &v), "H5Awrite");
    H5Aclose(a);
    H5Sclose(s);
}

void attr_string(hid_t obj, const char* name, const std::string& v) {
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, v.size());
    hid_t a = check_id(H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT), "H5Acreate2");
    check(H5Awrite(a, t, v.data()), "H5Awrite");
    H5Aclose(a);
    H5Tclose(t);
    H5Sclose(s);
}

// An extendible dataset of rows of `row` shape, written once from `data`
// (what bench_w1's writer does with one buffer flush: a 1000-step run fits
// in its 8192-row buffer).
void write_rows(hid_t file, const char* name, hid_t type, std::vector<hsize_t> row, hsize_t rows,
                const void* data) {
    // Chunks of about 1 MiB, never longer than the run (a chunk is
    // allocated whole).
    hsize_t row_bytes = H5Tget_size(type);
    for (hsize_t n : row) row_bytes *= n;
    std::vector<hsize_t> dims{0}, maxdims{H5S_UNLIMITED},
        chunk{std::max<hsize_t>(1, std::min<hsize_t>(rows, (hsize_t{1} << 20) / row_bytes))};
    dims.insert(dims.end(), row.begin(), row.end());
    maxdims.insert(maxdims.end(), row.begin(), row.end());
    chunk.insert(chunk.end(), row.begin(), row.end());
    const int rank = int(dims.size());
    hid_t space = check_id(H5Screate_simple(rank, dims.data(), maxdims.data()), "H5Screate");
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    check(H5Pset_chunk(dcpl, rank, chunk.data()), "H5Pset_chunk");
    hid_t d =
        check_id(H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT), "H5Dcreate2");
    H5Pclose(dcpl);
    H5Sclose(space);
    dims[0] = rows;
    check(H5Dset_extent(d, dims.data()), "H5Dset_extent");
    check(H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), "H5Dwrite");
    H5Dclose(d);
}

void hdf5_run(const std::string& dir, long k, long steps, hid_t ctype) {
    const Params p = params_of(k);
    const std::string path = dir + "/run-" + std::to_string(k) + ".h5";
    hid_t f =
        check_id(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), "H5Fcreate");
    attr_long(f, "nx", kNx);
    attr_long(f, "ny", kNy);
    attr_double(f, "lx", p.lx);
    attr_double(f, "ly", p.ly);
    attr_double(f, "beta", p.beta);
    attr_double(f, "kappa", p.kappa);
    attr_double(f, "w", p.w);
    attr_string(f, "method", p.method);
    attr_double(f, "dt", p.dt);
    attr_double(f, "initial_amp", p.amp);
    attr_long(f, "seed", p.seed);

    Sim sim(p);
    std::vector<double> tbuf(steps), ybuf(steps * kRow);
    std::vector<std::complex<double>> qbuf;
    qbuf.reserve((steps / kEvery + 1) * kNx * kNy);
    for (long s = 0; s < steps; ++s) {
        sim.step(p);
        tbuf[s] = double(s) * p.dt;
        std::memcpy(&ybuf[s * kRow], sim.y.data(), kRow * sizeof(double));
        if (s % kEvery == 0) {
            sim.decay_qhat(p);
            qbuf.insert(qbuf.end(), sim.qhat.begin(), sim.qhat.end());
        }
    }
    write_rows(f, "t", H5T_IEEE_F64LE, {}, steps, tbuf.data());
    write_rows(f, "y", H5T_IEEE_F64LE, {kRow}, steps, ybuf.data());
    write_rows(f, "qhat", ctype, {kNx, kNy}, qbuf.size() / (kNx * kNy), qbuf.data());
    attr_double(f, "energy", energy_of(k));
    attr_long(f, "steps", steps);
    attr_long(f, "converged", 1);
    check(H5Fclose(f), "H5Fclose");
    simsink::bench::fsync_file(path);
}

WorkerResult hdf5_worker(const std::string& dir, long runs, int procs, long steps, int i) {
    WorkerResult r;
    r.started = now();
    hid_t ctype = complex_type();
    for (long k = i; k < runs; k += procs) hdf5_run(dir, k, steps, ctype);
    H5Tclose(ctype);
    r.finished = r.loop = now();
    return r;
}

bool read_attr_double(hid_t f, const char* name, double& out) {
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    if (a < 0) return false;
    herr_t rc = H5Aread(a, H5T_NATIVE_DOUBLE, &out);
    H5Aclose(a);
    return rc >= 0;
}

bool read_attr_string(hid_t f, const char* name, std::string& out) {
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    if (a < 0) return false;
    hid_t t = H5Aget_type(a);
    out.assign(H5Tget_size(t), '\0');
    herr_t rc = H5Aread(a, t, out.data());
    H5Tclose(t);
    H5Aclose(a);
    return rc >= 0;
}

void hdf5_query(const std::string& dir) {
    const double t0 = now();
    long files = 0, matches = 0;
    DIR* d = ::opendir(dir.c_str());
    if (!d) simsink::bench::die("opendir " + dir);
    while (dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name.rfind("run-", 0) != 0 || name.size() < 4 ||
            name.compare(name.size() - 3, 3, ".h5") != 0)
            continue;
        hid_t f = H5Fopen((dir + "/" + name).c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
        if (f < 0) simsink::bench::die("cannot open " + name);
        ++files;
        std::string method;
        double beta = 0, energy = 0;
        if (read_attr_string(f, "method", method) && read_attr_double(f, "beta", beta) &&
            read_attr_double(f, "energy", energy) && method == "dopri5" && beta > 1e-10 &&
            energy < 500)
            ++matches;
        H5Fclose(f);
    }
    ::closedir(d);
    simsink::bench::JsonLine()
        .str("mode", "hdf5-query")
        .num("seconds", now() - t0)
        .integer("files", files)
        .integer("matches", matches)
        .print();
}

}  // namespace

int main(int argc, char** argv) {
    simsink::bench::Args args(argc, argv, kUsage);
    const std::string mode = args.need("mode");
    const long runs = args.integer("runs", 1000), steps = args.integer("steps", 1000);
    const int procs = int(args.integer("procs", 16));
    if (runs < 1 || steps < 1 || procs < 1) simsink::bench::die(kUsage);
    long expected = 0;
    for (long k = 0; k < runs; ++k) {
        const Params p = params_of(k);
        if (p.method == "dopri5" && p.beta > 1e-10 && energy_of(k) < 500) ++expected;
    }

    std::function<WorkerResult(int)> work;
    if (mode == "simsink") {
        const std::string endpoint = args.need("connect");
        const std::string campaign = args.str("campaign", "w4");
        const bool per_run = args.flag("client-per-run", false);
        work = [=](int i) {
            return simsink_worker(endpoint, campaign, runs, procs, steps, per_run, i);
        };
    } else if (mode == "hdf5") {
        const std::string dir = args.need("dir");
        // Checked once here, not by 16 workers each failing in H5Fcreate.
        struct stat st {};
        if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
            simsink::bench::die("--dir " + dir + " is not a directory");
        work = [=](int i) { return hdf5_worker(dir, runs, procs, steps, i); };
    } else if (mode == "hdf5-query") {
        hdf5_query(args.need("dir"));
        return 0;
    } else {
        simsink::bench::die(kUsage);
    }
    double released = 0;
    auto results = simsink::bench::run_forked(std::min<long>(procs, runs), work, released);
    double last = 0;
    for (const auto& r : results) last = std::max(last, r.finished);
    const long long bytes =
        runs * (steps * 808LL + ((steps + kEvery - 1) / kEvery) * kNx * kNy * 16LL);
    simsink::bench::JsonLine()
        .str("mode", mode)
        .integer("runs", runs)
        .integer("procs", procs)
        .integer("steps", steps)
        .num("seconds", last - released)
        .integer("bytes", bytes)
        .integer("expected_matches", expected)
        .print();
    return 0;
}
