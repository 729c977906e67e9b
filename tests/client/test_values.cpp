// Params, results and attributes: what each C++ value becomes.
#include <simsink/client.hpp>

#include <catch2/catch.hpp>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

using simsink::Error;
using simsink::ErrorCode;
using simsink::Fields;
using simsink::Value;

TEST_CASE("a string literal param is a string not a bool", "[values]") {
    Value v = "dopri5";
    REQUIRE(v.holds<std::string>());
    CHECK(v.get<std::string>() == "dopri5");

    Fields f{{"method", "dopri5"}};
    REQUIRE(f.size() == 1);
    CHECK(f.begin()->second.holds<std::string>());
}

TEST_CASE("const char pointer, std::string and string_view params are strings", "[values]") {
    const char* p = "rk4";
    std::string s = "rk45";
    std::string_view sv = "euler";
    CHECK(Value(p).get<std::string>() == "rk4");
    CHECK(Value(s).get<std::string>() == "rk45");
    CHECK(Value(sv).get<std::string>() == "euler");
}

TEST_CASE("every integer type becomes int64", "[values]") {
    CHECK(Value(std::int8_t{-3}).get<std::int64_t>() == -3);
    CHECK(Value(std::uint8_t{200}).get<std::int64_t>() == 200);
    CHECK(Value(short{-300}).get<std::int64_t>() == -300);
    CHECK(Value(64).get<std::int64_t>() == 64);
    CHECK(Value(471913919u).get<std::int64_t>() == 471913919);
    CHECK(Value(-5L).get<std::int64_t>() == -5);
    CHECK(Value(7LL).get<std::int64_t>() == 7);
    CHECK(Value(std::uint64_t{1} << 62).get<std::int64_t>() == (std::int64_t{1} << 62));
    CHECK(Value(std::size_t{12}).get<std::int64_t>() == 12);
}

TEST_CASE("an unsigned value above INT64_MAX is BAD_ARGUMENT", "[values]") {
    try {
        Value v(std::uint64_t{1} << 63);
        FAIL("no throw");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::bad_argument);
    }
}

TEST_CASE("floats become double, bools stay bool", "[values]") {
    CHECK(Value(6e-10).get<double>() == 6e-10);
    CHECK(Value(0.5f).get<double>() == 0.5);
    CHECK(Value(true).holds<bool>());
    CHECK(Value(false).get<bool>() == false);
}

TEST_CASE("vectors of numbers and strings", "[values]") {
    CHECK(Value(std::vector<double>{1.0, 2.0}).get<std::vector<double>>().size() == 2);
    CHECK(Value(std::vector<float>{1.5f}).get<std::vector<double>>()[0] == 1.5);
    CHECK(Value(std::vector<std::int64_t>{1, 2, 3}).get<std::vector<std::int64_t>>()[2] == 3);
    CHECK(Value(std::vector<int>{4, 5}).get<std::vector<std::int64_t>>()[1] == 5);
    CHECK(Value(std::vector<std::string>{"a", "b"}).get<std::vector<std::string>>()[1] == "b");
}

TEST_CASE("fields from a braced list keep order and types", "[values]") {
    Fields f{{"nx", 64}, {"beta", 6e-10}, {"method", "dopri5"}, {"seed", 471913919}, {"ok", true}};
    std::vector<std::string> names;
    for (const auto& [n, v] : f) names.push_back(n);
    CHECK(names == std::vector<std::string>{"nx", "beta", "method", "seed", "ok"});
    auto it = f.begin();
    CHECK((it++)->second.holds<std::int64_t>());
    CHECK((it++)->second.holds<double>());
    CHECK((it++)->second.holds<std::string>());
    CHECK((it++)->second.holds<std::int64_t>());
    CHECK((it++)->second.holds<bool>());
}

TEST_CASE("fields from a std::map", "[values]") {
    std::map<std::string, double> m{{"a", 1.0}, {"b", 2.0}};
    Fields f = m;
    CHECK(f.size() == 2);
    std::map<std::string, Value> mv{{"k", Value("v")}};
    Fields g(mv);
    CHECK(g.begin()->second.get<std::string>() == "v");
}
