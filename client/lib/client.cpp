// The public C++ API: thin wrappers over ClientCore.
#include <simsink/client.hpp>

#include "client_core.hpp"
#include "dtype.hpp"
#include "simsink_config.h"
#include "wire.hpp"

namespace simsink {

// The public enums mirror proto's; the numbers are the wire's.
static_assert(static_cast<int>(ErrorCode::duplicate) ==
              static_cast<int>(proto::ErrorCode::duplicate));
static_assert(static_cast<int>(ErrorCode::dtype_mismatch) ==
              static_cast<int>(proto::ErrorCode::dtype_mismatch));
static_assert(static_cast<int>(ErrorCode::bad_argument) ==
              static_cast<int>(proto::ErrorCode::bad_argument));
static_assert(static_cast<int>(DType::boolean) == static_cast<int>(proto::DType::boolean));
static_assert(static_cast<int>(DType::complex128) == static_cast<int>(proto::DType::complex128));
static_assert(kMaxRank == proto::kMaxRank);

std::string_view error_name(ErrorCode code) noexcept {
    return proto::name(static_cast<proto::ErrorCode>(code));
}

Error::Error(ErrorCode code, const std::string& message)
    : std::runtime_error(std::string(error_name(code)) + ": " + message),
      code_(code),
      message_(message) {}

std::size_t itemsize(DType t) noexcept {
    return proto::itemsize(static_cast<proto::DType>(t));
}

std::string_view dtype_name(DType t) noexcept {
    return proto::name(static_cast<proto::DType>(t));
}

std::string_view version() noexcept {
    return SIMSINK_VERSION;
}

// Out of line: inlined into callers, GCC 12 warns (wrongly) that the
// variant's string may be used uninitialized.
Value::Value(const char* s) : v_(std::string(s)) {}
Value::Value(std::string s) : v_(std::move(s)) {}
Value::Value(std::string_view s) : v_(std::string(s)) {}
Value::Value(std::vector<double> v) : v_(std::move(v)) {}
Value::Value(std::vector<std::int64_t> v) : v_(std::move(v)) {}
Value::Value(std::vector<std::string> v) : v_(std::move(v)) {}

void Value::out_of_range(std::uint64_t v) {
    throw Error(ErrorCode::bad_argument,
                "integer " + std::to_string(v) + " does not fit in int64 (params are int64)");
}

// ---- Client ---------------------------------------------------------------------

Client::Client(std::string_view endpoint, Options options) {
    options.endpoint = std::string(endpoint);
    core_ = std::make_shared<detail::ClientCore>(std::move(options));
}

Client::Client(Options options) : core_(std::make_shared<detail::ClientCore>(std::move(options))) {}

Client::~Client() {
    if (core_) core_->shutdown();
}

Client::Client(Client&&) noexcept = default;

Client& Client::operator=(Client&& other) noexcept {
    if (this != &other) {
        if (core_) core_->shutdown();
        core_ = std::move(other.core_);
    }
    return *this;
}

namespace {
detail::ClientCore& need(const std::shared_ptr<detail::ClientCore>& core) {
    if (!core) throw Error(ErrorCode::closed, "the Client was moved from or closed");
    return *core;
}
}  // namespace

Run Client::open_run(std::string_view campaign, const Fields& params, const Fields& attrs) {
    auto& core = need(core_);
    auto p = detail::fields_to_json(params, "params");
    auto a = detail::fields_to_json(attrs, "attrs");
    return Run(core_, core.open_run(campaign, std::move(p), std::move(a)));
}

void Client::flush() {
    need(core_).flush(need(core_).options().timeout);
}

void Client::flush(std::chrono::milliseconds timeout) {
    need(core_).flush(timeout);
}

void Client::close() {
    if (!core_) return;
    auto core = std::move(core_);
    core->close();
}

ClientStats Client::stats() const {
    return need(core_).stats();
}

const std::string& Client::client_id() const {
    return need(core_).client_id_hex();
}

const Options& Client::options() const {
    return need(core_).options();
}

// ---- Run ------------------------------------------------------------------------------

Run::Run() noexcept = default;
Run::~Run() = default;  // leaves the run open: see the header
Run::Run(Run&&) noexcept = default;
Run& Run::operator=(Run&&) noexcept = default;

Run::Run(std::shared_ptr<detail::ClientCore> core, detail::RunState* state) noexcept
    : core_(std::move(core)), state_(state) {}

namespace {
detail::ClientCore& need_run(const std::shared_ptr<detail::ClientCore>& core) {
    if (!core)
        throw Error(ErrorCode::closed, "the Run is empty (default-constructed or moved from)");
    return *core;
}
}  // namespace

void Run::record_raw(std::string_view key, DType dtype, const void* data, std::uint64_t nrows,
                     Dims row_shape) {
    need_run(core_).record(state_, key, dtype, data, nrows, row_shape);
}

void Run::put_raw(std::string_view key, DType dtype, const void* data, Dims shape) {
    need_run(core_).put(state_, key, dtype, data, shape);
}

void Run::set_attrs(std::string_view key, const Fields& attrs) {
    auto& core = need_run(core_);
    std::string k(key);
    core.set_attrs(state_, &k, detail::fields_to_json(attrs, "attrs"));
}

void Run::set_attrs(const Fields& attrs) {
    auto& core = need_run(core_);
    core.set_attrs(state_, nullptr, detail::fields_to_json(attrs, "attrs"));
}

void Run::close(const Fields& results) {
    auto& core = need_run(core_);
    core.close_run(state_, false, detail::fields_to_json(results, "results"), {});
}

void Run::fail(std::string_view reason) {
    need_run(core_).close_run(state_, true, proto::Json::object(), reason);
}

std::int64_t Run::id() {
    return need_run(core_).run_id(state_);
}

std::uint32_t Run::handle() const {
    need_run(core_);
    return state_->handle;
}

const std::string& Run::campaign() const {
    need_run(core_);
    return state_->campaign;
}

bool Run::is_open() const noexcept {
    return core_ && core_->is_open(state_);
}

}  // namespace simsink
