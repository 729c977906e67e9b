// Freeing the blocks of replaced and deleted files off the commit's path.
//
// A rename that replaces a file, an unlink, or a truncate frees the old
// blocks inside the system call. On ext4 mounted with `discard` and without a
// journal (this project's benchmark machine), the free also issues a discard
// and waits for it. That discard is queued behind the segment data being
// written back, so replacing a 40 KB view could block for 20–100 ms. A
// commit is acknowledged only once its views are saved, so the whole commit
// pipeline waited too (docs/performance.md, tenth round). With a journal,
// ext4 defers the free and its discard to the journal commit, and the call
// returns at once; the thread then costs nothing but itself.
//
// The functions here hand that work to one thread of its own. The caller
// goes on at once; the blocks are freed (and discarded) a little later.
//
// If the daemon dies first, the kernel closes every descriptor. A file that
// was already replaced or unlinked is then an orphan inode: a journalled
// ext4 frees it at the next mount, without a journal e2fsck does. A path
// whose removal was pending is still there; recovery treats it as it would
// have before (an unreferenced segment file is removed at start).
#pragma once

#include <filesystem>

namespace simsink::store {

// Closes `fd` on the release thread. Give it a descriptor of a file you are
// about to replace or unlink: the inode stays allocated while the
// descriptor is open, so the rename or unlink frees nothing, and the close
// does. Never blocks on I/O. A negative fd is ignored.
void release_later(int fd) noexcept;

// Removes `path` on the release thread (an error there is ignored, as
// std::filesystem::remove with an error_code would). Never blocks on I/O.
void remove_later(std::filesystem::path path) noexcept;

// Waits until everything handed over so far is done: tests, and the
// daemon's shutdown, which must not leave a removal undone.
void release_pending() noexcept;

}  // namespace simsink::store
