// The segment writers' recipe on its own, without a client, ZeroMQ, HDF5,
// the catalog or views: how fast can the daemon's way of writing commits
// make 808 MB (the W1 volume) durable on this disk?
//
// The bytes come from a memfd of 512 MiB, touched before (a client's warm
// arena), read through a read-only shared mapping. They are cut into commits
// of COMMIT MiB; each commit is THREADS files, each written by a thread of
// its own as simsinkd's segment writers do: the file preallocated
// (fallocate KEEP_SIZE), then per 8 MiB piece MADV_POPULATE_READ, CRC-32,
// pwrite, sync_file_range(WRITE), MADV_DONTNEED; then fdatasync, the pages
// dropped (POSIX_FADV_DONTNEED) and the file renamed; then the directory is
// fsynced. `serial` starts a commit once the one before is done (simsinkd);
// `overlap` starts it once the one before has handed all its bytes to the
// kernel, so its copies overlap the previous one's wait for the disk;
// `gate` starts it as `overlap` does, but holds its writeback (no
// sync_file_range, and its fdatasync waits) until the one before is durable
// and its directory fsynced, so that the one before waits for nothing behind
// it (a what-if of the twelfth round);
// `append` writes every commit at the end of the same THREADS files, kept
// open, fdatasyncs them per commit and drops the committed range (no new
// file, no rename, no directory fsync: not simsink's layout, a what-if).
//
//   segment_pipeline --dir DIR [--commit 64] [--threads 2]
//                    [--mode serial|overlap|gate|append]
//                    [--crc 1] [--drop 1] [--shared 1] [--prealloc 1]
//                    [--sendfile 0] [--pread KIB]
//
// --shared 0 reads from private memory instead, --crc 0 / --drop 0 /
// --prealloc 0 leave that step out. Two other ways of reading the memfd,
// without mapping it: --sendfile 1 (with --crc 0: the kernel copies from the
// memfd into the page cache) and --pread KIB (pread into a buffer of KIB
// KiB per thread, then checksum and pwrite from it). Prints one JSON line
// with the wall and CPU seconds of the writing; DIR is created if missing,
// and the files written are removed afterwards. The figures are in
// docs/performance.md (eighth, twelfth and thirteenth rounds).
#include <fcntl.h>
#include <isa-l/crc.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.hpp"

namespace {

using simsink::bench::now;

constexpr std::size_t kTotal = 808'000'000;
constexpr std::size_t kArena = std::size_t{512} << 20;
constexpr std::size_t kPiece = std::size_t{8} << 20;

const char* kUsage =
    "segment_pipeline --dir DIR [--commit MIB] [--threads N] [--mode serial|overlap|gate|append]\n"
    "                 [--crc 1|0] [--drop 1|0] [--shared 1|0] [--prealloc 1|0]\n"
    "                 [--sendfile 1|0] [--pread KIB]\n";

[[noreturn]] void fail(const std::string& what) {
    simsink::bench::die_errno("segment_pipeline: " + what);
}

void fsync_dir(const std::string& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd < 0 || ::fsync(fd) != 0) fail("fsync " + dir);
    ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
    const simsink::bench::Args args(argc, argv, kUsage);
    const std::string dir = args.need("dir");
    const std::string mode = args.str("mode", "serial");
    if (mode != "serial" && mode != "overlap" && mode != "append" && mode != "gate")
        simsink::bench::die("segment_pipeline: unknown --mode " + mode + "\n" + kUsage);
    const bool gate = mode == "gate";
    const bool overlap = mode == "overlap" || gate, append = mode == "append";
    const std::size_t commit = std::max<std::size_t>(1, args.integer("commit", 64)) << 20;
    const int threads = std::max(1, static_cast<int>(args.integer("threads", 2)));
    const bool crc = args.flag("crc", true), drop = args.flag("drop", true),
               shared = args.flag("shared", true), prealloc = args.flag("prealloc", true),
               use_sendfile = args.flag("sendfile", false);
    const std::size_t pread_chunk = static_cast<std::size_t>(args.integer("pread", 0)) << 10;
    if (pread_chunk && !shared)
        simsink::bench::die("segment_pipeline: --pread needs --shared 1\n" + std::string(kUsage));
    if (use_sendfile && (!shared || crc))
        simsink::bench::die("segment_pipeline: --sendfile 1 needs --shared 1 and --crc 0\n" +
                            std::string(kUsage));
    std::filesystem::create_directories(dir);

    // The source: a warm memfd, as a lent arena is, or private memory.
    const unsigned char* src = nullptr;
    int mfd = -1;
    if (shared) {
        mfd = ::memfd_create("segment_pipeline", 0);
        if (mfd < 0 || ::ftruncate(mfd, kArena) != 0) fail("memfd");
        void* w = ::mmap(nullptr, kArena, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
        if (w == MAP_FAILED) fail("mmap");
        std::memset(w, 1, kArena);
        ::munmap(w, kArena);
        void* r = ::mmap(nullptr, kArena, PROT_READ, MAP_SHARED, mfd, 0);
        if (r == MAP_FAILED) fail("mmap");
        src = static_cast<const unsigned char*>(r);
    } else {
        void* p = ::mmap(nullptr, kArena, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                         -1, 0);
        if (p == MAP_FAILED) fail("mmap");
        std::memset(p, 1, kArena);
        src = static_cast<const unsigned char*>(p);
    }

    // Bytes [offset, offset + bytes) of the stream into `fd` at `at`, piece
    // by piece as a segment writer does, then fdatasync and the range
    // dropped from the page cache.
    auto write_part = [&](int fd, off_t at, std::size_t offset, std::size_t bytes,
                          std::atomic<int>* copied, const std::atomic<bool>* go) {
        std::uint32_t sum = 0;
        for (std::size_t done = 0; done < bytes;) {
            const std::size_t n = std::min(kPiece, bytes - done);
            // Wraps around the arena, as a client's buffers are reused.
            const std::size_t from = (offset + done) % (kArena - kPiece);
            auto* p = const_cast<unsigned char*>(src + from);
            const off_t to = at + static_cast<off_t>(done);
            if (use_sendfile) {
                // From the memfd to the file without a mapping: the kernel
                // copies from the memfd's pages into the page cache.
                if (::lseek(fd, to, SEEK_SET) != to) fail("lseek");
                off_t in = static_cast<off_t>(from);
                for (std::size_t left = n; left > 0;) {
                    const ssize_t k = ::sendfile(fd, mfd, &in, left);
                    if (k <= 0) fail("sendfile");
                    left -= static_cast<std::size_t>(k);
                }
            } else if (pread_chunk) {
                // Read from the memfd into a small buffer of this thread's,
                // which stays in the CPU's cache: no mapping of the arena.
                thread_local std::vector<unsigned char> buf;
                buf.resize(pread_chunk);
                for (std::size_t k = 0; k < n; k += pread_chunk) {
                    const std::size_t m = std::min(pread_chunk, n - k);
                    if (::pread(mfd, buf.data(), m, static_cast<off_t>(from + k)) !=
                        static_cast<ssize_t>(m))
                        fail("pread");
                    if (crc) sum = crc32_gzip_refl(sum, buf.data(), m);
                    simsink::bench::pwrite_all(fd, buf.data(), m, to + static_cast<off_t>(k),
                                               "segment_pipeline: pwrite");
                }
            } else {
                if (shared) ::madvise(p, n, MADV_POPULATE_READ);
                if (crc) sum = crc32_gzip_refl(sum, p, n);
                simsink::bench::pwrite_all(fd, p, n, to, "segment_pipeline: pwrite");
            }
            if (!go || go->load())
                ::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);  // as TmpFile::write_raw
            // The mapping's entries go, as the segment writers drop theirs.
            if (shared && !use_sendfile && !pread_chunk) ::madvise(p, n, MADV_DONTNEED);
            done += n;
        }
        if (copied) copied->fetch_add(1);
        if (go)
            while (!go->load()) std::this_thread::sleep_for(std::chrono::microseconds(100));
        if (::fdatasync(fd) != 0) fail("fdatasync");
        if (drop) ::posix_fadvise(fd, at, static_cast<off_t>(bytes), POSIX_FADV_DONTNEED);
        (void)sum;
    };

    // serial and overlap: one new segment file, renamed into place.
    auto write_file = [&](const std::string& path, std::size_t offset, std::size_t bytes,
                          std::atomic<int>& copied, const std::atomic<bool>* go) {
        const std::string tmp = path + ".tmp";
        const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) fail("open " + tmp);
        if (prealloc && ::fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, bytes + 65536) != 0)
            fail("fallocate " + tmp);
        // 4 KiB in, as HDF5's metadata comes first in a segment.
        write_part(fd, 4096, offset, bytes, &copied, go);
        ::close(fd);
        if (::rename(tmp.c_str(), path.c_str()) != 0) fail("rename " + tmp);
    };

    const double t0 = now(), cpu0 = simsink::bench::cpu_seconds();
    // append: one open file per thread; each commit adds its part at its end.
    std::vector<int> files;
    std::vector<off_t> ends;
    if (append) {
        for (int t = 0; t < threads; ++t) {
            const std::string path = dir + "/seg-append-" + std::to_string(t) + ".h5";
            const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd < 0) fail("open " + path);
            files.push_back(fd);
            ends.push_back(4096);
        }
        fsync_dir(dir);
    }
    std::vector<std::thread> previous;  // overlap: the commit before, still in its fsyncs
    std::vector<std::unique_ptr<std::atomic<bool>>> gates;
    std::size_t offset = 0;
    int commits = 0;
    while (offset < kTotal) {
        const std::size_t bytes = std::min(commit, kTotal - offset);
        std::atomic<int> copied{0};
        // gate: this commit's writeback waits until the one before is durable.
        auto go = std::make_unique<std::atomic<bool>>(!gate || previous.empty());
        std::vector<std::thread> writers;
        const std::size_t part = bytes / threads;
        for (int t = 0; t < threads; ++t) {
            const std::size_t n = t + 1 == threads ? bytes - part * t : part;
            if (append) {
                writers.emplace_back(write_part, files[t], ends[t], offset + part * t, n,
                                     nullptr, nullptr);
                ends[t] += static_cast<off_t>(n);
            } else {
                writers.emplace_back(write_file,
                                     dir + "/seg-" + std::to_string(commits) + "-" +
                                         std::to_string(t) + ".h5",
                                     offset + part * t, n, std::ref(copied),
                                     gate ? go.get() : nullptr);
            }
        }
        if (overlap) {
            while (copied.load() < threads)
                std::this_thread::sleep_for(std::chrono::microseconds(200));
            for (auto& t : previous) t.join();
            if (!previous.empty()) fsync_dir(dir);
            go->store(true);
            previous = std::move(writers);
            gates.push_back(std::move(go));
        } else {
            for (auto& t : writers) t.join();
            if (!append) fsync_dir(dir);
        }
        offset += bytes;
        ++commits;
    }
    for (auto& t : previous) t.join();
    fsync_dir(dir);
    const double seconds = now() - t0, cpu = simsink::bench::cpu_seconds() - cpu0;
    for (int fd : files) ::close(fd);

    for (const auto& e : std::filesystem::directory_iterator(dir))
        if (e.path().filename().string().starts_with("seg-")) std::filesystem::remove(e.path());
    simsink::bench::JsonLine()
        .str("mode", mode)
        .integer("commit_mib", static_cast<long long>(commit >> 20))
        .integer("threads", threads)
        .integer("crc", crc)
        .integer("drop", drop)
        .integer("shared", shared)
        .integer("prealloc", prealloc)
        .integer("sendfile", use_sendfile)
        .integer("pread_kib", static_cast<long long>(pread_chunk >> 10))
        .num("cpu_seconds", cpu)
        .integer("commits", commits)
        .integer("bytes", static_cast<long long>(kTotal))
        .num("seconds", seconds)
        .print();
}
