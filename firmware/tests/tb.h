/* Tiny test framework: TB_CHECK* record a failure and return from the test; tb_main prints
 * one line per failure and the closing line `N passed, N failed`. */
#ifndef TB_H
#define TB_H

#include <stdbool.h>
#include <stdio.h>

extern bool tb_failed;
void tb_fail(const char *file, int line, const char *what, long long a, long long b);
void tb_run(const char *name, void (*fn)(void));
int tb_summary(void);

#define TB_CHECK(cond)                                                                         \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            tb_fail(__FILE__, __LINE__, #cond, 0, 0);                                          \
            return;                                                                            \
        }                                                                                      \
    } while (0)

#define TB_CHECK_EQ(a, b)                                                                      \
    do {                                                                                       \
        long long tb_a_ = (long long)(a), tb_b_ = (long long)(b);                              \
        if (tb_a_ != tb_b_) {                                                                  \
            tb_fail(__FILE__, __LINE__, #a " == " #b, tb_a_, tb_b_);                           \
            return;                                                                            \
        }                                                                                      \
    } while (0)

#define TB_RUN(fn) tb_run(#fn, fn)

#endif /* TB_H */
