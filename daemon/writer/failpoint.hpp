// Failpoints for the fault tests (tests/fault/, tests/integration/): named
// places inside a commit or a compaction where the daemon can kill itself
// with SIGKILL, so that a test can prove a crash exactly there loses
// nothing, or fail the step as an I/O error would, so that a test can prove
// the retry loses and duplicates nothing. Armed only by the environment
// variable SIMSINK_FAILPOINTS="name=probability,name=fail:probability,...":
//   SIMSINK_FAILPOINTS="segment-renamed=0.05,catalog-commit=fail:0.3"
// Unset (the normal case), each failpoint is one predictable branch.
#pragma once

#include <stdexcept>

namespace simsink::daemon {

// What an armed "fail:" failpoint throws: an error like any I/O error.
class FailpointError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// Points, in commit order: segment-renamed (segments durable, catalog not
// yet), catalog-commit (the same, just before the transaction),
// catalog-committed (durable, views and acks not yet; the next commit's
// segments not started either), views-written (acks not yet sent, the next
// commit's segments may be being written: commits are pipelined); in compaction
// order: compact-written (merged segment durable, catalog not yet),
// compact-committed (catalog swapped, views not rewritten, old files not
// deleted).
void failpoint(const char* name);

}  // namespace simsink::daemon
