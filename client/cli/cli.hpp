// Shared pieces of the `simsink` command-line tool: the global options and
// the command table. Each command lives in one cmd_*.cpp file.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "meta.hpp"

namespace simsink::cli {

// A usage mistake: printed with a hint to --help, exit status 2.
class UsageError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct Context {
    std::string admin;                              // admin endpoint
    std::optional<std::filesystem::path> data_dir;  // --data-dir, or asked from the daemon
    double timeout = 10;                            // seconds to wait for the daemon

    // The data directory: --data-dir, $SIMSINK_DATA_DIR, or the daemon's answer.
    std::filesystem::path resolve_data_dir();
};

// Minimal argument parser for one command: flags with values, boolean
// switches and positionals; unknown flags are a UsageError naming them.
class Args {
  public:
    Args(std::vector<std::string> args) : args_(std::move(args)) {}
    bool flag(const std::string& name);  // --json
    std::optional<std::string> value(const std::string& name, const std::string& alias = {});
    std::vector<std::string> positionals(std::size_t min, std::size_t max, const char* what);

  private:
    std::vector<std::string> args_;
};

struct Command {
    const char* name;
    const char* summary;
    const char* usage;  // full help text
    std::function<int(Context&, Args&)> run;
};

const std::vector<Command>& commands();

// One table of command implementations per file.
int cmd_status(Context&, Args&);
int cmd_flush(Context&, Args&);
int cmd_compact(Context&, Args&);
int cmd_campaigns(Context&, Args&);
int cmd_runs(Context&, Args&);
int cmd_show(Context&, Args&);
int cmd_tail(Context&, Args&);
int cmd_export(Context&, Args&);
int cmd_verify(Context&, Args&);

std::string format_bytes(double bytes);
std::string format_time(double unix_seconds);
std::string format_value(const proto::Json& v);

}  // namespace simsink::cli
