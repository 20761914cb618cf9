#include "tb.h"

bool tb_failed;
static int passed, failed;
static const char *current;

void tb_fail(const char *file, int line, const char *what, long long a, long long b)
{
    tb_failed = true;
    printf("FAIL %s: %s:%d: %s (%lld vs %lld)\n", current, file, line, what, a, b);
}

void tb_run(const char *name, void (*fn)(void))
{
    current = name;
    tb_failed = false;
    fn();
    if (tb_failed) {
        failed++;
    } else {
        passed++;
    }
}

int tb_summary(void)
{
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
