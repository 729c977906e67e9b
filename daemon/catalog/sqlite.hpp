// Thin owners of SQLite handles for the catalog module, the only code that
// includes sqlite3.h. Every failure becomes a CatalogError carrying SQLite's
// (extended) result code, sqlite3_errmsg and what the catalog was doing.
//
// None of these types is thread-safe; each is used by one thread at a time
// (the daemon's writer thread for the read-write catalog).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

#include "catalog.hpp"

namespace simsink::catalog::sqlite {

// Throws CatalogError "<doing>: <sqlite3_errmsg>" with `rc` and, for I/O
// errors, the OS errno behind it (so disk_full() can tell ENOSPC apart).
// `db` may be null (an open that failed before a handle existed).
[[noreturn]] void fail(sqlite3* db, int rc, std::string_view doing);

class Statement;

// Owns one connection. Move-only; closing never throws (a close that fails
// because statements are still alive is a bug, caught by assert).
class Db {
  public:
    Db() noexcept = default;
    // Opens `path` with sqlite3_open_v2 `flags`, turns on extended result
    // codes, and sets the busy timeout. Throws CatalogError naming the path.
    Db(const std::filesystem::path& path, int flags, int busy_timeout_ms);
    ~Db();
    Db(Db&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}
    Db& operator=(Db&& other) noexcept;
    Db(const Db&) = delete;
    Db& operator=(const Db&) = delete;

    sqlite3* get() const noexcept { return db_; }

    // Runs one or more statements that return nothing the caller needs.
    void exec(const char* sql, std::string_view doing) const;

  private:
    sqlite3* db_ = nullptr;
};

// Owns one prepared statement. `doing` is kept for error messages.
// Bind indexes are 1-based, column indexes 0-based, as in SQLite.
class Statement {
  public:
    Statement() noexcept = default;
    Statement(sqlite3* db, std::string_view sql, std::string doing);
    ~Statement();
    Statement(Statement&& other) noexcept;
    Statement& operator=(Statement&& other) noexcept;
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    // Forgets the previous execution and its bindings, so the statement can
    // run again in a loop. Also releases the read snapshot a partly stepped
    // SELECT holds.
    void reset() noexcept;

    void bind_null(int index);
    void bind(int index, std::int64_t value);
    void bind(int index, int value) { bind(index, static_cast<std::int64_t>(value)); }
    // Throws CatalogError(SQLITE_RANGE) for values past INT64_MAX, which
    // SQLite cannot store as an integer.
    void bind_u64(int index, std::uint64_t value);
    void bind(int index, double value);
    void bind(int index, std::string_view text);
    void bind(int index, const char* text) { bind(index, std::string_view(text)); }
    // Binds JSON as its compact text (invalid UTF-8 replaced, never throws
    // for content).
    void bind_json_text(int index, const Json& value);

    // Binds a param/result value with its catalog type; returns the type
    // name stored beside it: 'int', 'float', 'bool', 'str' or 'json'.
    // Integers past INT64_MAX and anything but a scalar are stored as JSON
    // text so that read_typed() gives back exactly the same JSON value.
    const char* bind_typed(int index, const Json& value);

    // Steps once: true while a row is available, false when done.
    bool step();
    // Steps a statement that returns no rows.
    void run() {
        step();
        reset();
    }

    int column_type(int col) const noexcept;
    bool column_is_null(int col) const noexcept { return column_type(col) == SQLITE_NULL; }
    std::int64_t column_int64(int col) const noexcept;
    std::uint64_t column_u64(int col) const noexcept;
    double column_double(int col) const noexcept;
    std::string column_text(int col) const;
    // Parses a JSON text column; a NULL or unparsable value gives `fallback`.
    Json column_json(int col, const Json& fallback) const;
    // Reconstructs a value written by bind_typed() from the type and value
    // columns.
    Json column_typed(int type_col, int value_col) const;

    sqlite3_stmt* get() const noexcept { return stmt_; }

  private:
    sqlite3_stmt* stmt_ = nullptr;
    std::string doing_;
};

// Collects the rows (name, type, value) of `stmt` into a JSON object, then
// resets it.
Json read_typed_fields(Statement& stmt);

// BEGIN IMMEDIATE on construction: takes the write lock at once, so the
// transaction cannot fail halfway with SQLITE_BUSY on lock upgrade. Rolls
// back in the destructor unless commit() succeeded.
class WriteTransaction {
  public:
    WriteTransaction(sqlite3* db, std::string doing);
    ~WriteTransaction();
    WriteTransaction(const WriteTransaction&) = delete;
    WriteTransaction& operator=(const WriteTransaction&) = delete;

    void commit();

  private:
    sqlite3* db_;
    std::string doing_;
    bool done_ = false;
};

// Makes several SELECTs see one snapshot. Does nothing if a transaction is
// already open on the connection. Never writes, so ending it is a rollback.
class ReadTransaction {
  public:
    explicit ReadTransaction(sqlite3* db);
    ~ReadTransaction();
    ReadTransaction(const ReadTransaction&) = delete;
    ReadTransaction& operator=(const ReadTransaction&) = delete;

  private:
    sqlite3* db_;
    bool owned_ = false;
};

}  // namespace simsink::catalog::sqlite
