// What it costs the daemon to move bytes from a client's shared memory into
// a segment file, each way it could: 800 MiB in a memfd (touched before, as
// a client's arena is) written to a new file in DIR in pieces of 8 MiB, each
// piece followed by sync_file_range(WRITE), then fdatasync and the pages
// dropped, as simsinkd's segment writers do. Four rounds per mode; prints
// wall and CPU seconds of each.
//
//   shm_to_file MODE DIR
//     map       map the memfd, and per piece: MADV_POPULATE_READ, CRC-32,
//               pwrite from the mapping, MADV_DONTNEED (what simsinkd does)
//     map-nocrc the same without the CRC
//     pread     pread 256 KiB at a time into a private buffer, CRC-32, pwrite
//     sendfile  sendfile(2) from the memfd, no mapping and no CRC
//     private   pwrite from a private buffer touched before (the floor: no
//               shared memory to read at all)
//
// The figures are in docs/performance.md (seventh round).
#include <fcntl.h>
#include <isa-l/crc.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "bench_common.hpp"

namespace {

constexpr std::size_t kTotal = std::size_t{800} << 20;
constexpr std::size_t kPiece = std::size_t{8} << 20;
constexpr std::size_t kBounce = std::size_t{256} << 10;

using simsink::bench::cpu_seconds;
using simsink::bench::now;

[[noreturn]] void fail(const std::string& what) {
    simsink::bench::die_errno("shm_to_file: " + what);
}

}  // namespace

int main(int argc, char** argv) {
    const std::string modes = " map map-nocrc pread sendfile private ";
    if (argc != 3 || modes.find(" " + std::string(argv[1]) + " ") == std::string::npos) {
        std::fprintf(stderr, "usage: shm_to_file map|map-nocrc|pread|sendfile|private DIR\n");
        return 2;
    }
    const std::string mode = argv[1];
    const std::string path = std::string(argv[2]) + "/shm_to_file.tmp";

    const int mem = ::memfd_create("shm_to_file", 0);
    if (mem < 0 || ::ftruncate(mem, kTotal) != 0) fail("memfd");
    auto* map = static_cast<unsigned char*>(
        ::mmap(nullptr, kTotal, PROT_READ | PROT_WRITE, MAP_SHARED, mem, 0));
    if (map == MAP_FAILED) fail("mmap");
    std::memset(map, 3, kTotal);  // the client wrote it
    ::madvise(map, kTotal, MADV_DONTNEED);  // and the daemon has not mapped it yet
    auto* priv = static_cast<unsigned char*>(std::aligned_alloc(4096, kPiece));
    if (!priv) fail("aligned_alloc");
    std::memset(priv, 3, kPiece);

    for (int round = 0; round < 4; ++round) {
        const int f = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
        if (f < 0) fail("open " + path);
        const double t0 = now(), c0 = cpu_seconds();
        std::uint32_t crc = 0;
        for (std::size_t at = 0; at < kTotal; at += kPiece) {
            unsigned char* p = map + at;
            bool ok = true;
            if (mode == "map" || mode == "map-nocrc") {
                ::madvise(p, kPiece, MADV_POPULATE_READ);
                if (mode == "map") crc = crc32_gzip_refl(crc, p, kPiece);
                ok = ::pwrite(f, p, kPiece, static_cast<off_t>(at)) == ssize_t(kPiece);
                ::madvise(p, kPiece, MADV_DONTNEED);
            } else if (mode == "pread") {
                for (std::size_t d = 0; ok && d < kPiece; d += kBounce) {
                    const off_t o = static_cast<off_t>(at + d);
                    ok = ::pread(mem, priv, kBounce, o) == ssize_t(kBounce);
                    crc = crc32_gzip_refl(crc, priv, kBounce);
                    ok = ok && ::pwrite(f, priv, kBounce, o) == ssize_t(kBounce);
                }
            } else if (mode == "sendfile") {
                off_t in = static_cast<off_t>(at);
                ok = ::lseek(f, static_cast<off_t>(at), SEEK_SET) >= 0;
                for (std::size_t left = kPiece; ok && left > 0;) {
                    const ssize_t n = ::sendfile(f, mem, &in, left);
                    ok = n > 0;
                    left -= ok ? std::size_t(n) : 0;
                }
            } else {
                ok = ::pwrite(f, priv, kPiece, static_cast<off_t>(at)) == ssize_t(kPiece);
            }
            if (!ok) fail("write " + path);
            ::sync_file_range(f, static_cast<off_t>(at), kPiece, SYNC_FILE_RANGE_WRITE);
        }
        if (::fdatasync(f) != 0) fail("fdatasync " + path);
        ::posix_fadvise(f, 0, 0, POSIX_FADV_DONTNEED);
        std::printf("{\"mode\": \"%s\", \"round\": %d, \"seconds\": %.3f, \"cpu\": %.3f, "
                    "\"crc\": \"%08x\"}\n",
                    mode.c_str(), round, now() - t0, cpu_seconds() - c0, crc);
        ::close(f);
        ::unlink(path.c_str());
    }
    return 0;
}
