/* tests/fuzz/fuzz.h — what every fuzz target shares: the libFuzzer entry
 * point's signature. Each fuzz_*.c defines LLVMFuzzerTestOneInput; built with
 * clang -fsanitize=fuzzer it is a libFuzzer binary (`make fuzz`), built with
 * driver.c it replays the seed corpus in tests/fuzz/corpus/ (`make test`). */
#ifndef HERD_FUZZ_H
#define HERD_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Fail loudly: an invariant of the code under test does not hold. */
#define FUZZ_CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

#endif
