// The deterministic data the test workers record and the checks expect: the
// value of element i of row `step` of stream `s` of worker k. Shared by the
// worker program and the checks, so a mismatch names a real loss or mix-up.
#pragma once

#include <complex>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <simsink/client.hpp>

namespace simsink::testing {

struct StreamSpec {
    const char* key;
    DType dtype;
    std::vector<std::uint64_t> shape;  // row shape
    int every;                         // recorded on steps where step % every == 0
};

// Every dtype, ranks 0 to 3.
inline const std::vector<StreamSpec>& stream_specs() {
    static const std::vector<StreamSpec> specs = {
        {"t", DType::float64, {}, 1},
        {"state/y", DType::float64, {100}, 1},
        {"diag/count", DType::int32, {}, 1},
        {"img", DType::uint8, {4, 5}, 2},
        {"qhat", DType::complex128, {6, 3}, 10},
        {"c64", DType::complex64, {3}, 3},
        {"flags", DType::boolean, {2}, 1},
        {"cube", DType::int16, {2, 2, 2}, 5},
        {"u64", DType::uint64, {}, 1},
        {"f32", DType::float32, {7}, 1},
        {"i8", DType::int8, {3}, 4},
        {"i64", DType::int64, {2}, 1},
        {"u16", DType::uint16, {2}, 7},
        {"u32", DType::uint32, {2}, 1},
    };
    return specs;
}

inline std::size_t dtype_size(DType t) {
    switch (t) {
        case DType::int8:
        case DType::uint8:
        case DType::boolean:
            return 1;
        case DType::int16:
        case DType::uint16:
            return 2;
        case DType::int32:
        case DType::uint32:
        case DType::float32:
            return 4;
        case DType::int64:
        case DType::uint64:
        case DType::float64:
        case DType::complex64:
            return 8;
        case DType::complex128:
            return 16;
    }
    return 0;
}

inline std::uint64_t elements(const std::vector<std::uint64_t>& shape) {
    std::uint64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
}

// Writes element i of the given row into out (dtype_size bytes).
inline void element(DType t, int k, int s, std::uint64_t step, std::uint64_t i, void* out) {
    const std::int64_t base = k * 7919 + static_cast<std::int64_t>(step) * 31 +
                              static_cast<std::int64_t>(i) * 3 + s * 101;
    auto put = [&](auto v) { std::memcpy(out, &v, sizeof v); };
    switch (t) {
        case DType::int8:
            put(static_cast<std::int8_t>(base % 101 - 50));
            break;
        case DType::int16:
            put(static_cast<std::int16_t>(base % 30001 - 15000));
            break;
        case DType::int32:
            put(static_cast<std::int32_t>(base - 1000000));
            break;
        case DType::int64:
            put(static_cast<std::int64_t>(base) * 1000003 - 7);
            break;
        case DType::uint8:
            put(static_cast<std::uint8_t>(base % 251));
            break;
        case DType::uint16:
            put(static_cast<std::uint16_t>(base % 60000));
            break;
        case DType::uint32:
            put(static_cast<std::uint32_t>(base * 13));
            break;
        case DType::uint64:
            put(static_cast<std::uint64_t>(base) << 20);
            break;
        case DType::float32:
            put(static_cast<float>(base) * 0.25f);
            break;
        case DType::float64:
            put(static_cast<double>(base) * 0.5 + 1e-3);
            break;
        case DType::complex64:
            put(std::complex<float>(static_cast<float>(base), -0.5f * static_cast<float>(base)));
            break;
        case DType::complex128:
            put(std::complex<double>(base * 0.125, -static_cast<double>(base)));
            break;
        case DType::boolean:
            put(static_cast<std::uint8_t>(base % 3 == 0));
            break;
    }
}

inline std::vector<std::uint8_t> row_bytes(const StreamSpec& spec, int k, int s,
                                           std::uint64_t step) {
    const auto n = elements(spec.shape), size = dtype_size(spec.dtype);
    std::vector<std::uint8_t> out(n * size);
    for (std::uint64_t i = 0; i < n; ++i) element(spec.dtype, k, s, step, i, out.data() + i * size);
    return out;
}

// Rows stream s holds after `steps` steps.
inline std::uint64_t rows_after(const StreamSpec& spec, std::uint64_t steps) {
    return (steps + spec.every - 1) / spec.every;
}

inline double grid_value(int k, std::uint64_t i) {
    return static_cast<double>(i) * 0.1 + k;
}
inline double energy(int k) {
    return k * 1.5 + 0.25;
}
inline double beta(int k) {
    return 1e-10 * (k + 1);
}
inline std::string method(int k) {
    return k % 2 ? "rk4" : "dopri5";
}

}  // namespace simsink::testing
