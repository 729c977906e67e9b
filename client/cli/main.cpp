// simsink: the admin and user command-line tool.
#include <cstdlib>
#include <iostream>

#include "admin_client.hpp"
#include "catalog.hpp"
#include "cli.hpp"
#include "simsink_config.h"

using namespace simsink::cli;

namespace {

void print_help() {
    std::cout
        << "Usage: simsink [--admin ENDPOINT] [--data-dir DIR] [--timeout S] COMMAND [ARGS]\n\n"
           "The simsink command-line tool: daemon status and control, and queries over a\n"
           "data directory (catalog and HDF5 files).\n\nCommands:\n";
    for (const auto& c : commands())
        std::cout << "  " << c.name << std::string(11 - std::string(c.name).size(), ' ')
                  << c.summary << "\n";
    std::cout << "\nGlobal options:\n"
                 "  --admin ENDPOINT  daemon admin socket (default $SIMSINK_ADMIN or\n"
                 "                    " SIMSINK_DEFAULT_ADMIN
                 ")\n"
                 "  --data-dir DIR    data directory to read (default $SIMSINK_DATA_DIR, or ask\n"
                 "                    the daemon)\n"
                 "  --timeout S       seconds to wait for the daemon (default 10)\n"
                 "  -h, --help        this help; `simsink COMMAND --help` for one command\n"
                 "  --version         the version\n";
}

}  // namespace

int main(int argc, char** argv) {
    Context ctx;
    if (const char* a = std::getenv("SIMSINK_ADMIN")) ctx.admin = a;
    if (ctx.admin.empty()) ctx.admin = SIMSINK_DEFAULT_ADMIN;
    if (const char* d = std::getenv("SIMSINK_DATA_DIR")) ctx.data_dir = d;
    int i = 1;
    try {
        for (; i < argc; ++i) {
            std::string a = argv[i];
            auto need = [&](const char* flag) {
                if (i + 1 >= argc) throw UsageError(std::string(flag) + " needs a value");
                return std::string(argv[++i]);
            };
            if (a == "-h" || a == "--help") {
                print_help();
                return 0;
            } else if (a == "--version") {
                std::cout << "simsink " SIMSINK_VERSION "\n";
                return 0;
            } else if (a == "--admin") {
                ctx.admin = need("--admin");
            } else if (a == "--data-dir") {
                ctx.data_dir = need("--data-dir");
            } else if (a == "--timeout") {
                ctx.timeout = std::stod(need("--timeout"));
            } else if (a.rfind("--", 0) == 0) {
                throw UsageError("unknown option '" + a + "'");
            } else {
                break;
            }
        }
        if (i >= argc) {
            print_help();
            return 2;
        }
        std::string name = argv[i];
        for (const auto& c : commands()) {
            if (name != c.name) continue;
            std::vector<std::string> rest(argv + i + 1, argv + argc);
            for (const auto& r : rest)
                if (r == "-h" || r == "--help") {
                    std::cout << c.usage;
                    return 0;
                }
            Args args(std::move(rest));
            return c.run(ctx, args);
        }
        throw UsageError("unknown command '" + name + "'");
    } catch (const UsageError& e) {
        std::cerr << "simsink: " << e.what() << " (see simsink --help)\n";
        return 2;
    } catch (const AdminError& e) {
        std::cerr << "simsink: " << e.what() << "\n";
        return 3;
    } catch (const std::exception& e) {
        std::cerr << "simsink: " << e.what() << "\n";
        return 1;
    }
}
