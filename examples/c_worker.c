/* An example simulation worker in C, using only simsink.h: the same data as
 * worker.cpp (t, y[100] every step, complex qhat[64,33] every 100 steps, a
 * grid, results).
 *
 *   simsink-example-c-worker --connect tcp://master:5555 --campaign sweep
 *                            --steps 1000 --seed 471913919 --id 3
 */
#include <simsink/simsink.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NX 64
#define NY 33
#define PI 3.14159265358979323846

static int check(int rc, const char* what) {
    if (rc != 0) fprintf(stderr, "c_worker: %s failed: %s\n", what, simsink_last_error_message());
    return rc;
}

int main(int argc, char** argv) {
    const char* endpoint = "ipc:///tmp/simsink.sock";
    const char* campaign = "example";
    long steps = 1000, seed = 1, id = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--connect"))
            endpoint = argv[i + 1];
        else if (!strcmp(argv[i], "--campaign"))
            campaign = argv[i + 1];
        else if (!strcmp(argv[i], "--steps"))
            steps = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed"))
            seed = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--id"))
            id = atol(argv[i + 1]);
        else {
            fprintf(stderr, "usage: %s --connect E --campaign C --steps N --seed S --id K\n",
                    argv[0]);
            return 2;
        }
    }

    simsink_options opts;
    simsink_options_init(&opts);
    opts.name = "c_worker";
    simsink_client* client = NULL;
    if (check(simsink_connect(endpoint, &opts, &client), "connect")) return 1;

    const double kappa = 0.1 + 0.01 * id, dt = 1e-3;
    char params[256];
    snprintf(params, sizeof params,
             "{\"nx\": %d, \"ny\": %d, \"kappa\": %.17g, \"method\": \"dopri5\", \"dt\": %.17g, "
             "\"seed\": %ld, \"worker\": %ld}",
             NX, NY, kappa, dt, seed, id);
    simsink_run* run = NULL;
    if (check(simsink_open_run(client, campaign, params, &run), "open_run")) goto fail_client;
    check(simsink_set_attrs(run, "y", "{\"units\": \"m/s\"}"), "set_attrs");

    double x[NX];
    for (int i = 0; i < NX; ++i) x[i] = 2 * PI * i / NX;
    const uint64_t grid_shape[1] = {NX};
    if (check(simsink_put(run, "grid/x", SIMSINK_FLOAT64, x, 1, grid_shape), "put")) goto fail_run;

    double y[100];
    static double qhat[NX * NY][2]; /* complex128: real, imaginary */
    const uint64_t y_shape[1] = {100};
    const uint64_t q_shape[2] = {NX, NY};
    for (int i = 0; i < 100; ++i) y[i] = sin(0.1 * i + seed % 7);
    for (long step = 0; step < steps; ++step) {
        const double t = step * dt;
        for (int i = 0; i < 100; ++i) y[i] += dt * (-kappa * y[i]);
        if (check(simsink_record(run, "t", SIMSINK_FLOAT64, &t, 0, NULL), "record t") ||
            check(simsink_record(run, "y", SIMSINK_FLOAT64, y, 1, y_shape), "record y"))
            goto fail_run;
        if (step % 100 == 0) {
            for (int i = 0; i < NX * NY; ++i) {
                qhat[i][0] = exp(-kappa * t) * cos(0.01 * i);
                qhat[i][1] = exp(-kappa * t) * sin(0.01 * i);
            }
            if (check(simsink_record(run, "qhat", SIMSINK_COMPLEX128, qhat, 2, q_shape),
                      "record qhat"))
                goto fail_run;
        }
    }

    double energy = 0;
    for (int i = 0; i < 100; ++i) energy += y[i] * y[i];
    char results[128];
    snprintf(results, sizeof results, "{\"energy\": %.17g, \"steps\": %ld}", energy, steps);
    int64_t run_id = -1;
    check(simsink_run_id(run, &run_id), "run_id");
    if (check(simsink_close_run(run, results), "close_run")) goto fail_client;
    if (check(simsink_flush(client, -1), "flush")) goto fail_client;
    printf("c_worker %ld: run %lld of campaign %s, %ld steps\n", id, (long long)run_id, campaign,
           steps);
    return check(simsink_client_close(client), "close") ? 1 : 0;

fail_run:
    simsink_fail_run(run, simsink_last_error_message());
fail_client:
    simsink_client_close(client);
    return 1;
}
