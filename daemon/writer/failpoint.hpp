// Failpoints for the crash harness (tests/fault/): named places inside a
// commit or a compaction where the daemon can kill itself with SIGKILL, so
// that a test can prove a crash exactly there loses nothing. Armed only by
// the environment variable SIMSINK_FAILPOINTS="name=probability,...", e.g.
//   SIMSINK_FAILPOINTS="segment-renamed=0.05,compact-committed=0.2"
// Unset (the normal case), each failpoint is one predictable branch.
#pragma once

namespace simsink::daemon {

// Points, in commit order: segment-renamed (segment durable, catalog not yet),
// catalog-committed (durable, views and acks not yet), views-written (acks
// not yet sent); in compaction order: compact-written (merged segment
// durable, catalog not yet), compact-committed (catalog swapped, views not
// rewritten, old files not deleted).
void failpoint(const char* name);

}  // namespace simsink::daemon
