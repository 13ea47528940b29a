/*
 * libFuzzer target: cpbench's command-line parser (harness/cli.c). The input
 * is split at newlines into argv. Bad input must end in hw_bad_input (here a
 * longjmp instead of exit 2), never in a crash, hang or sanitizer report.
 */
#include "harness/harness.h"

#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

static jmp_buf bad;
static void on_bad(void) { longjmp(bad, 1); }

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static hw_opts o;
    char *buf = malloc(size + 1);
    char *argv[64];
    int argc = 0;
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    argv[argc++] = "cpbench";
    for (char *save, *tok = strtok_r(buf, "\n", &save); tok && argc < 63; tok = strtok_r(NULL, "\n", &save))
        argv[argc++] = tok;
    argv[argc] = NULL;
    hw_bad_input_hook = on_bad;
    int want_list = 0, want_help = 0;
    if (!setjmp(bad)) hw_parse(argc, argv, &o, &want_list, &want_help);
    free(buf);
    return 0;
}
