#include "sqlite.hpp"

#include <cassert>
#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>

namespace simsink::catalog {

bool CatalogError::disk_full() const noexcept {
    const int primary = code_ & 0xff;
    return primary == SQLITE_FULL || (primary == SQLITE_IOERR && errno_ == ENOSPC);
}

}  // namespace simsink::catalog

namespace simsink::catalog::sqlite {

void fail(sqlite3* db, int rc, std::string_view doing) {
    std::string what(doing);
    what += ": ";
    what += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    int sys_errno = 0;
    if ((rc & 0xff) == SQLITE_IOERR && db != nullptr) {
        sys_errno = sqlite3_system_errno(db);
        if (sys_errno != 0) {
            what += " (";
            what += std::strerror(sys_errno);
            what += ")";
        }
    }
    throw CatalogError(what, rc, sys_errno);
}

// ---- Db ---------------------------------------------------------------------

Db::Db(const std::filesystem::path& path, int flags, int busy_timeout_ms) {
    sqlite3* db = nullptr;
    const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
    // sqlite3_open_v2 may hand back a connection even when it fails; it
    // carries the message and must be closed either way.
    db_ = db;
    if (rc != SQLITE_OK) {
        std::string doing = "opening catalog " + path.string();
        std::string what = doing + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        const int code = db ? sqlite3_extended_errcode(db) : rc;
        sqlite3_close_v2(std::exchange(db_, nullptr));
        throw CatalogError(what, code);
    }
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, busy_timeout_ms);
}

Db::~Db() {
    if (db_ != nullptr) {
        [[maybe_unused]] const int rc = sqlite3_close(db_);
        assert(rc == SQLITE_OK && "a Statement outlived its Db");
    }
}

Db& Db::operator=(Db&& other) noexcept {
    if (this != &other) {
        Db gone(std::move(*this));
        db_ = std::exchange(other.db_, nullptr);
    }
    return *this;
}

void Db::exec(const char* sql, std::string_view doing) const {
    const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) fail(db_, rc, doing);
}

// ---- Statement --------------------------------------------------------------

Statement::Statement(sqlite3* db, std::string_view sql, std::string doing)
    : doing_(std::move(doing)) {
    assert(db != nullptr);
    const int rc =
        sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(std::exchange(stmt_, nullptr));
        fail(db, rc, "preparing SQL for " + doing_);
    }
}

Statement::~Statement() {
    sqlite3_finalize(stmt_);
}

Statement::Statement(Statement&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)), doing_(std::move(other.doing_)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
    if (this != &other) {
        sqlite3_finalize(stmt_);
        stmt_ = std::exchange(other.stmt_, nullptr);
        doing_ = std::move(other.doing_);
    }
    return *this;
}

void Statement::reset() noexcept {
    // The return value repeats the last step's error, already reported.
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
}

namespace {

void check_bind(sqlite3_stmt* stmt, int rc, const std::string& doing) {
    if (rc != SQLITE_OK) fail(sqlite3_db_handle(stmt), rc, "binding a value for " + doing);
}

}  // namespace

void Statement::bind_null(int index) {
    check_bind(stmt_, sqlite3_bind_null(stmt_, index), doing_);
}

void Statement::bind(int index, std::int64_t value) {
    check_bind(stmt_, sqlite3_bind_int64(stmt_, index, value), doing_);
}

void Statement::bind_u64(int index, std::uint64_t value) {
    if (value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        throw CatalogError(doing_ + ": value " + std::to_string(value) + " is past INT64_MAX",
                           SQLITE_RANGE);
    bind(index, static_cast<std::int64_t>(value));
}

void Statement::bind(int index, double value) {
    check_bind(stmt_, sqlite3_bind_double(stmt_, index, value), doing_);
}

void Statement::bind(int index, std::string_view text) {
    // SQLITE_TRANSIENT: SQLite copies, so the caller's buffer may go away.
    check_bind(
        stmt_,
        sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8),
        doing_);
}

void Statement::bind_json_text(int index, const Json& value) {
    bind(index, value.dump(-1, ' ', false, Json::error_handler_t::replace));
}

const char* Statement::bind_typed(int index, const Json& value) {
    switch (value.type()) {
        case Json::value_t::boolean:
            bind(index, std::int64_t{value.get<bool>() ? 1 : 0});
            return "bool";
        case Json::value_t::number_integer:
            bind(index, value.get<std::int64_t>());
            return "int";
        case Json::value_t::number_unsigned: {
            const auto u = value.get<std::uint64_t>();
            if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
                bind(index, static_cast<std::int64_t>(u));
                return "int";
            }
            break;  // past INT64_MAX: kept exact as JSON text
        }
        case Json::value_t::number_float:
            bind(index, value.get<double>());  // NaN is stored as NULL
            return "float";
        case Json::value_t::string:
            bind(index, value.get_ref<const std::string&>());
            return "str";
        default:
            break;
    }
    bind_json_text(index, value);
    return "json";
}

bool Statement::step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(sqlite3_db_handle(stmt_), rc, doing_);
}

int Statement::column_type(int col) const noexcept {
    return sqlite3_column_type(stmt_, col);
}

std::int64_t Statement::column_int64(int col) const noexcept {
    return sqlite3_column_int64(stmt_, col);
}

std::uint64_t Statement::column_u64(int col) const noexcept {
    const auto v = sqlite3_column_int64(stmt_, col);
    return v < 0 ? 0 : static_cast<std::uint64_t>(v);
}

double Statement::column_double(int col) const noexcept {
    return sqlite3_column_double(stmt_, col);
}

std::string Statement::column_text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    if (p == nullptr) return {};
    return std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)));
}

Json Statement::column_json(int col, const Json& fallback) const {
    if (column_is_null(col)) return fallback;
    Json j = Json::parse(column_text(col), nullptr, /*allow_exceptions=*/false);
    return j.is_discarded() ? fallback : j;
}

Json Statement::column_typed(int type_col, int value_col) const {
    const std::string type = column_text(type_col);
    if (type == "int") return Json(column_int64(value_col));
    if (type == "float") {
        if (column_is_null(value_col)) return Json(std::numeric_limits<double>::quiet_NaN());
        return Json(column_double(value_col));
    }
    if (type == "bool") return Json(column_int64(value_col) != 0);
    if (type == "str") return Json(column_text(value_col));
    return column_json(value_col, Json());
}

Json read_typed_fields(Statement& stmt) {
    Json out = Json::object();
    while (stmt.step()) out[stmt.column_text(0)] = stmt.column_typed(1, 2);
    stmt.reset();
    return out;
}

// ---- transactions -----------------------------------------------------------

WriteTransaction::WriteTransaction(sqlite3* db, std::string doing)
    : db_(db), doing_(std::move(doing)) {
    const int rc = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) {
        done_ = true;
        fail(db_, rc, "starting a transaction for " + doing_);
    }
}

WriteTransaction::~WriteTransaction() {
    // Some errors (SQLITE_FULL, SQLITE_IOERR, ...) already rolled the
    // transaction back; a second ROLLBACK would only fail.
    if (!done_ && sqlite3_get_autocommit(db_) == 0)
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

void WriteTransaction::commit() {
    assert(!done_);
    const int rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) fail(db_, rc, "committing " + doing_);
    done_ = true;
}

ReadTransaction::ReadTransaction(sqlite3* db) : db_(db) {
    if (sqlite3_get_autocommit(db_) == 0) return;
    const int rc = sqlite3_exec(db_, "BEGIN DEFERRED", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) fail(db_, rc, "starting a read transaction");
    owned_ = true;
}

ReadTransaction::~ReadTransaction() {
    if (owned_ && sqlite3_get_autocommit(db_) == 0)
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

}  // namespace simsink::catalog::sqlite
