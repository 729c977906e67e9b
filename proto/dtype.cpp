#include "dtype.hpp"

#include <array>

namespace simsink::proto {
namespace {

struct DTypeInfo {
    std::string_view name;
    std::size_t size;
};

// Indexed by wire code; entry 0 is the invalid code.
constexpr std::array<DTypeInfo, kMaxDTypeCode + 1> kInfo{{
    {"", 0},
    {"int8", 1},
    {"int16", 2},
    {"int32", 4},
    {"int64", 8},
    {"uint8", 1},
    {"uint16", 2},
    {"uint32", 4},
    {"uint64", 8},
    {"float32", 4},
    {"float64", 8},
    {"complex64", 8},
    {"complex128", 16},
    {"bool", 1},
}};

}  // namespace

std::size_t itemsize(DType t) noexcept {
    auto code = static_cast<std::size_t>(t);
    return code < kInfo.size() ? kInfo[code].size : 0;
}

std::string_view name(DType t) noexcept {
    auto code = static_cast<std::size_t>(t);
    return code < kInfo.size() ? kInfo[code].name : std::string_view{};
}

std::optional<DType> parse_dtype(std::string_view n) noexcept {
    for (std::size_t code = 1; code < kInfo.size(); ++code)
        if (kInfo[code].name == n) return static_cast<DType>(code);
    return std::nullopt;
}

std::optional<DType> dtype_from_code(std::uint64_t code) noexcept {
    if (code == 0 || code > kMaxDTypeCode) return std::nullopt;
    return static_cast<DType>(code);
}

std::optional<std::uint64_t> element_count(const Shape& shape) noexcept {
    constexpr std::uint64_t kLimit = std::uint64_t{1} << 62;
    std::uint64_t n = 1;
    for (auto d : shape) {
        if (d != 0 && n > kLimit / d) return std::nullopt;
        n *= d;
    }
    return n;
}

}  // namespace simsink::proto
