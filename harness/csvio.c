/* cpbench's CSV reader and writer (csvio.h). */
#include "harness/csvio.h"
#include "harness/harness.h"    /* hw_bad_input_hook */

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void hw_csv_bad(const char *who, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", who);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (hw_bad_input_hook) hw_bad_input_hook();   /* the fuzz targets: longjmp, no exit */
    exit(2);
}

/* ---- RFC 4180 reader: fields may be quoted ("" inside a quoted field is a
 * quote; a quoted field may hold commas and line breaks); CRLF or LF. ---- */

/* The file's bytes go into one buffer per side, kept and reused across
 * calls: a bad input ends the process here (exit 2), but the fuzz target
 * longjmps out instead, and must not leak a buffer per input. */
static char *side_buf[4];
static size_t side_cap[4];

void hw_csv_load(hw_csv *r, const char *path, int slot, const char *who)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    r->who = who;
    r->next_line = 1;
    FILE *f = fopen(path, "rb");
    if (!f) hw_csv_bad(r->who, "%s: cannot read (%s)", path, strerror(errno));
    for (;;) {
        if (side_cap[slot] - r->len < 2) {
            size_t cap = side_cap[slot] ? 2 * side_cap[slot] : 1 << 16;
            char *b = realloc(side_buf[slot], cap);
            if (!b) {
                fclose(f);
                hw_csv_bad(r->who, "out of memory");
            }
            side_buf[slot] = b;
            side_cap[slot] = cap;
        }
        r->buf = side_buf[slot];
        r->len += fread(r->buf + r->len, 1, side_cap[slot] - r->len - 1, f);
        if (r->len < side_cap[slot] - 1) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) hw_csv_bad(r->who, "%s: cannot read", path);
    r->buf[r->len] = 0;
    if (memchr(r->buf, 0, r->len)) hw_csv_bad(r->who, "%s: not a CSV file (binary data)", path);
}

static void add_field(hw_csv_rec *rec, const char *s, size_t n)
{
    if (rec->n == rec->cap) {
        rec->cap = rec->cap ? 2 * rec->cap : 64;
        rec->f = realloc(rec->f, rec->cap * sizeof *rec->f);
        if (!rec->f) hw_csv_bad("cpbench", "out of memory");
    }
    char *d = malloc(n + 1);
    if (!d) hw_csv_bad("cpbench", "out of memory");
    memcpy(d, s, n);
    d[n] = 0;
    rec->f[rec->n++] = d;
}

static void clear_record(hw_csv_rec *rec)
{
    for (size_t i = 0; i < rec->n; i++) free(rec->f[i]);
    rec->n = 0;
}

/* The next non-empty record; 0 at end of file. */
int hw_csv_next(hw_csv *r, hw_csv_rec *rec)
{
    clear_record(rec);
    /* skip blank lines */
    while (r->pos < r->len && (r->buf[r->pos] == '\n' || r->buf[r->pos] == '\r')) {
        if (r->buf[r->pos] == '\n') r->next_line++;
        r->pos++;
    }
    if (r->pos >= r->len) return 0;
    r->line = r->next_line;
    char *tmp = malloc(r->len - r->pos + 1);
    if (!tmp) hw_csv_bad(r->who, "out of memory");
    for (;;) {
        size_t n = 0;
        const char *p = r->buf + r->pos;
        if (*p == '"') {
            r->pos++;
            for (;;) {
                if (r->pos >= r->len) {
                    free(tmp);
                    hw_csv_bad(r->who, "%s:%ld: unterminated quoted field", r->path, r->line);
                }
                char c = r->buf[r->pos++];
                if (c == '"') {
                    if (r->buf[r->pos] == '"') tmp[n++] = '"', r->pos++;
                    else break;
                } else {
                    if (c == '\n') r->next_line++;
                    tmp[n++] = c;
                }
            }
            char c = r->buf[r->pos];
            if (c && c != ',' && c != '\n' && c != '\r') {
                free(tmp);
                hw_csv_bad(r->who, "%s:%ld: text after a closing quote", r->path, r->line);
            }
        } else {
            while (r->pos < r->len && r->buf[r->pos] != ',' && r->buf[r->pos] != '\n' && r->buf[r->pos] != '\r') {
                if (r->buf[r->pos] == '"') {
                    free(tmp);
                    hw_csv_bad(r->who, "%s:%ld: a quote inside an unquoted field", r->path, r->line);
                }
                tmp[n++] = r->buf[r->pos++];
            }
        }
        add_field(rec, tmp, n);
        if (r->pos < r->len && r->buf[r->pos] == ',') {
            r->pos++;
            continue;
        }
        if (r->pos < r->len && r->buf[r->pos] == '\r') r->pos++;
        if (r->pos < r->len && r->buf[r->pos] == '\n') r->pos++, r->next_line++;
        break;
    }
    free(tmp);
    return 1;
}

int hw_csv_col(const hw_csv_rec *hdr, const char *name)
{
    for (size_t i = 0; i < hdr->n; i++)
        if (!strcmp(hdr->f[i], name)) return (int)i;
    return -1;
}

void hw_csv_rec_free(hw_csv_rec *rec)
{
    clear_record(rec);
    free(rec->f);
    rec->f = NULL;
    rec->cap = 0;
}

int hw_csv_number(const char *s, double *v)
{
    const char *p = s;
    if (*p == '-') p++;
    if (*p < '0' || *p > '9') return -1;
    while (*p >= '0' && *p <= '9') p++;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9') return -1;
        while (*p >= '0' && *p <= '9') p++;
    }
    if (*p) return -1;
    *v = strtod(s, NULL);
    return 0;
}

int hw_csv_metric(const char *metrics, const char *name, double *v)
{
    size_t nl = strlen(name);
    for (const char *p = metrics; *p;) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > nl && p[nl] == '=' && !strncmp(p, name, nl)) {
            char num[64];
            if (len - nl - 1 >= sizeof num) return -1;
            memcpy(num, p + nl + 1, len - nl - 1);
            num[len - nl - 1] = 0;
            return hw_csv_number(num, v) ? -1 : 0;
        }
        p += len + (end != NULL);
    }
    return 1;
}

void hw_csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s == '\n' ? ' ' : *s, f);
    }
    fputc('"', f);
}

int hw_csv_higher_is_better(const char *metric)
{
    return !strcmp(metric, "ops_per_sec") || !strcmp(metric, "ops") || !strcmp(metric, "ops_per_cpu_s") ||
           !strcmp(metric, "fair_min_ops");
}
