// The C API (simsink.h) over the C++ API. No exception crosses it: each
// function catches, records the error in thread-local storage and returns
// the negated code.
#include <simsink/simsink.h>
#include <simsink/client.hpp>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <memory>
#include <new>

#include "client_core.hpp"
#include "meta.hpp"

// The handles hold the core directly (not simsink::Client/Run) so that JSON
// from the caller reaches it without a round trip through simsink::Fields.
struct simsink_client {
    std::shared_ptr<simsink::detail::ClientCore> core;
    ~simsink_client() { core->shutdown(); }
};

struct simsink_run {
    std::shared_ptr<simsink::detail::ClientCore> core;
    simsink::detail::RunState* state;
};

namespace {

using simsink::Error;
using simsink::ErrorCode;

static_assert(SIMSINK_BOOL == static_cast<int>(simsink::DType::boolean));
static_assert(SIMSINK_ERR_DUPLICATE == static_cast<int>(ErrorCode::duplicate));
static_assert(SIMSINK_ERR_BAD_SHM == static_cast<int>(ErrorCode::bad_shm));
static_assert(SIMSINK_ERR_BAD_ARGUMENT == static_cast<int>(ErrorCode::bad_argument));

thread_local int t_code = 0;
thread_local std::string t_message;

int ok() noexcept {
    t_code = 0;
    return 0;
}

int fail(ErrorCode code, const char* message) noexcept {
    t_code = static_cast<int>(code);
    try {
        t_message = message;
    } catch (...) {
        t_message.clear();
    }
    return -t_code;
}

// Runs f, turning exceptions into return codes.
template <class F>
int guarded(F&& f) noexcept {
    try {
        f();
        return ok();
    } catch (const Error& e) {
        return fail(e.code(), e.what());
    } catch (const std::bad_alloc&) {
        return fail(ErrorCode::internal, "out of memory");
    } catch (const std::exception& e) {
        return fail(ErrorCode::internal, e.what());
    } catch (...) {
        return fail(ErrorCode::internal, "unknown exception");
    }
}

[[noreturn]] void bad_argument(const std::string& what) {
    throw Error(ErrorCode::bad_argument, what);
}

std::chrono::milliseconds seconds_to_ms(double s) {
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(s * 1000.0)));
}

simsink::proto::Json parse_fields(const char* json, const char* what) {
    if (!json) return simsink::proto::Json::object();
    simsink::proto::Json j;
    try {
        j = simsink::proto::parse_meta(
            std::span(reinterpret_cast<const std::uint8_t*>(json), std::strlen(json)));
    } catch (const simsink::proto::ProtocolError& e) {
        bad_argument(std::string(what) + ": " + e.what());
    }
    simsink::detail::check_fields_json(j, what);
    return j;
}

simsink::Dims dims_of(int ndim, const std::uint64_t* shape) {
    if (ndim < 0) bad_argument("ndim " + std::to_string(ndim) + " is negative");
    if (ndim > 0 && !shape) bad_argument("shape is NULL with ndim " + std::to_string(ndim));
    if (ndim == 0) return {};
    return simsink::Dims(std::span(shape, static_cast<std::size_t>(ndim)));
}

void need(const void* p, const char* what) {
    if (!p) bad_argument(std::string(what) + " is NULL");
}

}  // namespace

extern "C" {

void simsink_options_init(simsink_options* o) {
    if (!o) return;
    simsink::Options d;
    std::memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->blocking = d.blocking ? 1 : 0;
    o->max_unacked_bytes = d.max_unacked_bytes;
    o->batch_bytes = d.batch_bytes;
    o->linger_seconds = d.linger.count() / 1000.0;
    o->timeout_seconds = -1.0;
    o->heartbeat_seconds = d.heartbeat.count() / 1000.0;
    o->close_timeout_seconds = d.close_timeout.count() / 1000.0;
    o->name = nullptr;
    o->shared_memory = d.shared_memory ? 1 : 0;
}

int simsink_connect(const char* endpoint, const simsink_options* opts, simsink_client** out) {
    return guarded([&] {
        need(endpoint, "endpoint");
        need(out, "out");
        *out = nullptr;
        simsink_options o;
        simsink_options_init(&o);
        if (opts) {
            if (opts->struct_size < offsetof(simsink_options, name) + sizeof(const char*) ||
                opts->struct_size > sizeof o)
                bad_argument("simsink_options.struct_size is " + std::to_string(opts->struct_size) +
                             "; fill the options with simsink_options_init");
            std::memcpy(&o, opts, opts->struct_size);
        }
        simsink::Options so;
        so.blocking = o.blocking != 0;
        so.max_unacked_bytes = o.max_unacked_bytes;
        so.batch_bytes = o.batch_bytes;
        so.linger = seconds_to_ms(o.linger_seconds);
        if (o.timeout_seconds >= 0) so.timeout = seconds_to_ms(o.timeout_seconds);
        so.heartbeat = seconds_to_ms(o.heartbeat_seconds);
        so.close_timeout = seconds_to_ms(o.close_timeout_seconds);
        if (o.name) so.name = o.name;
        so.shared_memory = o.shared_memory != 0;
        so.endpoint = endpoint;
        *out = new simsink_client{std::make_shared<simsink::detail::ClientCore>(std::move(so))};
    });
}

int simsink_client_close(simsink_client* client) {
    if (!client) return ok();
    int rc = guarded([&] { client->core->close(); });
    delete client;
    return rc;
}

int simsink_flush(simsink_client* client, double timeout_seconds) {
    return guarded([&] {
        need(client, "client");
        if (timeout_seconds < 0)
            client->core->flush(std::nullopt);
        else
            client->core->flush(seconds_to_ms(timeout_seconds));
    });
}

int simsink_open_run(simsink_client* client, const char* campaign, const char* params_json,
                     simsink_run** out) {
    return guarded([&] {
        need(client, "client");
        need(campaign, "campaign");
        need(out, "out");
        *out = nullptr;
        auto params = parse_fields(params_json, "params");
        auto* state =
            client->core->open_run(campaign, std::move(params), simsink::proto::Json::object());
        *out = new simsink_run{client->core, state};
    });
}

int simsink_record(simsink_run* run, const char* key, simsink_dtype dtype, const void* data,
                   int ndim, const uint64_t* shape) {
    return simsink_record_rows(run, key, dtype, data, 1, ndim, shape);
}

int simsink_record_rows(simsink_run* run, const char* key, simsink_dtype dtype, const void* data,
                        uint64_t nrows, int ndim, const uint64_t* row_shape) {
    return guarded([&] {
        need(run, "run");
        need(key, "key");
        run->core->record(run->state, key, static_cast<simsink::DType>(dtype), data, nrows,
                          dims_of(ndim, row_shape));
    });
}

int simsink_put(simsink_run* run, const char* key, simsink_dtype dtype, const void* data, int ndim,
                const uint64_t* shape) {
    return guarded([&] {
        need(run, "run");
        need(key, "key");
        run->core->put(run->state, key, static_cast<simsink::DType>(dtype), data,
                       dims_of(ndim, shape));
    });
}

int simsink_set_attrs(simsink_run* run, const char* key, const char* attrs_json) {
    return guarded([&] {
        need(run, "run");
        need(attrs_json, "attrs_json");
        auto attrs = parse_fields(attrs_json, "attrs");
        if (key) {
            std::string k(key);
            run->core->set_attrs(run->state, &k, std::move(attrs));
        } else {
            run->core->set_attrs(run->state, nullptr, std::move(attrs));
        }
    });
}

int simsink_close_run(simsink_run* run, const char* results_json) {
    if (!run) return fail(ErrorCode::bad_argument, "run is NULL");
    int rc = guarded([&] {
        run->core->close_run(run->state, false, parse_fields(results_json, "results"), {});
    });
    if (rc != 0 && run->core->is_open(run->state)) {
        // The results were refused: still end the run, without them, and
        // report why the results were refused.
        std::string why = t_message;
        int code = t_code;
        guarded(
            [&] { run->core->close_run(run->state, false, simsink::proto::Json::object(), {}); });
        rc = fail(static_cast<ErrorCode>(code), why.c_str());
    }
    delete run;
    return rc;
}

int simsink_fail_run(simsink_run* run, const char* reason) {
    if (!run) return fail(ErrorCode::bad_argument, "run is NULL");
    int rc = guarded([&] {
        run->core->close_run(run->state, true, simsink::proto::Json::object(),
                             reason ? reason : "");
    });
    delete run;
    return rc;
}

void simsink_release_run(simsink_run* run) {
    delete run;
}

int simsink_run_id(simsink_run* run, int64_t* out) {
    return guarded([&] {
        need(run, "run");
        need(out, "out");
        *out = run->core->run_id(run->state);
    });
}

int simsink_last_error_code(void) {
    return t_code;
}

const char* simsink_last_error_message(void) {
    return t_code ? t_message.c_str() : "";
}

const char* simsink_error_name(int code) {
    if (code < 0) code = -code;
    return simsink::error_name(static_cast<ErrorCode>(code)).data();
}

const char* simsink_version(void) {
    return simsink::version().data();
}

}  // extern "C"
