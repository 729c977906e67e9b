// Buffered against O_DIRECT writes of the same bytes, as a segment writer
// would do them: THREADS files written at once, CHUNK_MIB per pwrite, then
// fdatasync; buffered with sync_file_range every chunk and the pages dropped
// afterwards (as simsinkd does), direct from 4 KiB-aligned memory, or
// "directcopy": through an aligned bounce buffer, as unaligned payloads
// would need. Prints wall time, MB/s and this process's CPU time, so the
// disk's pace and the CPU each way cost can be set side by side
// (docs/performance.md, sixth round).
//
//   direct_io buffered|direct|directcopy THREADS MIB [CHUNK_MIB] [DIR]
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

double seconds(timeval t) {
    return double(t.tv_sec) + double(t.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr,
                     "usage: direct_io buffered|direct|directcopy THREADS MIB [CHUNK_MIB] [DIR]\n");
        return 2;
    }
    const std::string mode = argv[1];
    if (mode != "buffered" && mode != "direct" && mode != "directcopy") {
        std::fprintf(stderr, "direct_io: unknown mode '%s'\n", mode.c_str());
        return 2;
    }
    const int threads = std::max(1, std::atoi(argv[2]));
    const std::size_t total = std::size_t(std::atol(argv[3])) << 20;
    const std::size_t chunk = std::size_t(argc > 4 ? std::atol(argv[4]) : 8) << 20;
    const std::string dir = argc > 5 ? argv[5] : ".";
    const std::size_t part = total / threads / chunk * chunk;
    if (part == 0) {
        std::fprintf(stderr, "direct_io: MIB must be at least THREADS x CHUNK_MIB\n");
        return 2;
    }

    // The source, like a client's arena: page-aligned and touched.
    auto* src = static_cast<char*>(std::aligned_alloc(4096, part * threads));
    std::memset(src, 1, part * threads);
    rusage r0{}, r1{};
    getrusage(RUSAGE_SELF, &r0);
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> workers;
    std::vector<int> failed(threads, 0);
    for (int t = 0; t < threads; ++t)
        workers.emplace_back([&, t] {
            const std::string path = dir + "/direct_io-" + std::to_string(t) + ".tmp";
            const int flags = O_WRONLY | O_CREAT | O_TRUNC | (mode == "buffered" ? 0 : O_DIRECT);
            const int fd = ::open(path.c_str(), flags, 0644);
            if (fd < 0) {
                std::perror(path.c_str());
                failed[t] = 1;
                return;
            }
            auto* bounce = static_cast<char*>(std::aligned_alloc(4096, chunk));
            for (std::size_t off = 0; off < part && !failed[t]; off += chunk) {
                const char* p = src + t * part + off;
                if (mode == "directcopy") {
                    std::memcpy(bounce, p, chunk);
                    p = bounce;
                }
                if (::pwrite(fd, p, chunk, off) != static_cast<ssize_t>(chunk)) {
                    std::perror("pwrite");
                    failed[t] = 1;
                }
                if (mode == "buffered") ::sync_file_range(fd, off, chunk, SYNC_FILE_RANGE_WRITE);
            }
            if (::fdatasync(fd) != 0) failed[t] = 1;
            if (mode == "buffered") ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
            ::close(fd);
            ::unlink(path.c_str());
            std::free(bounce);
        });
    for (auto& w : workers) w.join();
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    getrusage(RUSAGE_SELF, &r1);
    for (int f : failed)
        if (f) return 1;
    const double mb = double(part * threads) / 1e6;
    std::printf(
        "{\"mode\": \"%s\", \"threads\": %d, \"chunk_mib\": %zu, \"bytes\": %zu, \"seconds\": "
        "%.3f, "
        "\"mb_per_s\": %.0f, \"cpu_user\": %.3f, \"cpu_sys\": %.3f}\n",
        mode.c_str(), threads, chunk >> 20, part * threads, wall, mb / wall,
        seconds(r1.ru_utime) - seconds(r0.ru_utime), seconds(r1.ru_stime) - seconds(r0.ru_stime));
    std::free(src);
    return 0;
}
