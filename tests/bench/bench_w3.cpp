// W3 of shared/WORKLOADS.md, many writers: CLIENTS worker processes, each
// its own run (or Redis list), together writing ROWS rows of ROW_BYTES
// bytes (default the W1 volume: 1,000,000 x 808 B; the 8 MB case is
// --rows 100 --row-bytes 8080000).
//
//   bench_w3 --mode simsink --connect ENDPOINT --clients N [--rows R] [--row-bytes B]
//            [--campaign w3] [--max-unacked SIZE] [--batch-bytes SIZE] [--shm 1|0]
//            [--workers FILE]
//       Each worker: Client, open_run, one record per row, close, flush.
//       --max-unacked and --batch-bytes set the client's Options (default:
//       the library's defaults); SIZE takes a K, M or G suffix (powers of 1024).
//       808-byte rows are recorded as a W1 step (t float64 + y float64[100]),
//       other sizes as one float64 row of B/8 elements.
//   bench_w3 --mode redis --redis HOST:PORT|unix:PATH --clients N [--rows R]
//            [--row-bytes B] [--pipeline P]
//       Each worker: hiredis connection, RPUSH w3:<i> <row> per row,
//       pipelined P commands deep (default: as many as fit in 808,000 bytes,
//       at least 1), until the last reply.
//
// The workers are forked first and wait on a barrier; the clock starts when
// they are released and stops when the last one is done (simsink: its
// flush() returned, every row committed and fsynced; Redis: its last reply
// arrived, the rows are in Redis's memory and its AOF write buffer, fsynced
// within the next second with appendfsync everysec). Rows are split as
// evenly as possible. Prints one JSON object: seconds, bytes, each
// worker's own seconds, and where they went (setup, record loop, the wait
// for the last acknowledgement or reply), median and max over the workers.
// --workers FILE also writes each worker's times after the release.
#include <simsink/client.hpp>

#ifdef SIMSINK_BENCH_HIREDIS
#include <hiredis/hiredis.h>
#endif

#include <algorithm>
#include <span>
#include <vector>

#include "bench_common.hpp"

namespace {

using simsink::bench::now;
using simsink::bench::WorkerResult;

const char* kUsage =
    "bench_w3 --mode simsink --connect ENDPOINT --clients N [--rows R] [--row-bytes B]\n"
    "         [--campaign w3] [--max-unacked SIZE] [--batch-bytes SIZE] [--shm 1|0]\n"
    "         [--workers FILE]\n"
    "bench_w3 --mode redis --redis HOST:PORT|unix:PATH --clients N [--rows R] [--row-bytes B]\n"
    "         [--pipeline P]\n";

struct Plan {
    int clients;
    long long rows;
    long long row_bytes;
    simsink::Options options;  // simsink only
    std::string campaign;
    long long rows_of(int i) const { return rows / clients + (i < rows % clients ? 1 : 0); }
};

// A row's bytes: step-dependent first elements, fixed rest.
std::vector<double> make_row(long long row_bytes) {
    std::vector<double> row(std::max<long long>(1, row_bytes / 8));
    for (std::size_t i = 0; i < row.size(); ++i) row[i] = 0.25 * double(i % 1000);
    return row;
}

WorkerResult simsink_worker(const std::string& endpoint, const Plan& plan, int i) {
    const long long rows = plan.rows_of(i);
    std::vector<double> row = make_row(plan.row_bytes);
    WorkerResult r;
    r.started = now();
    {
        simsink::Client client(endpoint, plan.options);
        r.connected = now() - r.started;
        simsink::Run run = client.open_run(plan.campaign, {{"worker", i}, {"rows", rows}});
        r.setup = now() - r.started;
        if (plan.row_bytes == 808) {
            std::span<const double> y(row.data() + 1, 100);
            for (long long s = 0; s < rows; ++s) {
                row[1] = double(s);
                run.record("t", 1e-3 * double(s));
                run.record("y", y);
            }
        } else {
            std::span<const double> y(row);
            for (long long s = 0; s < rows; ++s) {
                row[0] = double(s);
                run.record("y", y);
            }
        }
        r.loop = now() - r.started;
        run.close();
        client.flush();
        r.finished = now();
    }
    return r;
}

#ifdef SIMSINK_BENCH_HIREDIS
redisContext* redis_connect(const std::string& where) {
    redisContext* c = where.rfind("unix:", 0) == 0
                          ? redisConnectUnix(where.substr(5).c_str())
                          : redisConnect(where.substr(0, where.rfind(':')).c_str(),
                                         std::stoi(where.substr(where.rfind(':') + 1)));
    if (!c || c->err) throw std::runtime_error("redis connect " + where);
    return c;
}

WorkerResult redis_worker(const std::string& where, const Plan& plan, long long pipeline, int i) {
    const long long rows = plan.rows_of(i);
    std::vector<double> row = make_row(plan.row_bytes);
    const std::string key = "w3:" + std::to_string(i);
    WorkerResult r;
    r.started = now();
    redisContext* c = redis_connect(where);
    r.setup = now() - r.started;
    r.connected = r.setup;
    // The value is the row's own memory: no copy on either side.
    const char* argv[3] = {"RPUSH", key.c_str(), reinterpret_cast<const char*>(row.data())};
    const size_t lens[3] = {5, key.size(), static_cast<size_t>(plan.row_bytes)};
    long long pending = 0;
    auto drain = [&](long long n) {
        for (; n > 0; --n, --pending) {
            void* reply = nullptr;
            if (redisGetReply(c, &reply) != REDIS_OK || !reply)
                throw std::runtime_error("redis reply: " + std::string(c->errstr));
            auto* rep = static_cast<redisReply*>(reply);
            const bool bad = rep->type == REDIS_REPLY_ERROR;
            std::string msg = bad ? std::string(rep->str, rep->len) : "";
            freeReplyObject(reply);
            if (bad) throw std::runtime_error("redis: " + msg);
        }
    };
    for (long long s = 0; s < rows; ++s) {
        // The same bytes as the simsink worker sends for this row.
        row[0] = plan.row_bytes == 808 ? 1e-3 * double(s) : double(s);
        if (plan.row_bytes == 808) row[1] = double(s);
        if (redisAppendCommandArgv(c, 3, argv, lens) != REDIS_OK)
            throw std::runtime_error("redis append: " + std::string(c->errstr));
        if (++pending == pipeline) drain(pending);
    }
    drain(pending);
    r.loop = now() - r.started;
    r.finished = now();
    redisFree(c);
    return r;
}
#endif

// --workers FILE: one line per worker, its times in seconds after the
// release: started, connected (Client constructed), set up (run opened),
// loop done, finished (flush() returned).
void write_workers(const std::string& path, const std::vector<WorkerResult>& results,
                   double released) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f) simsink::bench::die_errno("bench_w3: cannot write " + path);
    std::fprintf(f, "worker started connected setup loop finished\n");
    for (const auto& r : results)
        std::fprintf(f, "%d %.6f %.6f %.6f %.6f %.6f\n", r.index, r.started - released,
                     r.started - released + r.connected, r.started - released + r.setup,
                     r.started - released + r.loop, r.finished - released);
    std::fclose(f);
}

}  // namespace

int main(int argc, char** argv) {
    simsink::bench::Args args(argc, argv, kUsage);
    const std::string mode = args.need("mode");
    Plan plan{int(args.integer("clients", 1)),
              args.integer("rows", 1'000'000),
              args.integer("row-bytes", 808),
              {},
              args.str("campaign", "w3")};
    if (auto v = args.bytes("max-unacked", 0); v > 0) plan.options.max_unacked_bytes = v;
    if (auto v = args.bytes("batch-bytes", 0); v > 0) plan.options.batch_bytes = v;
    plan.options.shared_memory = args.flag("shm", true);
    if (plan.clients < 1 || plan.rows < plan.clients || plan.row_bytes < 8 ||
        plan.row_bytes % 8 != 0)
        simsink::bench::die(std::string("--row-bytes must be a multiple of 8\n") + kUsage);
    const long long pipeline = std::max(
        1LL,
        static_cast<long long>(args.integer("pipeline", std::max(1LL, 808000 / plan.row_bytes))));

    std::function<WorkerResult(int)> work;
    if (mode == "simsink") {
        const std::string endpoint = args.need("connect");
        work = [endpoint, plan](int i) { return simsink_worker(endpoint, plan, i); };
    } else if (mode == "redis") {
#ifdef SIMSINK_BENCH_HIREDIS
        const std::string where = args.need("redis");
        work = [where, plan, pipeline](int i) { return redis_worker(where, plan, pipeline, i); };
#else
        simsink::bench::die("bench_w3 was built without hiredis");
#endif
    } else {
        simsink::bench::die(kUsage);
    }

    const std::string workers_file = args.str("workers", "");
    double released = 0;
    std::vector<WorkerResult> results = simsink::bench::run_forked(plan.clients, work, released);
    if (!workers_file.empty()) write_workers(workers_file, results, released);
    double last = 0, first_start = 1e300, last_start = 0;
    std::vector<double> each, setup, loop, tail;
    for (const auto& r : results) {
        last = std::max(last, r.finished);
        first_start = std::min(first_start, r.started);
        last_start = std::max(last_start, r.started);
        each.push_back(r.finished - r.started);
        setup.push_back(r.setup);
        loop.push_back(r.loop - r.setup);
        tail.push_back(r.finished - r.started - r.loop);
    }
    for (auto* v : {&each, &setup, &loop, &tail}) std::sort(v->begin(), v->end());
    simsink::bench::JsonLine()
        .str("mode", mode)
        .integer("clients", plan.clients)
        .integer("rows", plan.rows)
        .integer("row_bytes", plan.row_bytes)
        .integer("pipeline", mode == "redis" ? pipeline : 0)
        .num("seconds", last - released)
        .integer("bytes", plan.rows * plan.row_bytes)
        .num("start_spread", last_start - first_start)
        // CPU of the worker processes, from fork to exit (so a little more
        // than inside the timed span), user + system.
        .num("workers_cpu_seconds", simsink::bench::cpu_seconds(RUSAGE_CHILDREN))
        .num("worker_median", each[each.size() / 2])
        .num("worker_min", each.front())
        .num("worker_max", each.back())
        // Where a worker's time goes, median [max] over the workers: setting
        // up (Client and open_run / connect), the record loop, and the wait
        // after it (close and flush() / the last replies).
        .num("setup_median", setup[setup.size() / 2])
        .num("setup_max", setup.back())
        .num("loop_median", loop[loop.size() / 2])
        .num("loop_max", loop.back())
        .num("tail_median", tail[tail.size() / 2])
        .num("tail_max", tail.back())
        .print();
    return 0;
}
