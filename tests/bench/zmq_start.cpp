// What ZeroMQ costs a fresh process before it sends a byte: zmq_ctx_new
// (with Debian's libzmq, which is built with OpenPGM, that includes
// pgm_init and its protocol lookup through NSS), a DEALER socket and its
// connect, and the context's end. Wall and CPU time of each, in this process
// only: run it many times to see what 64 workers pay
// (docs/performance.md, twelfth round).
//
//   zmq_start [--endpoint ipc:///tmp/zmq_start-none.sock]
//
// Nothing needs to listen at the endpoint: a connect does not wait for it.
#include <zmq.h>

#include <string>

#include "bench_common.hpp"

int main(int argc, char** argv) {
    const simsink::bench::Args args(argc, argv,
                                    "zmq_start [--endpoint ipc:///tmp/zmq_start-none.sock]\n");
    const std::string endpoint = args.str("endpoint", "ipc:///tmp/zmq_start-none.sock");
    double wall[4], cpu[4];
    auto mark = [&](int i) {
        wall[i] = simsink::bench::now();
        cpu[i] = simsink::bench::cpu_seconds();
    };
    mark(0);
    void* ctx = zmq_ctx_new();
    if (!ctx) simsink::bench::die_errno("zmq_start: zmq_ctx_new");
    mark(1);
    void* socket = zmq_socket(ctx, ZMQ_DEALER);
    if (!socket || zmq_connect(socket, endpoint.c_str()) != 0)
        simsink::bench::die("zmq_start: socket or connect: " + std::string(zmq_strerror(zmq_errno())));
    mark(2);
    const int linger = 0;
    zmq_setsockopt(socket, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(socket);
    zmq_ctx_term(ctx);
    mark(3);
    simsink::bench::JsonLine()
        .num("ctx_new_ms", (wall[1] - wall[0]) * 1e3)
        .num("ctx_new_cpu_ms", (cpu[1] - cpu[0]) * 1e3)
        .num("socket_connect_ms", (wall[2] - wall[1]) * 1e3)
        .num("socket_connect_cpu_ms", (cpu[2] - cpu[1]) * 1e3)
        .num("term_ms", (wall[3] - wall[2]) * 1e3)
        .num("term_cpu_ms", (cpu[3] - cpu[2]) * 1e3)
        .print();
}
