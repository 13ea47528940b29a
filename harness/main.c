/* cpbench: run a pattern of the Go concurrency catalogue on a libcp backend. */
#include "harness/harness.h"

#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    static hw_opts o;   /* large (sweep lists): static, not on the stack */
    int want_list = 0, want_help = 0;
    if (argc > 1 && !strcmp(argv[1], "stress")) return hw_stress_main(argc - 1, argv + 1);
    if (argc > 1 && !strcmp(argv[1], "compare")) return hw_compare(argc - 2, argv + 2);
    if (argc > 1 && !strcmp(argv[1], "ab")) return hw_ab_main(argc - 1, argv + 1);
    hw_parse(argc, argv, &o, &want_list, &want_help);
    int reported = 0;
    if (want_list) {
        hw_list_catalogue(stdout);
        return hw_out_check(stdout, "standard output", &reported) ? 1 : 0;
    }
    if (want_help) {
        if (o.npatterns)
            for (size_t i = 0; i < o.npatterns; i++) hw_pattern_help(stdout, o.patterns[i]);
        else
            hw_usage(stdout);
        return hw_out_check(stdout, "standard output", &reported) ? 1 : 0;
    }
    return hw_run_all(&o);
}
