// What a commit boundary costs the disk at hand, in three parts: MIB of data
// copied into the page cache with writeback started every 8 MiB (as the
// segment writers do), then the wait until the disk has all of it
// (sync_file_range WAIT_AFTER, no cache flush), then fdatasync, which is
// left with the disk's cache flush alone. A cheap last part says that the
// flush is not what a commit pays for; the wait for the tail is
// (docs/performance.md, twelfth round).
//
//   flush_cost --file PATH [--mib 64]
//
// Prints one JSON line; the file is removed afterwards.
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "bench_common.hpp"

int main(int argc, char** argv) {
    const simsink::bench::Args args(argc, argv, "flush_cost --file PATH [--mib 64]\n");
    const std::string path = args.need("file");
    const long mib = args.integer("mib", 64);
    if (mib < 1) simsink::bench::die("flush_cost: --mib must be at least 1");
    constexpr std::size_t kPiece = std::size_t{8} << 20;
    const std::vector<unsigned char> piece(kPiece, 7);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) simsink::bench::die_errno("flush_cost: open " + path);
    const std::size_t total = static_cast<std::size_t>(mib) << 20;
    const double t0 = simsink::bench::now();
    for (std::size_t at = 0; at < total; at += kPiece) {
        const std::size_t n = std::min(kPiece, total - at);
        simsink::bench::pwrite_all(fd, piece.data(), n, static_cast<off_t>(at),
                                   "flush_cost: pwrite");
        ::sync_file_range(fd, static_cast<off_t>(at), static_cast<off_t>(n),
                          SYNC_FILE_RANGE_WRITE);
    }
    const double t1 = simsink::bench::now();
    if (::sync_file_range(fd, 0, 0,
                          SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                              SYNC_FILE_RANGE_WAIT_AFTER) != 0)
        simsink::bench::die_errno("flush_cost: sync_file_range");
    const double t2 = simsink::bench::now();
    if (::fdatasync(fd) != 0) simsink::bench::die_errno("flush_cost: fdatasync");
    const double t3 = simsink::bench::now();
    ::close(fd);
    ::unlink(path.c_str());
    simsink::bench::JsonLine()
        .integer("mib", mib)
        .num("copy_ms", (t1 - t0) * 1e3)
        .num("writeback_wait_ms", (t2 - t1) * 1e3)
        .num("fdatasync_ms", (t3 - t2) * 1e3)
        .num("seconds", t3 - t0)
        .print();
}
