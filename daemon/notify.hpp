// systemd notification (Type=notify): READY, STOPPING, STATUS and WATCHDOG.
// Each call is a no-op when not started by systemd or built without it.
#pragma once

#include <string>

namespace simsink::daemon::notify {

void ready();
void stopping();
void status(const std::string& text);
// Half the watchdog interval in seconds, or 0 when no watchdog is set.
double watchdog_period();
void watchdog();

}  // namespace simsink::daemon::notify
