/*
 * cpbench's CSV files (docs/csv.md), read and written in one place: an
 * RFC 4180 reader (quoted fields may hold commas, quotes and line breaks;
 * CRLF or LF) used by `compare` and `ab`, the field writer used by the
 * runner and `ab`, and the one number syntax cpbench writes.
 */
#ifndef CP_HARNESS_CSVIO_H
#define CP_HARNESS_CSVIO_H

#include <stddef.h>
#include <stdio.h>

typedef struct hw_csv {
    const char *path, *who;     /* who: the error prefix, e.g. "cpbench compare" */
    char *buf;
    size_t len, pos;
    long line;                  /* line of the record being read, 1-based */
    long next_line;
} hw_csv;

typedef struct hw_csv_rec {
    char **f;
    size_t n, cap;
} hw_csv_rec;

/* Reads the whole file into buffer `slot` (0..3, kept and reused across
 * calls: the fuzz target longjmps out of bad input and must not leak one
 * per input). Every error is bad input: one line "WHO: PATH...", exit 2. */
void hw_csv_load(hw_csv *r, const char *path, int slot, const char *who);
int  hw_csv_next(hw_csv *r, hw_csv_rec *rec);          /* the next non-empty record; 0 at end */
void hw_csv_rec_free(hw_csv_rec *rec);
int  hw_csv_col(const hw_csv_rec *hdr, const char *name);   /* -1 if absent */
__attribute__((noreturn, format(printf, 2, 3))) void hw_csv_bad(const char *who, const char *fmt, ...);
/* Numbers as cpbench writes them: -?DIGITS[.DIGITS]; 0 if s is one. */
int  hw_csv_number(const char *s, double *v);
/* The value of `name` in a metrics field ("a=1.5;b=2", docs/csv.md): 0 and
 * *v if there, 1 if the field does not name it, -1 if its value is no number. */
int  hw_csv_metric(const char *metrics, const char *name, double *v);
/* One field, quoted when it holds a comma or a quote; a line break becomes
 * a space, so that every row stays one line. */
void hw_csv_field(FILE *f, const char *s);

/* A metric's direction for compare and ab: the throughputs (ops_per_sec,
 * ops, ops_per_cpu_s) and the fewest ops of one thread (fair_min_ops: the
 * most starved thread got more) are better higher, every other column
 * (times) lower. */
int hw_csv_higher_is_better(const char *metric);

#endif
