#ifndef TESTS_H
#define TESTS_H
void run_frame_tests(void);
void run_request_tests(void);
void run_dispatch_tests(void);
void run_evq_tests(void);
void run_question_tests(void);
void run_gatts_tests(void);
void run_fuzz_tests(void);
#endif
