/* What the libFuzzer targets share: the entry point's prototype, a check
 * that aborts (so the fuzzer records the input) with what it found, and
 * hiredis's reader over the input, for the targets whose bytes come from
 * Redis. Each target is one fuzz_NAME.c with its seeds in corpus/NAME/. */
#ifndef NC_FUZZ_H
#define NC_FUZZ_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with the failed condition when it does not hold. */
#define FUZZ_CHECK(cond)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);     \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

/* Whether data declares an array of more than 65,536 elements: hiredis
 * 0.14 allocates 8 bytes per declared element before reading any, so
 * "*1000000000" is an 8 GB malloc, hiredis's and not ours to bound (the
 * daemon trusts its Redis that far). Such inputs are skipped. */
static inline int fuzz_resp_huge(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        if (data[i] != '*')
            continue;
        size_t digits = 0;
        while (i + 1 + digits < size && data[i + 1 + digits] >= '0' && data[i + 1 + digits] <= '9')
            digits++;
        if (digits > 5 || (digits == 5 && memcmp(data + i + 1, "65536", 5) > 0))
            return 1;
    }
    return 0;
}

/* The first reply in data, as Redis would send it (RESP2), or NULL when
 * the bytes hold no whole reply or a malformed one (or a huge array). The
 * caller frees it with freeReplyObject(). */
static inline redisReply *fuzz_resp(const uint8_t *data, size_t size)
{
    if (fuzz_resp_huge(data, size))
        return NULL;
    redisReader *rd = redisReaderCreate();
    void *reply = NULL;
    if (rd == NULL)
        abort();
    if (redisReaderFeed(rd, (const char *)data, size) != REDIS_OK ||
        redisReaderGetReply(rd, &reply) != REDIS_OK)
        reply = NULL;
    redisReaderFree(rd);
    return reply;
}

#endif
