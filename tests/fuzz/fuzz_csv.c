/*
 * libFuzzer target: `cpbench compare`'s CSV reader and everything after it
 * (pairing, statistics, the table). The input is written to a file and
 * compared with itself and with the committed baseline. Bad input must end
 * in the one-line error path (a longjmp here instead of exit 2).
 */
#include "harness/harness.h"

#include <setjmp.h>
#include <stdio.h>
#include <unistd.h>

static jmp_buf bad;
static void on_bad(void) { longjmp(bad, 1); }

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/cpbench-fuzz-%ld.csv", (long)getpid());
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    hw_bad_input_hook = on_bad;
    char *self[] = { path, path, "--placement=strict", NULL };
    if (!setjmp(bad)) hw_compare(3, self);
    return 0;
}
