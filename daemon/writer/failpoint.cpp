#include "writer/failpoint.hpp"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <map>
#include <random>
#include <sstream>
#include <string>

namespace simsink::daemon {

namespace {

const std::map<std::string, double>& armed() {
    static const std::map<std::string, double> points = [] {
        std::map<std::string, double> m;
        const char* spec = std::getenv("SIMSINK_FAILPOINTS");
        if (!spec) return m;
        std::stringstream ss(spec);
        for (std::string item; std::getline(ss, item, ',');) {
            auto eq = item.find('=');
            if (eq == std::string::npos) continue;
            m[item.substr(0, eq)] = std::atof(item.c_str() + eq + 1);
        }
        return m;
    }();
    return points;
}

}  // namespace

void failpoint(const char* name) {
    const auto& points = armed();
    if (points.empty()) return;
    auto it = points.find(name);
    if (it == points.end()) return;
    static std::mt19937_64 rng(std::random_device{}());
    if (std::uniform_real_distribution<double>(0, 1)(rng) >= it->second) return;
    spdlog::critical("failpoint {}: killing the daemon", name);
    spdlog::default_logger()->flush();
    raise(SIGKILL);
}

}  // namespace simsink::daemon
