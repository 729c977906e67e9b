#include "notify.hpp"

#include "simsink_config.h"

#if SIMSINK_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace simsink::daemon::notify {

#if SIMSINK_HAVE_SYSTEMD
void ready() {
    sd_notify(0, "READY=1");
}
void stopping() {
    sd_notify(0, "STOPPING=1");
}
void status(const std::string& text) {
    sd_notifyf(0, "STATUS=%s", text.c_str());
}
double watchdog_period() {
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0) return 0;
    return static_cast<double>(usec) / 2e6;
}
void watchdog() {
    sd_notify(0, "WATCHDOG=1");
}
#else
void ready() {}
void stopping() {}
void status(const std::string&) {}
double watchdog_period() {
    return 0;
}
void watchdog() {}
#endif

}  // namespace simsink::daemon::notify
