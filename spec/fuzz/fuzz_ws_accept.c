/* libFuzzer target: ws_accept_key. The key is accepted exactly when it is
 * base64 of 16 bytes as Node's ws checks it, /^[+/0-9A-Za-z]{22}==$/, and
 * the accept value then equals base64(SHA-1(key + GUID)), computed here with
 * EVP_Digest and a base64 encoder of our own.
 *
 * FUZZ_WS_ACCEPT_LENIENT=1 in the environment only requires that accepted
 * keys are 24 bytes ending in "==" (to keep fuzzing for memory errors while
 * a known over-acceptance is open). */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws_codec.h"

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "fuzz_ws_accept: " __VA_ARGS__);                                           \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

static int is_b64(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

static int node_valid(const uint8_t *k, size_t n) {
    if (n != 24 || k[22] != '=' || k[23] != '=') return 0;
    for (int i = 0; i < 22; i++)
        if (!is_b64(k[i])) return 0;
    return 1;
}

static void b64(const uint8_t *in, size_t n, char *out) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int lenient = -1;
    if (lenient < 0) {
        const char *e = getenv("FUZZ_WS_ACCEPT_LENIENT");
        lenient = e && *e == '1';
    }
    char out[WS_ACCEPT_LEN + 1];
    memset(out, '#', sizeof out);
    int rc = ws_accept_key((struct slice){(const char *)data, size}, out);
    int want = node_valid(data, size);
    if (rc != 0 && rc != -1) FAIL("returned %d", rc);
    if (want && rc != 0) FAIL("valid key refused: %.*s", (int)size, (const char *)data);
    if (!want && rc == 0) {
        if (!lenient) FAIL("malformed key accepted: %.*s", (int)size, (const char *)data);
        if (size != 24 || data[22] != '=' || data[23] != '=') FAIL("key of %zu bytes accepted", size);
    }
    if (rc != 0) return 0;

    uint8_t input[64], md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    memcpy(input, data, 24);
    memcpy(input + 24, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
    if (!EVP_Digest(input, 60, md, &mdlen, EVP_sha1(), NULL) || mdlen != 20) FAIL("EVP_Digest");
    char expect[WS_ACCEPT_LEN + 1];
    b64(md, 20, expect);
    if (memcmp(out, expect, WS_ACCEPT_LEN + 1) != 0) FAIL("accept %.28s, want %s", out, expect);
    return 0;
}
