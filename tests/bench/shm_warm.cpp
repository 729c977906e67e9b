// What a new worker process pays to back its arena: a child process maps a
// memfd and fills its page tables (MADV_POPULATE_WRITE), first on a fresh
// memfd, then on the same memfd after an earlier child touched its pages
// (what a lent, warm arena gives), then with a write of every byte. Prints
// seconds per case and repeat. The numbers behind the lent arenas of
// docs/performance.md ("Third round").
//   shm_warm [MiB] [repeats]       (default 256 MiB, 3 repeats)
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

namespace {

double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// In a new process: map `fd`, back it 1 MiB at a time as the client carves
// batch buffers, optionally write every byte; returns the child's seconds.
double in_child(int fd, std::size_t size, bool write_all) {
    int p[2];
    if (pipe(p) != 0) std::exit(1);
    pid_t pid = fork();
    if (pid == 0) {
        double t0 = now();
        auto* b = static_cast<char*>(mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
        if (b == MAP_FAILED) _exit(1);
        for (std::size_t o = 0; o < size; o += 1 << 20) madvise(b + o, 1 << 20, MADV_POPULATE_WRITE);
        if (write_all) std::memset(b, 1, size);
        double t = now() - t0;
        [[maybe_unused]] auto n = write(p[1], &t, sizeof t);
        _exit(0);
    }
    double t = -1;
    [[maybe_unused]] auto n = read(p[0], &t, sizeof t);
    waitpid(pid, nullptr, 0);
    close(p[0]);
    close(p[1]);
    return t;
}

}  // namespace

int main(int argc, char** argv) {
    const std::size_t size = (argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 256) << 20;
    const int repeats = argc > 2 ? std::atoi(argv[2]) : 3;
    std::printf("MiB %zu: fresh populate | warm populate | fresh populate+write | warm populate+write\n",
                size >> 20);
    for (int r = 0; r < repeats; ++r) {
        double t[4];
        for (int w = 0; w < 2; ++w) {
            int fd = memfd_create("shm_warm", MFD_CLOEXEC);
            if (fd < 0 || ftruncate(fd, static_cast<off_t>(size)) != 0) return 1;
            t[w * 2] = in_child(fd, size, w == 1);      // fresh pages
            t[w * 2 + 1] = in_child(fd, size, w == 1);  // the pages the first child left
            close(fd);
        }
        std::printf("%.3f | %.3f | %.3f | %.3f\n", t[0], t[1], t[2], t[3]);
    }
}
