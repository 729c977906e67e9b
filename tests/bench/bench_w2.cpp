// W2 of shared/WORKLOADS.md, large arrays: APPENDS appends of a
// (10, 10000, 200) float32 array (80 MB) to one stream, 1.6 GB in all.
//
//   bench_w2 --mode simsink --connect ENDPOINT [--appends 20] [--shape 10,10000,200]
//       run.record("x", data, {10, 10000, 200}) per append through simsinkd,
//       timed from before the Client is constructed until flush() returns.
//   bench_w2 --mode hdf5 --file PATH [--appends 20] [--chunk 1,1,1250,200] [--fsync 1]
//       The in-process peer: dataset x of shape (0, 10, 10000, 200),
//       unlimited first dimension, chunked; per append H5Dset_extent and a
//       hyperslab H5Dwrite of row i; then H5Fclose and fsync. Timed from
//       before H5Fcreate until fsync returns.
//
// The array is filled before the clock starts (value = flat index mod 1000,
// plus the append number in element 0), so each append differs and neither
// side pays for producing data. Prints one JSON object: seconds, bytes.
#include <hdf5.h>
#include <simsink/client.hpp>

#include <numeric>
#include <vector>

#include "bench_common.hpp"

namespace {

using simsink::bench::now;

const char* kUsage =
    "bench_w2 --mode simsink --connect ENDPOINT [--appends 20] [--shape 10,10000,200]\n"
    "         [--campaign w2]\n"
    "bench_w2 --mode hdf5 --file PATH [--appends 20] [--shape 10,10000,200]\n"
    "         [--chunk 1,1,1250,200] [--fsync 1|0]\n";

struct Work {
    long appends;
    std::vector<unsigned long long> shape;
    std::vector<float> data;
    std::uint64_t elements;
};

Work prepare(const simsink::bench::Args& args) {
    Work w;
    w.appends = args.integer("appends", 20);
    w.shape = args.list("shape", {10, 10000, 200});
    w.elements = std::accumulate(w.shape.begin(), w.shape.end(), 1ULL, std::multiplies<>());
    w.data.resize(w.elements);
    for (std::uint64_t i = 0; i < w.elements; ++i) w.data[i] = float(i % 1000);
    return w;
}

void run_simsink(const simsink::bench::Args& args) {
    Work w = prepare(args);
    const std::string endpoint = args.need("connect");
    simsink::Dims dims(std::vector<std::uint64_t>(w.shape.begin(), w.shape.end()));

    const double t0 = now();
    simsink::Client client(endpoint);
    simsink::Run run = client.open_run(args.str("campaign", "w2"), {{"appends", w.appends}});
    for (long i = 0; i < w.appends; ++i) {
        w.data[0] = float(i);
        run.record("x", w.data.data(), dims);
    }
    const double loop = now() - t0;
    run.close();
    client.flush();
    const double total = now() - t0;
    simsink::bench::JsonLine()
        .str("mode", "simsink")
        .num("seconds", total)
        .num("loop", loop)
        .integer("bytes", static_cast<long long>(w.appends * w.elements * sizeof(float)))
        .integer("run_id", run.id())
        .print();
}

void check(herr_t rc, const char* what) {
    if (rc < 0) simsink::bench::die(std::string("HDF5: ") + what + " failed");
}

hid_t check_id(hid_t id, const char* what) {
    if (id < 0) simsink::bench::die(std::string("HDF5: ") + what + " failed");
    return id;
}

void run_hdf5(const simsink::bench::Args& args) {
    Work w = prepare(args);
    const std::string path = args.need("file");
    const bool sync = args.flag("fsync", true);
    std::vector<unsigned long long> chunk = args.list("chunk", {1, 1, 1250, 200});
    const int rank = int(w.shape.size()) + 1;
    if (int(chunk.size()) != rank) simsink::bench::die("--chunk needs one size per dimension");

    std::vector<hsize_t> dims(rank), maxdims(rank), cdims(rank), start(rank, 0), count(rank);
    dims[0] = 0;
    maxdims[0] = H5S_UNLIMITED;
    count[0] = 1;
    for (int k = 1; k < rank; ++k) dims[k] = maxdims[k] = count[k] = w.shape[k - 1];
    for (int k = 0; k < rank; ++k) cdims[k] = chunk[k];

    const double t0 = now();
    hid_t file =
        check_id(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), "H5Fcreate");
    hid_t space = check_id(H5Screate_simple(rank, dims.data(), maxdims.data()), "H5Screate");
    hid_t dcpl = check_id(H5Pcreate(H5P_DATASET_CREATE), "H5Pcreate");
    check(H5Pset_chunk(dcpl, rank, cdims.data()), "H5Pset_chunk");
    hid_t d = check_id(H5Dcreate2(file, "x", H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
                       "H5Dcreate2");
    H5Pclose(dcpl);
    H5Sclose(space);
    hid_t mspace = check_id(H5Screate_simple(rank, count.data(), nullptr), "H5Screate");
    for (long i = 0; i < w.appends; ++i) {
        w.data[0] = float(i);
        dims[0] = hsize_t(i) + 1;
        check(H5Dset_extent(d, dims.data()), "H5Dset_extent");
        hid_t fspace = check_id(H5Dget_space(d), "H5Dget_space");
        start[0] = hsize_t(i);
        check(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start.data(), nullptr, count.data(),
                                  nullptr),
              "H5Sselect_hyperslab");
        check(H5Dwrite(d, H5T_NATIVE_FLOAT, mspace, fspace, H5P_DEFAULT, w.data.data()),
              "H5Dwrite");
        H5Sclose(fspace);
    }
    const double loop = now() - t0;
    H5Sclose(mspace);
    H5Dclose(d);
    check(H5Fclose(file), "H5Fclose");
    if (sync) simsink::bench::fsync_file(path);
    const double total = now() - t0;
    simsink::bench::JsonLine()
        .str("mode", sync ? "hdf5+fsync" : "hdf5")
        .num("seconds", total)
        .num("loop", loop)
        .integer("bytes", static_cast<long long>(w.appends * w.elements * sizeof(float)))
        .print();
}

}  // namespace

int main(int argc, char** argv) {
    return simsink::bench::run_mode(argc, argv, kUsage, "bench_w2",
                                    {{"simsink", run_simsink}, {"hdf5", run_hdf5}});
}
