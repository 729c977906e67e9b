// W1 of shared/WORKLOADS.md, a time-stepping simulation saving its state:
// STEPS steps, each recording t (float64 scalar) and y (float64[100]),
// 808 bytes per step.
//
//   bench_w1 --mode simsink --connect ENDPOINT [--steps N] [--campaign w1]
//       Through simsinkd with the C++ client: Client construction, open_run,
//       run.record("t", t) and run.record("y", y) per step, run.close(),
//       client.flush(). Timed from before the Client is constructed until
//       flush() returns: every row is then committed and fsynced.
//   bench_w1 --mode hdf5 --file PATH [--steps N] [--rows 8192] [--fsync 1]
//       The in-process peer: the same rows copied into an 8192-row buffer,
//       written per full buffer with H5Dset_extent + a hyperslab H5Dwrite
//       (chunks of 8192 rows), the file closed and then fsynced. Timed from
//       before H5Fcreate until fsync returns (--fsync 0: until H5Fclose).
//   bench_w1 --mode write --file PATH [--steps N] [--rows 8192]
//       The disk's pace for one durable writer, no format: the same rows
//       copied into an 8192-row buffer (t, then y), each full buffer written
//       with pwrite(2) and its writeback started at once
//       (sync_file_range(SYNC_FILE_RANGE_WRITE), as simsinkd's segment
//       writers do), fdatasync at the end. Timed from open until fdatasync
//       returns. dd conv=fdatasync starts writeback only at the end, so
//       its time is the copies plus all of the writeback; this overlaps them.
//
// Both sides compute the same rows: t = step * dt, y[0] = step, y[1] = t,
// y[2..99] fixed. Prints one JSON object: seconds (total), loop (the
// record/copy loop alone), bytes.
#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>
#include <simsink/client.hpp>

#include <cerrno>
#include <cstring>
#include <span>
#include <vector>

#include "bench_common.hpp"

namespace {

using simsink::bench::now;

constexpr int kRow = 100;
constexpr double kDt = 1e-3;

const char* kUsage =
    "bench_w1 --mode simsink --connect ENDPOINT [--steps N] [--campaign NAME] [--shm 1|0]\n"
    "bench_w1 --mode hdf5 --file PATH [--steps N] [--rows 8192] [--fsync 1|0]\n"
    "bench_w1 --mode write --file PATH [--steps N] [--rows 8192]\n";

std::vector<double> initial_y() {
    std::vector<double> y(kRow);
    for (int i = 0; i < kRow; ++i) y[i] = 0.25 * i;
    return y;
}

void run_simsink(const simsink::bench::Args& args) {
    const long steps = args.integer("steps", 1'000'000);
    const std::string endpoint = args.need("connect");
    std::vector<double> y = initial_y();

    const double t0 = now();
    simsink::Options options;
    options.shared_memory = args.flag("shm", true);  // 0: batches through the socket
    simsink::Client client(endpoint, options);
    simsink::Run run = client.open_run(args.str("campaign", "w1"), {{"steps", steps}});
    for (long step = 0; step < steps; ++step) {
        const double t = step * kDt;
        y[0] = double(step);
        y[1] = t;
        run.record("t", t);
        run.record("y", std::span<const double>(y));
    }
    const double loop = now() - t0;
    run.close();
    client.flush();
    const double total = now() - t0;
    const std::int64_t id = run.id();  // committed long ago: does not wait
    const auto st = client.stats();
    simsink::bench::JsonLine()
        .str("mode", "simsink")
        .num("seconds", total)
        .num("loop", loop)
        .integer("bytes", steps * 808LL)
        .integer("run_id", id)
        .integer("messages", static_cast<long long>(st.last_seq))
        .integer("resent", static_cast<long long>(st.resent_messages))
        .print();
}

void check(herr_t rc, const char* what) {
    if (rc < 0) simsink::bench::die(std::string("HDF5: ") + what + " failed");
}

hid_t check_id(hid_t id, const char* what) {
    if (id < 0) simsink::bench::die(std::string("HDF5: ") + what + " failed");
    return id;
}

// Appends `rows` rows from `buf` at row `at` of an extendible dataset of
// rank 1 or 2.
void append(hid_t dset, hid_t type, int rank, hsize_t at, hsize_t rows, const void* buf) {
    hsize_t size[2] = {at + rows, kRow};
    check(H5Dset_extent(dset, size), "H5Dset_extent");
    hid_t fspace = check_id(H5Dget_space(dset), "H5Dget_space");
    hsize_t start[2] = {at, 0}, count[2] = {rows, kRow};
    check(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, nullptr, count, nullptr),
          "H5Sselect_hyperslab");
    hid_t mspace = check_id(H5Screate_simple(rank, count, nullptr), "H5Screate_simple");
    check(H5Dwrite(dset, type, mspace, fspace, H5P_DEFAULT, buf), "H5Dwrite");
    H5Sclose(mspace);
    H5Sclose(fspace);
}

hid_t create_extendible(hid_t file, const char* name, int rank, hsize_t chunk_rows) {
    hsize_t dims[2] = {0, kRow}, maxdims[2] = {H5S_UNLIMITED, kRow}, chunk[2] = {chunk_rows, kRow};
    hid_t space = check_id(H5Screate_simple(rank, dims, maxdims), "H5Screate_simple");
    hid_t dcpl = check_id(H5Pcreate(H5P_DATASET_CREATE), "H5Pcreate");
    check(H5Pset_chunk(dcpl, rank, chunk), "H5Pset_chunk");
    hid_t d =
        check_id(H5Dcreate2(file, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
                 "H5Dcreate2");
    H5Pclose(dcpl);
    H5Sclose(space);
    return d;
}

void run_hdf5(const simsink::bench::Args& args) {
    const long steps = args.integer("steps", 1'000'000);
    const hsize_t rows = static_cast<hsize_t>(args.integer("rows", 8192));
    const std::string path = args.need("file");
    const bool sync = args.flag("fsync", true);
    std::vector<double> y = initial_y();
    // Buffers allocated and touched before the clock starts, as a simulation
    // would keep them.
    std::vector<double> tbuf(rows, 0.0), ybuf(rows * kRow, 0.0);

    const double t0 = now();
    hid_t file =
        check_id(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), "H5Fcreate");
    hid_t dt = create_extendible(file, "t", 1, rows);
    hid_t dy = create_extendible(file, "y", 2, rows);
    hsize_t written = 0, n = 0;
    for (long step = 0; step < steps; ++step) {
        const double t = step * kDt;
        y[0] = double(step);
        y[1] = t;
        tbuf[n] = t;
        std::memcpy(&ybuf[n * kRow], y.data(), kRow * sizeof(double));
        if (++n == rows) {
            append(dt, H5T_NATIVE_DOUBLE, 1, written, n, tbuf.data());
            append(dy, H5T_NATIVE_DOUBLE, 2, written, n, ybuf.data());
            written += n;
            n = 0;
        }
    }
    if (n) {
        append(dt, H5T_NATIVE_DOUBLE, 1, written, n, tbuf.data());
        append(dy, H5T_NATIVE_DOUBLE, 2, written, n, ybuf.data());
        written += n;
    }
    const double loop = now() - t0;
    H5Dclose(dt);
    H5Dclose(dy);
    check(H5Fclose(file), "H5Fclose");
    if (sync) simsink::bench::fsync_file(path);
    const double total = now() - t0;
    simsink::bench::JsonLine()
        .str("mode", sync ? "hdf5+fsync" : "hdf5")
        .num("seconds", total)
        .num("loop", loop)
        .integer("bytes", steps * 808LL)
        .print();
}

void run_write(const simsink::bench::Args& args) {
    const long steps = args.integer("steps", 1'000'000);
    const std::size_t rows = static_cast<std::size_t>(args.integer("rows", 8192));
    const std::string path = args.need("file");
    std::vector<double> y = initial_y();
    // t then y of 8192 steps: 6.6 MB, touched before the clock starts.
    std::vector<double> buf(rows * (1 + kRow), 0.0);

    const double t0 = now();
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) simsink::bench::die_errno("open " + path);
    off_t at = 0;
    std::size_t n = 0;
    auto write_out = [&] {
        // t values first, then the y rows right after them.
        if (n < rows) std::memmove(&buf[n], &buf[rows], n * kRow * sizeof(double));
        const std::size_t bytes = n * (1 + kRow) * sizeof(double);
        simsink::bench::pwrite_all(fd, buf.data(), bytes, at, "pwrite " + path);
        ::sync_file_range(fd, at, static_cast<off_t>(bytes), SYNC_FILE_RANGE_WRITE);
        at += static_cast<off_t>(bytes);
        n = 0;
    };
    for (long step = 0; step < steps; ++step) {
        const double t = step * kDt;
        y[0] = double(step);
        y[1] = t;
        buf[n] = t;
        std::memcpy(&buf[rows + n * kRow], y.data(), kRow * sizeof(double));
        if (++n == rows) write_out();
    }
    if (n) write_out();
    const double loop = now() - t0;
    if (::fdatasync(fd) != 0) simsink::bench::die_errno("fdatasync " + path);
    ::close(fd);
    const double total = now() - t0;
    simsink::bench::JsonLine()
        .str("mode", "write+fdatasync")
        .num("seconds", total)
        .num("loop", loop)
        .integer("bytes", steps * 808LL)
        .print();
}

}  // namespace

int main(int argc, char** argv) {
    return simsink::bench::run_mode(
        argc, argv, kUsage, "bench_w1",
        {{"simsink", run_simsink}, {"hdf5", run_hdf5}, {"write", run_write}});
}
