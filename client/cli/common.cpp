#include <cmath>
#include <cstdio>
#include <ctime>

#include "admin_client.hpp"
#include "cli.hpp"

namespace simsink::cli {

std::filesystem::path Context::resolve_data_dir() {
    if (data_dir) {
        if (!std::filesystem::exists(*data_dir / "catalog.sqlite"))
            throw std::runtime_error("no catalog.sqlite in " + data_dir->string() +
                                     " (is it a simsink data directory?)");
        return *data_dir;
    }
    AdminClient admin(this->admin);
    auto s = admin.request(proto::MsgType::status, nullptr,
                           std::chrono::milliseconds(static_cast<long>(timeout * 1000)));
    data_dir = s.at("data_dir").get<std::string>();
    return *data_dir;
}

bool Args::flag(const std::string& name) {
    for (auto it = args_.begin(); it != args_.end(); ++it)
        if (*it == name) {
            args_.erase(it);
            return true;
        }
    return false;
}

std::optional<std::string> Args::value(const std::string& name, const std::string& alias) {
    for (auto it = args_.begin(); it != args_.end(); ++it) {
        if (*it == name || (!alias.empty() && *it == alias)) {
            if (it + 1 == args_.end()) throw UsageError(name + " needs a value");
            std::string v = *(it + 1);
            args_.erase(it, it + 2);
            return v;
        }
        if (it->rfind(name + "=", 0) == 0) {
            std::string v = it->substr(name.size() + 1);
            args_.erase(it);
            return v;
        }
    }
    return std::nullopt;
}

std::vector<std::string> Args::positionals(std::size_t min, std::size_t max, const char* what) {
    for (const auto& a : args_)
        if (a.size() > 1 && a[0] == '-' && !std::isdigit(static_cast<unsigned char>(a[1])))
            throw UsageError("unknown option '" + a + "'");
    if (args_.size() < min) throw UsageError(std::string("missing ") + what);
    if (args_.size() > max) throw UsageError("unexpected argument '" + args_[max] + "'");
    return args_;
}

std::string format_bytes(double b) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) {
        b /= 1024;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", b, units[u]);
    return buf;
}

std::string format_time(double t) {
    if (t <= 0) return "-";
    std::time_t s = static_cast<std::time_t>(t);
    std::tm tm{};
    localtime_r(&s, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

std::string format_value(const proto::Json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number_float()) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.6g", v.get<double>());
        return buf;
    }
    return v.dump();
}

const std::vector<Command>& commands() {
    static const std::vector<Command> table = {
        {"status", "daemon state: clients, runs, rows and bytes, buffer, last commit, errors",
         "Usage: simsink status [--json]\n\nShows the daemon's state. --json prints the raw status "
         "object (PROTOCOL.md section 10).\nExit status 3 when no daemon answers.\n",
         cmd_status},
        {"flush", "commit everything buffered now; returns when it is durable",
         "Usage: simsink flush\n\nAsks the daemon to commit what it has buffered and waits until "
         "the commit is\ndurable (segment fsynced, catalog committed). Fails with DISK_FULL or "
         "IO_ERROR\nif the commit fails.\n",
         cmd_flush},
        {"compact", "merge small segment files of a campaign (or all)",
         "Usage: simsink compact [CAMPAIGN]\n\nMerges small segment files into larger ones; views "
         "stay valid throughout.\n",
         cmd_compact},
        {"campaigns", "list campaigns with their run counts", "Usage: simsink campaigns [--json]\n",
         cmd_campaigns},
        {"runs", "list and query runs by params, results and status",
         "Usage: simsink runs [--campaign C] [--status S] [--where EXPR] [--limit N]\n"
         "                    [--columns a,b,...] [--json | --csv]\n\n"
         "EXPR compares params, results and run columns (id, campaign, status, host, pid,\n"
         "started, ended): = != < <= > >= like, combined with and, or, not, parentheses.\n"
         "A bare name is a run column, then a param, then a result; params.x and\n"
         "results.x are explicit. Examples:\n"
         "  simsink runs --where \"beta > 1e-10 and method = 'dopri5'\"\n"
         "  simsink runs --status finished --columns kappa,energy --csv\n",
         cmd_runs},
        {"show", "one run: params, results, attributes, streams and arrays",
         "Usage: simsink show RUN_ID [--json]\n", cmd_show},
        {"tail", "print the last rows of a stream; --follow for new rows as they commit",
         "Usage: simsink tail RUN_ID KEY [-n ROWS] [--follow] [--interval S]\n\n"
         "Prints the last ROWS (default 10) committed rows of stream KEY of run RUN_ID, one\n"
         "row per line (row number, then values). With --follow, keeps printing rows as\n"
         "they are committed until interrupted.\n",
         cmd_tail},
        {"export", "write one self-contained HDF5 file of a campaign",
         "Usage: simsink export CAMPAIGN -o FILE [--quiet]\n\nCopies every run, stream, array "
         "and attribute of the campaign into FILE, with no\nvirtual datasets or external links, "
         "for sharing. Shows progress unless --quiet.\n",
         cmd_export},
        {"verify", "check the catalog against segment files and views",
         "Usage: simsink verify [CAMPAIGN] [--quick]\n\nChecks the catalog's integrity, that "
         "every segment file exists and holds the rows\nthe catalog says, with matching crc32 "
         "checksums (skipped with --quick), that\nevery stream's extents cover its rows, and that "
         "every view opens. Prints each\nproblem; exit status 1 if there is any.\n",
         cmd_verify},
    };
    return table;
}

}  // namespace simsink::cli
