// Commands that talk to the daemon: status, flush, compact.
#include <iostream>

#include "admin_client.hpp"
#include "cli.hpp"

namespace simsink::cli {

namespace {

std::chrono::milliseconds ms(double s) {
    return std::chrono::milliseconds(static_cast<long>(s * 1000));
}

}  // namespace

int cmd_status(Context& ctx, Args& args) {
    bool json = args.flag("--json");
    args.positionals(0, 0, "");
    AdminClient admin(ctx.admin);
    auto s = admin.request(proto::MsgType::status, nullptr, ms(ctx.timeout));
    if (json) {
        std::cout << s.dump(2) << "\n";
        return 0;
    }
    const auto& rc = s["received"];
    const auto& cm = s["committed"];
    std::cout << "simsinkd " << s.value("version", "?") << ", pid " << s.value("pid", 0) << ", up "
              << static_cast<long>(s.value("uptime", 0.0)) << " s\n"
              << "state:      " << s.value("state", "?") << "\n"
              << "data dir:   " << s.value("data_dir", "?") << "\n"
              << "clients:    " << s["clients"].value("connected", 0) << " connected, "
              << s["clients"].value("known", 0) << " known\n"
              << "runs:       " << s["runs"].value("open", 0) << " open, "
              << s["runs"].value("total", 0) << " total\n"
              << "received:   " << rc.value("rows", 0) << " rows, "
              << format_bytes(rc.value("bytes", 0.0)) << " in " << rc.value("messages", 0)
              << " messages\n"
              << "committed:  " << cm.value("rows", 0) << " rows, "
              << format_bytes(cm.value("bytes", 0.0)) << " in " << cm.value("commits", 0)
              << " commits (" << cm.value("pipelined", 0) << " pipelined), "
              << cm.value("segments", 0) << " segments\n"
              << "buffered:   " << format_bytes(s.value("buffered_bytes", 0.0)) << " of "
              << format_bytes(s.value("buffer_cap", 0.0)) << " cap ("
              << format_bytes(s.value("credit_outstanding", 0.0)) << " credit granted)\n";
    if (s["last_commit"].is_object())
        std::cout << "last commit: " << format_time(s["last_commit"].value("at", 0.0)) << ", "
                  << format_bytes(s["last_commit"].value("bytes", 0.0)) << " in "
                  << s["last_commit"].value("seconds", 0.0) << " s\n";
    else
        std::cout << "last commit: none yet\n";
    if (const auto& sh = s.value("shm", proto::Json::object()); sh.contains("socket")) {
        if (!sh["socket"].is_string()) {
            std::cout << "shared mem: off\n";
        } else {
            std::cout << "shared mem: " << format_bytes(sh.value("bytes", 0.0)) << " in "
                      << sh.value("appends", 0) << " messages read in place, "
                      << sh.value("arenas", 0) << " client arenas ("
                      << sh["socket"].get<std::string>() << ")\n";
            const auto& p = sh.value("pool", proto::Json::object());
            if (p.value("cap", 0) == 0)
                std::cout << "lent mem:   none (shm-pool 0)\n";
            else
                std::cout << "lent mem:   " << p.value("lent", 0) << " arenas lent, "
                          << p.value("idle", 0) << " idle holding "
                          << format_bytes(p.value("idle_bytes", 0.0)) << " of "
                          << format_bytes(p.value("cap", 0.0)) << "; " << p.value("loans", 0)
                          << " loans, " << p.value("warm_loans", 0) << " of them warm\n";
        }
    }
    std::cout << "errors:     " << s["errors"].value("total", 0);
    if (s["errors"]["last"].is_string())
        std::cout << " (last: " << s["errors"]["last"].get<std::string>() << ")";
    std::cout << "\n";
    if (s.contains("campaigns") && !s["campaigns"].empty()) {
        std::cout << "campaigns: ";
        for (const auto& c : s["campaigns"]) std::cout << " " << c.get<std::string>();
        std::cout << "\n";
    }
    return 0;
}

int cmd_flush(Context& ctx, Args& args) {
    args.positionals(0, 0, "");
    AdminClient admin(ctx.admin);
    // A commit of a full buffer can take a while: allow at least a minute.
    auto r = admin.request(proto::MsgType::commit, nullptr, ms(std::max(ctx.timeout, 60.0)));
    std::cout << "committed: " << r.value("rows", 0) << " rows, "
              << format_bytes(r.value("bytes", 0.0)) << ", " << r.value("segments", 0)
              << " segment files in " << r.value("seconds", 0.0) << " s\n";
    return 0;
}

int cmd_compact(Context& ctx, Args& args) {
    auto pos = args.positionals(0, 1, "campaign");
    AdminClient admin(ctx.admin);
    proto::Json meta = proto::Json::object();
    if (!pos.empty()) meta["campaign"] = pos[0];
    auto r = admin.request(proto::MsgType::compact, &meta, ms(std::max(ctx.timeout, 600.0)));
    std::cout << "merged " << r.value("merged", 0) << " segments: " << r.value("segments_before", 0)
              << " -> " << r.value("segments_after", 0) << " segment files\n";
    return 0;
}

}  // namespace simsink::cli
