/*
 * libsimsink C API: record simulation data to a simsinkd daemon from C,
 * Fortran (ISO_C_BINDING) or any language with a C FFI (Python ctypes).
 *
 *   simsink_client* c;
 *   simsink_run* r;
 *   if (simsink_connect("tcp://master:5555", NULL, &c) != 0) { ... }
 *   simsink_open_run(c, "sweep", "{\"nx\": 64, \"method\": \"dopri5\"}", &r);
 *   uint64_t n = 100;
 *   simsink_record(r, "t", SIMSINK_FLOAT64, &t, 0, NULL);   // scalar row
 *   simsink_record(r, "y", SIMSINK_FLOAT64, y, 1, &n);      // 1-D row
 *   simsink_close_run(r, "{\"energy\": 1.23}");              // frees r
 *   simsink_flush(c, -1);                                  // committed
 *   simsink_client_close(c);                               // frees c
 *
 * Semantics are those of the C++ API (simsink/client.hpp); in short:
 *
 * Return values: every function returning int returns 0 on success or a
 * negated error code (-SIMSINK_ERR_...). simsink_last_error_code() and
 * simsink_last_error_message() describe the last call made by the calling
 * thread.
 *
 * Data: record/record_rows/put copy the data before returning; the caller
 * keeps ownership. Arrays are in C (row-major) order with little-endian
 * elements as in memory. A Fortran array A(n1, n2) is, in memory, the C
 * array of shape {n2, n1}: pass its dimensions reversed.
 *
 * Strings: NUL-terminated UTF-8 (Fortran: append c_null_char). JSON
 * arguments (params, results, attrs) are objects whose members are numbers,
 * bools, strings or flat arrays of numbers or strings, e.g.
 * {"nx": 64, "beta": 6e-10, "method": "dopri5", "seeds": [1, 2]}.
 *
 * Threads: a client and its runs may be used from several threads. A client
 * must not be used across fork(); a child connects its own.
 *
 * Blocking: only simsink_flush, simsink_run_id and simsink_client_close wait
 * for the daemon; recording waits only when max_unacked_bytes of data are
 * unacknowledged (or fails with SIMSINK_ERR_BUSY if blocking = 0).
 */
#ifndef SIMSINK_SIMSINK_H
#define SIMSINK_SIMSINK_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct simsink_client simsink_client;
typedef struct simsink_run simsink_run;

/* Element types; the values are the wire codes (proto/PROTOCOL.md). */
typedef enum simsink_dtype {
    SIMSINK_INT8 = 1,
    SIMSINK_INT16 = 2,
    SIMSINK_INT32 = 3,
    SIMSINK_INT64 = 4,
    SIMSINK_UINT8 = 5,
    SIMSINK_UINT16 = 6,
    SIMSINK_UINT32 = 7,
    SIMSINK_UINT64 = 8,
    SIMSINK_FLOAT32 = 9,
    SIMSINK_FLOAT64 = 10,
    SIMSINK_COMPLEX64 = 11,  /* two float32: real, imaginary */
    SIMSINK_COMPLEX128 = 12, /* two float64: real, imaginary */
    SIMSINK_BOOL = 13        /* one byte; any nonzero byte is stored as 1 */
} simsink_dtype;

/* Error codes (returned negated); the values are those of the protocol. */
enum simsink_error {
    SIMSINK_OK = 0,
    SIMSINK_ERR_BAD_FRAME = 1,
    SIMSINK_ERR_BAD_MAGIC = 2,
    SIMSINK_ERR_BAD_VERSION = 3,
    SIMSINK_ERR_BAD_TYPE = 4,
    SIMSINK_ERR_BAD_META = 5,
    SIMSINK_ERR_NEED_HELLO = 6,
    SIMSINK_ERR_OUT_OF_ORDER = 7,
    SIMSINK_ERR_UNKNOWN_RUN = 8,
    SIMSINK_ERR_UNKNOWN_STREAM = 9,
    SIMSINK_ERR_RUN_CLOSED = 10,
    SIMSINK_ERR_BAD_NAME = 11,
    SIMSINK_ERR_BAD_DTYPE = 12,
    SIMSINK_ERR_BAD_SHAPE = 13,
    SIMSINK_ERR_DTYPE_MISMATCH = 14,
    SIMSINK_ERR_SHAPE_MISMATCH = 15,
    SIMSINK_ERR_ROW_SIZE = 16,
    SIMSINK_ERR_ARRAY_EXISTS = 17,
    SIMSINK_ERR_TOO_LARGE = 18,
    SIMSINK_ERR_CREDIT_EXCEEDED = 19,
    SIMSINK_ERR_DISK_FULL = 20,
    SIMSINK_ERR_IO_ERROR = 21,
    SIMSINK_ERR_SHUTTING_DOWN = 22,
    SIMSINK_ERR_INTERNAL = 23,
    SIMSINK_ERR_TIMEOUT = 24,
    SIMSINK_ERR_BUSY = 25,
    SIMSINK_ERR_CLOSED = 26,
    SIMSINK_ERR_BAD_ARGUMENT = 27,
    SIMSINK_ERR_DUPLICATE = 28,
    SIMSINK_ERR_BAD_SHM = 29
};

/* Options of simsink_connect. Always fill with simsink_options_init first,
 * then change fields: struct_size lets later versions add fields. */
typedef struct simsink_options {
    uint32_t struct_size; /* set by simsink_options_init */
    int32_t blocking;     /* 1 (default): wait when max_unacked_bytes is reached; 0: fail BUSY */
    uint64_t max_unacked_bytes;   /* bytes kept for resend until acknowledged (256 MiB);
                                   * many times batch_bytes, or recording waits for
                                   * a commit every few batches */
    uint64_t batch_bytes;         /* seal a batch into one message at this size (1 MiB) */
    double linger_seconds;        /* seal a non-empty batch older than this (0.05) */
    double timeout_seconds;       /* simsink_run_id's wait; < 0: forever (default) */
    double heartbeat_seconds;     /* PING after this long without traffic (1.0) */
    double close_timeout_seconds; /* simsink_client_close's wait for acknowledgements (10.0) */
    const char* name;             /* client name shown by the daemon, or NULL; copied */
    int32_t shared_memory; /* 1 (default): a daemon on this host reads batches from shared memory */
} simsink_options;

void simsink_options_init(simsink_options* opts);

/* Connects (without waiting for the daemon) and starts the client's I/O
 * thread. opts may be NULL for defaults. On success *out is a new client. */
int simsink_connect(const char* endpoint, const simsink_options* opts, simsink_client** out);

/* Flushes (waiting up to close_timeout_seconds), stops and frees the client,
 * also on failure (SIMSINK_ERR_TIMEOUT: data not acknowledged was lost).
 * Run handles of this client must still be freed (close/fail/release);
 * their other calls fail with SIMSINK_ERR_CLOSED. NULL is a no-op. */
int simsink_client_close(simsink_client* client);

/* Returns once everything recorded so far is committed by the daemon, or
 * fails after timeout_seconds (< 0: wait forever) with SIMSINK_ERR_TIMEOUT
 * (or DISK_FULL/IO_ERROR when the daemon reports failing commits). Also
 * reports, once, an error the daemon sent for an earlier call. */
int simsink_flush(simsink_client* client, double timeout_seconds);

/* Opens a run of `campaign`. params_json: a JSON object or NULL. */
int simsink_open_run(simsink_client* client, const char* campaign, const char* params_json,
                     simsink_run** out);

/* Appends one row of shape shape[0..ndim-1] (ndim 0: a scalar; shape may
 * then be NULL) to stream `key`. The first record fixes the stream's dtype
 * and row shape; a different one later fails with DTYPE_MISMATCH or
 * SHAPE_MISMATCH and records nothing. */
int simsink_record(simsink_run* run, const char* key, simsink_dtype dtype, const void* data,
                   int ndim, const uint64_t* shape);

/* Appends nrows contiguous rows of shape row_shape[0..ndim-1] in one call
 * (the cheap way to record many rows: one lock, one copy). nrows 0 only
 * declares the stream. */
int simsink_record_rows(simsink_run* run, const char* key, simsink_dtype dtype, const void* data,
                        uint64_t nrows, int ndim, const uint64_t* row_shape);

/* Writes the write-once array `key` of shape shape[0..ndim-1]. */
int simsink_put(simsink_run* run, const char* key, simsink_dtype dtype, const void* data, int ndim,
                const uint64_t* shape);

/* Sets attributes (a JSON object) of stream/array `key`, or of the run
 * itself when key is NULL. */
int simsink_set_attrs(simsink_run* run, const char* key, const char* attrs_json);

/* Ends the run with status finished (results_json: JSON object or NULL) or
 * failed (reason: text). Both free the run handle, also on failure. */
int simsink_close_run(simsink_run* run, const char* results_json);
int simsink_fail_run(simsink_run* run, const char* reason);

/* Frees the run handle without ending the run: the daemon marks it lost
 * once the client is gone. NULL is a no-op. */
void simsink_release_run(simsink_run* run);

/* The global run id; waits until the daemon committed the run's opening
 * (timeout_seconds of the options). */
int simsink_run_id(simsink_run* run, int64_t* out);

/* The code (positive; 0 = success) of the last call made by this thread. */
int simsink_last_error_code(void);
/* Its message ("" after success); valid until this thread's next call. */
const char* simsink_last_error_message(void);
/* "DTYPE_MISMATCH", ...; accepts the code negated too. */
const char* simsink_error_name(int code);
/* The library's version, "0.1.0". */
const char* simsink_version(void);

#ifdef __cplusplus
}
#endif

#endif /* SIMSINK_SIMSINK_H */
