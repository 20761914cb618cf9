/* C unit tests of the firmware core; the last line is `N passed, N failed`. */
#include "tb.h"
#include "tests.h"

int main(void)
{
    run_frame_tests();
    run_request_tests();
    run_dispatch_tests();
    run_evq_tests();
    run_question_tests();
    run_gatts_tests();
    run_fuzz_tests();
    return tb_summary();
}
