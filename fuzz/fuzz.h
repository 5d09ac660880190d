/* Shared by the libFuzzer targets: the entry point's prototype (-Wmissing-prototypes) and a
 * check that stops the run with a crash libFuzzer records, in every build type. */
#ifndef KEDGE_FUZZ_H
#define KEDGE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#endif
