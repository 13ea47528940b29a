/*
 * cpbench's output files: what they may replace, how write errors surface,
 * and what an interruption leaves behind.
 *
 * Files that appear whole or not at all (--json, each .hgrm): written under
 * "<target>.tmp.<pid>" beside their target and renamed over it once complete
 * (rename(2) is atomic within a file system). What is at the path decides
 * what "target" is:
 *   - nothing, or a regular file: the path itself; an existing file keeps its
 *     permission bits (and, where we may, its owner and group);
 *   - a symbolic link: the file it points to, found by following the chain
 *     (a dangling link: where it points), so the link stays a link and its
 *     target is what gets replaced;
 *   - anything else that is not a directory (a device, a FIFO): written
 *     through directly, never replaced (as root, --json=/dev/null must not
 *     swap the system's /dev/null for a regular file);
 *   - a directory: refused (EISDIR), before anything is written.
 * A run that is interrupted (SIGINT, SIGTERM, SIGHUP, SIGPIPE), stopped by
 * the watchdog or ended by exit() unlinks its live temporaries, so neither a
 * partial file under the final name nor a stray temporary is left behind.
 *
 * The CSV is written in place (rows appear as they complete), but opened in
 * two steps: hw_direct_open() at start-up without truncating, so that no bad
 * input found afterwards can have destroyed an existing file, and
 * hw_direct_start() (truncate) once every check has passed. A file created
 * by the first step is removed again if cpbench exits before the second.
 *
 * Write errors: hw_out_check() flushes and reports the first lost write of an
 * output in one line, as coreutils do ("cpbench: write error on FILE: ...").
 *
 * Also: the configuration slug shared by the JSON names and .hgrm file names,
 * and the identity of an output (same file, for --csv=F --json=F).
 */
#define _GNU_SOURCE
#include "harness/harness.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* One slot per kind of output (HW_SLOT_*). A slot's path is complete before
 * `live` is set and `live` is cleared before the path changes, so the signal
 * handler only ever unlinks a whole path: the temporary of a rename output,
 * or a CSV that this process created and has not started writing. */
static char tmp_path[HW_NSLOTS][PATH_MAX + 32];    /* what to unlink */
static char target_path[HW_NSLOTS][PATH_MAX];     /* rename outputs: renamed onto */
static char shown_path[HW_NSLOTS][PATH_MAX];      /* as the user named it, for messages */
static int direct[HW_NSLOTS];                     /* written through: nothing to rename */
static volatile sig_atomic_t tmp_live[HW_NSLOTS];
static int handlers_installed;

void hw_tmp_abandon(void)
{
    for (int i = 0; i < HW_NSLOTS; i++)
        if (tmp_live[i]) {
            tmp_live[i] = 0;
            unlink(tmp_path[i]);
        }
}

/* SIGINT/SIGTERM/SIGHUP/SIGPIPE: the first one stops the sweep gracefully
 * (the current run is told to stop, its unfinished repetition is discarded,
 * every completed row and the summary are kept, exit 128 + signal); a second
 * SIGINT/SIGTERM/SIGHUP kills at once, removing live temporaries first.
 * SIGPIPE (the reader of stdout, a --csv=- pipe or a FIFO went away, as with
 * `cpbench ... | head -1`) is an interruption like the others, but a later
 * one is only the next write to that pipe: ignored (the write fails with
 * EPIPE instead), never a reason to die with temporaries left behind. */
volatile sig_atomic_t hw_interrupted;

static void on_signal(int sig)
{
    if (!hw_interrupted) {
        hw_interrupted = sig;
        hw_stop_current_run();      /* one atomic store: async-signal-safe */
        return;
    }
    if (sig == SIGPIPE) return;
    hw_tmp_abandon();
    signal(sig, SIG_DFL);
    raise(sig);
}

void hw_signals_install(void)
{
    if (!handlers_installed) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGPIPE };
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
            struct sigaction old;
            /* a signal ignored on entry (nohup, a background job) stays
             * ignored; an ignored SIGPIPE makes a closed pipe a write error */
            if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN) sigaction(sigs[i], &sa, NULL);
        }
        atexit(hw_tmp_abandon);   /* exit(2) on bad input found after opening */
        handlers_installed = 1;
    }
}

/* /dev/stdout, /dev/stderr, /dev/fd/N and /proc/self/fd/N name an open file
 * descriptor rather than a file: writing "to" them means writing to that
 * descriptor (as bash does), at its offset and in its mode (a `>> log` of
 * the caller stays an append), never renaming over the file it reaches. */
static int fd_alias(const char *path)
{
    if (!strcmp(path, "/dev/stdout")) return 1;
    if (!strcmp(path, "/dev/stderr")) return 2;
    const char *n = !strncmp(path, "/dev/fd/", 8) ? path + 8 : !strncmp(path, "/proc/self/fd/", 14) ? path + 14 : NULL;
    if (!n || *n < '0' || *n > '9') return -1;
    char *end;
    long v = strtol(n, &end, 10);
    return *end || v > INT_MAX ? -1 : (int)v;
}

/* A link in /proc (also through a link to a /proc directory, as /dev/fd) */
static int in_proc(const char *path)
{
    char dir[PATH_MAX], real[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash) return 0;
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path) + 1, path);
    return realpath(dir, real) && (!strcmp(real, "/proc") || !strncmp(real, "/proc/", 6));
}

/* Follows the symbolic links at `path` (each hop relative to the directory
 * of the link it came from) to what they finally name; 0, or -1 + errno.
 * *magic: the chain reached a link in /proc, whose text is no path to
 * follow (it stops there; open(2) follows it properly). */
static int resolve_links(const char *path, char *out, size_t n, int *magic)
{
    char cur[PATH_MAX], link[PATH_MAX];
    *magic = 0;
    if ((size_t)snprintf(cur, sizeof cur, "%s", path) >= sizeof cur) return errno = ENAMETOOLONG, -1;
    for (int hops = 0;; hops++) {
        struct stat st;
        if (lstat(cur, &st) || !S_ISLNK(st.st_mode)) break;   /* not there yet, or not a link */
        if (fd_alias(cur) >= 0 || in_proc(cur)) {
            *magic = 1;
            break;
        }
        if (hops == 40) return errno = ELOOP, -1;
        ssize_t len = readlink(cur, link, sizeof link - 1);
        if (len < 0) return -1;
        link[len] = 0;
        if (link[0] == '/') {
            memcpy(cur, link, (size_t)len + 1);
        } else {
            char *slash = strrchr(cur, '/');
            size_t dir = slash ? (size_t)(slash - cur) + 1 : 0;   /* keep "dir/" */
            if (dir + (size_t)len + 1 > sizeof cur) return errno = ENAMETOOLONG, -1;
            memcpy(cur + dir, link, (size_t)len + 1);
        }
    }
    if ((size_t)snprintf(out, n, "%s", cur) >= n) return errno = ENAMETOOLONG, -1;
    return 0;
}

/* An output to write through, not by rename: a descriptor alias, or what
 * a /proc link reaches (a regular file there is truncated, as by ">").
 * -2 when `path` is neither, else an open descriptor or -1 + errno. */
static int open_through(const char *path, const char *target, int magic)
{
    int alias = fd_alias(path);
    if (alias < 0 && magic) alias = fd_alias(target);
    if (alias >= 0) return fcntl(alias, F_DUPFD_CLOEXEC, 3);
    if (!magic) return -2;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return errno = EISDIR, -1;
    return open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY | (stat(path, &st) == 0 && S_ISREG(st.st_mode) ? O_TRUNC : 0));
}

int hw_out_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);   /* stat follows every link */
}

FILE *hw_tmp_open(const char *final, int slot)
{
    hw_signals_install();
    tmp_live[slot] = 0;
    direct[slot] = 0;
    snprintf(shown_path[slot], sizeof shown_path[slot], "%s", final);
    int magic;
    if (resolve_links(final, target_path[slot], sizeof target_path[slot], &magic)) return NULL;
    int fd = open_through(final, target_path[slot], magic);
    if (fd != -2) {
        if (fd < 0) return NULL;
        direct[slot] = 1;
        FILE *f = fdopen(fd, "w");
        if (!f) close(fd);
        return f;
    }
    struct stat st;
    int exists = stat(target_path[slot], &st) == 0;
    if (exists && S_ISDIR(st.st_mode)) {
        errno = EISDIR;
        return NULL;
    }
    if (exists && !S_ISREG(st.st_mode)) {
        /* a device or FIFO: write to it, do not replace it */
        fd = open(target_path[slot], O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) return NULL;
        direct[slot] = 1;
    } else {
        if ((size_t)snprintf(tmp_path[slot], sizeof tmp_path[slot], "%s.tmp.%ld", target_path[slot],
                             (long)getpid()) >= sizeof tmp_path[slot])
            return errno = ENAMETOOLONG, NULL;
        /* O_EXCL: whatever is under the temporary's name (a stale temporary
         * of a process that had this pid, a planted symlink) is removed,
         * never written through */
        fd = open(tmp_path[slot], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno == EEXIST && unlink(tmp_path[slot]) == 0)
            fd = open(tmp_path[slot], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0) return NULL;
        tmp_live[slot] = 1;
        if (exists) {   /* the replacement keeps the file's permissions (owner too, where allowed) */
            if (st.st_uid != geteuid() || st.st_gid != getegid())
                if (fchown(fd, st.st_uid, st.st_gid)) {}
            fchmod(fd, st.st_mode & 0777);
        }
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        int e = errno;
        close(fd);
        if (tmp_live[slot]) {
            tmp_live[slot] = 0;
            unlink(tmp_path[slot]);
        }
        errno = e;
    }
    return f;
}

int hw_tmp_commit(FILE *f, int slot)
{
    int err = 0;
    if (fflush(f)) err = errno;
    else if (ferror(f)) err = EIO;   /* a write failed earlier; its errno is gone */
    if (fclose(f) && !err) err = errno;
    if (!err && !direct[slot] && rename(tmp_path[slot], target_path[slot])) err = errno;
    if (tmp_live[slot]) {
        tmp_live[slot] = 0;
        if (err) unlink(tmp_path[slot]);
    }
    if (err) fprintf(stderr, "cpbench: write error on %s: %s\n", shown_path[slot], strerror(err));
    return err ? -1 : 0;
}

void hw_tmp_close(FILE *f, int slot)
{
    fclose(f);
    if (tmp_live[slot]) {
        tmp_live[slot] = 0;
        unlink(tmp_path[slot]);
    }
}

FILE *hw_direct_open(const char *path, int slot)
{
    hw_signals_install();
    tmp_live[slot] = 0;
    direct[slot] = 0;
    int alias = fd_alias(path);
    if (alias >= 0) {   /* a descriptor: its offset and mode, never truncated */
        int fd = fcntl(alias, F_DUPFD_CLOEXEC, 3);
        FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
        if (fd >= 0 && !f) close(fd);
        if (f) direct[slot] = 1;
        return f;
    }
    /* no O_TRUNC here: nothing is destroyed until hw_direct_start */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0666);
    int created = fd >= 0;
    if (fd < 0 && errno == EEXIST) fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0666);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        int e = errno;
        close(fd);
        if (created) unlink(path);
        return errno = e, NULL;
    }
    if (created && (size_t)snprintf(tmp_path[slot], sizeof tmp_path[slot], "%s", path) < sizeof tmp_path[slot])
        tmp_live[slot] = 1;
    return f;
}

int hw_direct_start(FILE *f, int slot)
{
    struct stat st;
    int fd = fileno(f);
    tmp_live[slot] = 0;
    if (direct[slot]) return 0;   /* a descriptor alias */
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 && ftruncate(fd, 0)) return -1;
    return 0;
}

int hw_out_check(FILE *f, const char *name, int *reported)
{
    int err = 0;
    if (fflush(f)) err = errno;
    else if (ferror(f)) err = EIO;
    if (!err) return 0;
    /* a reader that went away (SIGPIPE, already an interruption) is not
     * worth a second message */
    if (!*reported && !(err == EPIPE && hw_interrupted == SIGPIPE))
        fprintf(stderr, "cpbench: write error on %s: %s\n", name, strerror(err));
    *reported = 1;
    return -1;
}

/* ---- the identity of an output path ----
 * Existing files compare by device and inode (a symlink, a hard link or
 * /dev/stdout names the file it reaches); files yet to be created by the
 * canonical name of their directory plus their own name. "-" is stdout. */
typedef struct out_id {
    int by_inode;
    dev_t dev;
    ino_t ino;
    char path[PATH_MAX + NAME_MAX + 2];
} out_id;

static int out_identify(const char *path, out_id *id)
{
    struct stat st;
    memset(id, 0, sizeof *id);
    if (!strcmp(path, "-") && fstat(1, &st)) return -1;   /* stdout closed: nothing to collide with */
    if (!strcmp(path, "-") || stat(path, &st) == 0) {
        /* the null device loses nothing that was not meant to be lost: any
         * number of outputs may go there */
        if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)) return -1;
        id->by_inode = 1;
        id->dev = st.st_dev;
        id->ino = st.st_ino;
        return 0;
    }
    char target[PATH_MAX], dir[PATH_MAX];
    int magic;
    if (resolve_links(path, target, sizeof target, &magic) || magic) return -1;
    const char *slash = strrchr(target, '/');
    const char *base = slash ? slash + 1 : target;
    if (slash == target) snprintf(dir, sizeof dir, "/");
    else if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - target), target);
    else snprintf(dir, sizeof dir, ".");
    char canon[PATH_MAX];
    if (!realpath(dir, canon)) return -1;   /* the open will fail and say why */
    size_t lc = strlen(canon), lb = strlen(base);
    if (lc + 1 + lb >= sizeof id->path) return -1;
    memcpy(id->path, canon, lc);
    id->path[lc] = '/';
    memcpy(id->path + lc + 1, base, lb + 1);
    return 0;
}

int hw_out_same(const char *a, const char *b)
{
    out_id x, y;
    if (out_identify(a, &x) || out_identify(b, &y) || x.by_inode != y.by_inode) return 0;
    return x.by_inode ? x.dev == y.dev && x.ino == y.ino : !strcmp(x.path, y.path);
}

void hw_cfg_slug(const hw_opts *o, const wl_workload *w, const wl_cfg *cfg, char kv, char sep, char *buf,
                 size_t n)
{
    /* What tells configurations of one pattern apart: the knobs it uses
     * (work_ns only when non-zero; items only when swept, since the run's
     * length is not its configuration) and parameters off their default. */
    size_t m = 0;
    buf[0] = 0;
    for (int i = 0; i < K_NKNOBS && m < n; i++) {
        int64_t k = wl_knob_get(&cfg->k, i);
        int show = hw_knobs[i].show;
        if (k == WL_UNUSED) continue;
        if (show == WL_KS_NONZERO && k == 0) continue;
        if (show == WL_KS_COUNT && (cfg->duration > 0 || o->knob[i].n < 2)) continue;
        m += (size_t)snprintf(buf + m, n - m, "%s%s%c%lld", m ? (char[]){ sep, 0 } : "", hw_knob_flag[i], kv,
                              (long long)k);
    }
    int j = 0;
    for (const wl_param *p = w->params; p->key && m < n; p++, j++)
        if (cfg->set[j] != p->def)
            m += (size_t)snprintf(buf + m, n - m, "%s%s%c%lld", m ? (char[]){ sep, 0 } : "", p->key, kv,
                                  (long long)cfg->set[j]);
    if (!buf[0]) snprintf(buf, n, "default");
}
