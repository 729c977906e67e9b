// C++ element types and their wire dtypes.
#include <simsink/client.hpp>

#include <catch2/catch.hpp>
#include <complex>
#include <cstdint>

#include "dtype.hpp"

using simsink::DType;
using simsink::dtype_of;
namespace proto = simsink::proto;

// What the wire calls each C++ element type: code and name.
template <class T>
void check_dtype(proto::DType expected, const char* name) {
    INFO(name);
    CHECK(static_cast<int>(dtype_of<T>) == static_cast<int>(expected));
    CHECK(simsink::itemsize(dtype_of<T>) == sizeof(T));
    CHECK(simsink::dtype_name(dtype_of<T>) == name);
    CHECK(proto::name(expected) == name);
}

TEST_CASE("dtype traits for every element type", "[dtype]") {
    check_dtype<std::int8_t>(proto::DType::int8, "int8");
    check_dtype<std::int16_t>(proto::DType::int16, "int16");
    check_dtype<std::int32_t>(proto::DType::int32, "int32");
    check_dtype<std::int64_t>(proto::DType::int64, "int64");
    check_dtype<std::uint8_t>(proto::DType::uint8, "uint8");
    check_dtype<std::uint16_t>(proto::DType::uint16, "uint16");
    check_dtype<std::uint32_t>(proto::DType::uint32, "uint32");
    check_dtype<std::uint64_t>(proto::DType::uint64, "uint64");
    check_dtype<float>(proto::DType::float32, "float32");
    check_dtype<double>(proto::DType::float64, "float64");
    check_dtype<std::complex<float>>(proto::DType::complex64, "complex64");
    check_dtype<std::complex<double>>(proto::DType::complex128, "complex128");
    check_dtype<bool>(proto::DType::boolean, "bool");
}

TEST_CASE("long and long long map by size, const is ignored", "[dtype]") {
    STATIC_REQUIRE(dtype_of<long long> == DType::int64);
    STATIC_REQUIRE(dtype_of<unsigned long long> == DType::uint64);
    STATIC_REQUIRE(dtype_of<long> == (sizeof(long) == 8 ? DType::int64 : DType::int32));
    STATIC_REQUIRE(dtype_of<const double> == DType::float64);
}

TEST_CASE("character types and long double are not elements", "[dtype]") {
    STATIC_REQUIRE_FALSE(simsink::Element<char>);
    STATIC_REQUIRE_FALSE(simsink::Element<char8_t>);
    STATIC_REQUIRE_FALSE(simsink::Element<wchar_t>);
    STATIC_REQUIRE_FALSE(simsink::Element<long double>);
    STATIC_REQUIRE_FALSE(simsink::Element<std::string>);
    STATIC_REQUIRE(simsink::Element<signed char>);
    STATIC_REQUIRE(simsink::Element<unsigned char>);
}

TEST_CASE("Dims holds up to 8 dimensions and counts more", "[dtype]") {
    simsink::Dims d{64, 33};
    CHECK(d.rank() == 2);
    CHECK(d[0] == 64);
    CHECK(d[1] == 33);
    simsink::Dims nine{1, 2, 3, 4, 5, 6, 7, 8, 9};
    CHECK(nine.rank() == 9);
    std::vector<int> v{3, 4};
    simsink::Dims from_ints(v);
    CHECK(from_ints.rank() == 2);
    CHECK(from_ints[1] == 4);
}
