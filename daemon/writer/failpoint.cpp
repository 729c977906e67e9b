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

struct Armed {
    double probability = 0;
    bool fail = false;  // throw FailpointError instead of SIGKILL
};

const std::map<std::string, Armed>& armed() {
    static const std::map<std::string, Armed> points = [] {
        std::map<std::string, Armed> m;
        const char* spec = std::getenv("SIMSINK_FAILPOINTS");
        if (!spec) return m;
        std::stringstream ss(spec);
        for (std::string item; std::getline(ss, item, ',');) {
            auto eq = item.find('=');
            if (eq == std::string::npos) continue;
            std::string value = item.substr(eq + 1);
            Armed a;
            a.fail = value.starts_with("fail:");
            if (a.fail) value.erase(0, 5);
            a.probability = std::atof(value.c_str());
            m[item.substr(0, eq)] = a;
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
    if (std::uniform_real_distribution<double>(0, 1)(rng) >= it->second.probability) return;
    if (it->second.fail) throw FailpointError(std::string("failpoint ") + name);
    spdlog::critical("failpoint {}: killing the daemon", name);
    spdlog::default_logger()->flush();
    raise(SIGKILL);
}

}  // namespace simsink::daemon
