/* diskfull.h — what the tests of the records (test_records, test_recserve)
 * need to give a store a real full disk and to clean up after themselves:
 * a private mount namespace (where a tmpfs can be mounted that no other
 * process sees), a file that fills a file system to its last byte, and
 * removing a temporary folder. Static inline, like test.h. */
#ifndef QC_DISKFULL_H
#define QC_DISKFULL_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

/* Moves this process into a mount namespace of its own (root only; call it
 * before any thread starts). 1 when that worked, so test_mount_tmpfs may be used. */
static inline int test_private_mounts(void) {
    return geteuid() == 0 && unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
}

/* Fills the file system holding path until it refuses another byte; -1 when path cannot be made. */
static inline int test_fill_disk(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return -1;
    static char zeros[65536];
    size_t chunk = sizeof zeros;
    while (chunk) {
        ssize_t k = write(fd, zeros, chunk);
        if (k < 0 && errno == ENOSPC) chunk /= 2;
        else if (k <= 0) break;
    }
    close(fd);
    return 0;
}

static inline int test_rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

/* Removes dir and everything in it. */
static inline void test_rm_tree(const char *dir) { nftw(dir, test_rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

#endif
