// Reading back what the daemon wrote, for the integration tests: the
// catalog through SQLite and datasets through the HDF5 C API, as users do.
#pragma once

#include <hdf5.h>
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace simsink::testing {

// The first column of the first row of `sql` on the catalog (read-only), or -1.
inline std::int64_t sql_int(const std::filesystem::path& db_path, const std::string& sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
    std::int64_t v = -1;
    if (sqlite3_step(s) == SQLITE_ROW) v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

// A whole dataset as raw bytes in its own file type (little-endian, native
// here: byte for byte the wire layout), and its dimensions.
inline std::vector<std::uint8_t> read_dataset(hid_t file, const std::string& path,
                                              std::vector<hsize_t>& dims) {
    hid_t d = H5Dopen2(file, path.c_str(), H5P_DEFAULT);
    REQUIRE(d >= 0);
    hid_t space = H5Dget_space(d);
    int rank = H5Sget_simple_extent_ndims(space);
    dims.assign(static_cast<std::size_t>(rank), 0);
    H5Sget_simple_extent_dims(space, dims.data(), nullptr);
    hid_t type = H5Dget_type(d);
    std::size_t n = H5Tget_size(type);
    for (auto x : dims) n *= x;
    std::vector<std::uint8_t> out(n);
    if (n) REQUIRE(H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) >= 0);
    H5Tclose(type);
    H5Sclose(space);
    H5Dclose(d);
    return out;
}

// The same from a file (a campaign view) opened read-only for the call.
inline std::vector<std::uint8_t> read_dataset(const std::filesystem::path& file_path,
                                              const std::string& path,
                                              std::vector<hsize_t>& dims) {
    hid_t file = H5Fopen(file_path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    REQUIRE(file >= 0);
    auto out = read_dataset(file, path, dims);
    H5Fclose(file);
    return out;
}

}  // namespace simsink::testing
