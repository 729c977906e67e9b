// Element types of streams and arrays, as they travel on the wire.
// The numeric codes are part of the wire format (proto/PROTOCOL.md, "Data
// types") and of the C API (simsink.h): never renumber.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace simsink::proto {

enum class DType : std::uint8_t {
    int8 = 1,
    int16 = 2,
    int32 = 3,
    int64 = 4,
    uint8 = 5,
    uint16 = 6,
    uint32 = 7,
    uint64 = 8,
    float32 = 9,
    float64 = 10,
    complex64 = 11,   // two float32: real, imaginary
    complex128 = 12,  // two float64: real, imaginary
    boolean = 13,     // one byte, 0 or 1
};

inline constexpr std::uint8_t kMaxDTypeCode = 13;

// Bytes of one element; 0 for an invalid code.
std::size_t itemsize(DType t) noexcept;

// Canonical name ("float64", "complex128", "bool", ...), as used in metadata
// JSON, the catalog and the CLI.
std::string_view name(DType t) noexcept;

// Inverse of name(); empty for an unknown name.
std::optional<DType> parse_dtype(std::string_view name) noexcept;

// Validates a wire code.
std::optional<DType> dtype_from_code(std::uint64_t code) noexcept;

// Row shape of a stream (the dimensions after the row axis) or shape of an
// array. A scalar row has rank 0.
using Shape = std::vector<std::uint64_t>;

inline constexpr std::size_t kMaxRank = 8;

// Number of elements in one row; 1 for rank 0. Returns empty on overflow
// past 2^62, which no valid request reaches.
std::optional<std::uint64_t> element_count(const Shape& shape) noexcept;

}  // namespace simsink::proto
