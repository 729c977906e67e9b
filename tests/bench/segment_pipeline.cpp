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
// `append` writes every commit at the end of the same THREADS files, kept
// open, fdatasyncs them per commit and drops the committed range (no new
// file, no rename, no directory fsync: not simsink's layout, a what-if).
//
//   segment_pipeline DIR [--commit 64] [--threads 2] [--mode serial|overlap|append]
//                    [--crc 1] [--drop 1] [--shared 1] [--prealloc 1]
//
// --shared 0 reads from private memory instead, --crc 0 / --drop 0 /
// --prealloc 0 leave that step out. Prints one JSON line; DIR is emptied
// (created if missing, its files removed afterwards). The figures are in
// docs/performance.md (eighth round).
#include <fcntl.h>
#include <isa-l/crc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr std::size_t kTotal = 808'000'000;
constexpr std::size_t kArena = std::size_t{512} << 20;
constexpr std::size_t kPiece = std::size_t{8} << 20;

double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "segment_pipeline: %s: %s\n", what.c_str(), std::strerror(errno));
    std::exit(1);
}

struct Options {
    std::string dir;
    std::size_t commit = std::size_t{64} << 20;
    int threads = 2;
    bool overlap = false;
    bool append = false;
    bool crc = true, drop = true, shared = true, prealloc = true;
};

Options parse(int argc, char** argv) {
    const char* usage =
        "usage: segment_pipeline DIR [--commit MIB] [--threads N] [--mode serial|overlap|append]\n"
        "                        [--crc 1|0] [--drop 1|0] [--shared 1|0] [--prealloc 1|0]\n";
    if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
        std::fputs(usage, argc < 2 ? stderr : stdout);
        std::exit(argc < 2 ? 2 : 0);
    }
    Options o;
    o.dir = argv[1];
    for (int i = 2; i < argc; i += 2) {
        if (i + 1 >= argc) {
            std::fprintf(stderr, "segment_pipeline: %s needs a value\n%s", argv[i], usage);
            std::exit(2);
        }
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--commit") o.commit = std::stoul(v) << 20;
        else if (k == "--threads") o.threads = std::max(1, std::stoi(v));
        else if (k == "--mode" && (v == "serial" || v == "overlap" || v == "append")) {
            o.overlap = v == "overlap";
            o.append = v == "append";
        }
        else if (k == "--crc") o.crc = v != "0";
        else if (k == "--drop") o.drop = v != "0";
        else if (k == "--shared") o.shared = v != "0";
        else if (k == "--prealloc") o.prealloc = v != "0";
        else {
            std::fprintf(stderr, "segment_pipeline: unknown option %s %s\n%s", k.c_str(),
                         v.c_str(), usage);
            std::exit(2);
        }
    }
    if (o.commit == 0) o.commit = kPiece;
    return o;
}

void fsync_dir(const std::string& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd < 0 || ::fsync(fd) != 0) die("fsync " + dir);
    ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);
    std::filesystem::create_directories(o.dir);

    // The source: a warm memfd, as a lent arena is, or private memory.
    const unsigned char* src = nullptr;
    if (o.shared) {
        const int mfd = ::memfd_create("segment_pipeline", 0);
        if (mfd < 0 || ::ftruncate(mfd, kArena) != 0) die("memfd");
        void* w = ::mmap(nullptr, kArena, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
        if (w == MAP_FAILED) die("mmap");
        std::memset(w, 1, kArena);
        ::munmap(w, kArena);
        void* r = ::mmap(nullptr, kArena, PROT_READ, MAP_SHARED, mfd, 0);
        if (r == MAP_FAILED) die("mmap");
        src = static_cast<const unsigned char*>(r);
    } else {
        void* p = ::mmap(nullptr, kArena, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                         -1, 0);
        if (p == MAP_FAILED) die("mmap");
        std::memset(p, 1, kArena);
        src = static_cast<const unsigned char*>(p);
    }

    // One segment file: [offset, offset + bytes) of the stream of bytes.
    auto write_file = [&](const std::string& path, std::size_t offset, std::size_t bytes,
                          std::atomic<int>& copied) {
        const std::string tmp = path + ".tmp";
        const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) die("open " + tmp);
        if (o.prealloc && ::fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, bytes + 65536) != 0)
            die("fallocate " + tmp);
        std::uint32_t crc = 0;
        for (std::size_t done = 0; done < bytes;) {
            const std::size_t n = std::min(kPiece, bytes - done);
            // Wraps around the arena, as a client's buffers are reused.
            auto* p = const_cast<unsigned char*>(src + (offset + done) % (kArena - kPiece));
            if (o.shared) ::madvise(p, n, MADV_POPULATE_READ);
            if (o.crc) crc = crc32_gzip_refl(crc, p, n);
            // 4 KiB in, as HDF5's metadata comes first in a segment.
            if (::pwrite(fd, p, n, static_cast<off_t>(4096 + done)) != static_cast<ssize_t>(n))
                die("pwrite " + tmp);
            ::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
            if (o.shared) ::madvise(p, n, MADV_DONTNEED);
            done += n;
        }
        copied.fetch_add(1);
        if (::fdatasync(fd) != 0) die("fdatasync " + tmp);
        if (o.drop) ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        ::close(fd);
        if (::rename(tmp.c_str(), path.c_str()) != 0) die("rename " + tmp);
        (void)crc;
    };

    // append: one open file per thread; each commit adds its part and is
    // fdatasynced, then that range is dropped from the page cache.
    auto append_part = [&](int fd, off_t& at, std::size_t offset, std::size_t bytes) {
        std::uint32_t crc = 0;
        const off_t start = at;
        for (std::size_t done = 0; done < bytes;) {
            const std::size_t n = std::min(kPiece, bytes - done);
            auto* p = const_cast<unsigned char*>(src + (offset + done) % (kArena - kPiece));
            if (o.shared) ::madvise(p, n, MADV_POPULATE_READ);
            if (o.crc) crc = crc32_gzip_refl(crc, p, n);
            if (::pwrite(fd, p, n, at) != static_cast<ssize_t>(n)) die("pwrite");
            ::sync_file_range(fd, at, static_cast<off_t>(n), SYNC_FILE_RANGE_WRITE);
            if (o.shared) ::madvise(p, n, MADV_DONTNEED);
            at += static_cast<off_t>(n);
            done += n;
        }
        if (::fdatasync(fd) != 0) die("fdatasync");
        if (o.drop) ::posix_fadvise(fd, start, at - start, POSIX_FADV_DONTNEED);
        (void)crc;
    };

    const double t0 = now();
    std::vector<int> files;
    std::vector<off_t> ends;
    if (o.append) {
        for (int t = 0; t < o.threads; ++t) {
            const std::string path = o.dir + "/seg-append-" + std::to_string(t) + ".h5";
            const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd < 0) die("open " + path);
            files.push_back(fd);
            ends.push_back(4096);
        }
        fsync_dir(o.dir);
    }
    std::vector<std::thread> previous;  // overlap: the commit before, still in its fsyncs
    std::size_t offset = 0;
    int commits = 0;
    while (offset < kTotal) {
        const std::size_t bytes = std::min(o.commit, kTotal - offset);
        std::atomic<int> copied{0};
        std::vector<std::thread> threads;
        const std::size_t part = bytes / o.threads;
        for (int t = 0; t < o.threads; ++t) {
            const std::size_t n = t + 1 == o.threads ? bytes - part * t : part;
            if (o.append) {
                threads.emplace_back(append_part, files[t], std::ref(ends[t]), offset + part * t, n);
                continue;
            }
            threads.emplace_back(write_file,
                                 o.dir + "/seg-" + std::to_string(commits) + "-" +
                                     std::to_string(t) + ".h5",
                                 offset + part * t, n, std::ref(copied));
        }
        if (o.overlap) {
            while (copied.load() < o.threads)
                std::this_thread::sleep_for(std::chrono::microseconds(200));
            for (auto& t : previous) t.join();
            if (!previous.empty()) fsync_dir(o.dir);
            previous = std::move(threads);
        } else {
            for (auto& t : threads) t.join();
            if (!o.append) fsync_dir(o.dir);
        }
        offset += bytes;
        ++commits;
    }
    for (auto& t : previous) t.join();
    fsync_dir(o.dir);
    const double seconds = now() - t0;
    for (int fd : files) ::close(fd);

    for (const auto& e : std::filesystem::directory_iterator(o.dir))
        if (e.path().filename().string().starts_with("seg-")) std::filesystem::remove(e.path());
    std::printf(
        "{\"mode\": \"%s\", \"commit_mib\": %zu, \"threads\": %d, \"crc\": %d, \"drop\": %d, "
        "\"shared\": %d, \"prealloc\": %d, \"commits\": %d, \"bytes\": %zu, \"seconds\": %.3f}\n",
        o.append ? "append" : o.overlap ? "overlap" : "serial", o.commit >> 20, o.threads, int(o.crc), int(o.drop),
        int(o.shared), int(o.prealloc), commits, kTotal, seconds);
}
