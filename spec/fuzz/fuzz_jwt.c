/* libFuzzer target: jwt_verify (core/jwt.c) with a fixed HMAC key, and with generated RSA and
 * P-256 keys. The first input byte picks a mode:
 *
 *   mode 0  the rest is a token, verified against the HMAC, RSA or EC key (byte 1). Invariants:
 *           - JWT_OK, EXPIRED, NOT_YET_VALID, BAD_ISSUER or BAD_AUDIENCE (anything past the
 *             signature) only when the signature really verifies: for the HMAC key we compute
 *             HMAC-SHA256/384/512 of "header.claims" ourselves and one of them must equal the
 *             signature segment (decoded by our own base64url decoder);
 *           - on JWT_OK: a NUL-terminated sub of 1..256 bytes, exp as returned, and the claims
 *             JSON inside the caller's buffer (json_len <= cap) and a valid JSON object;
 *           - the same call twice gives the same result (no hidden state).
 *   mode 1  the rest is "header JSON" 0x00 "claims JSON": we encode and sign them (HS256/384/512,
 *           chosen by byte 1) so the signature verifies and the claims code is reached with
 *           arbitrary JSON; policy issuer/audience/leeway/now from the next bytes. Invariants:
 *           - with another key the result is never one that looked at the claims;
 *           - on JWT_OK as above, and json equals the claims we signed.
 *   mode 2  the rest becomes the sub of {"sub": ...} (hex-encoded, so always valid), signed with
 *           ES256 (raw r||s): must be JWT_OK — the r||s to DER conversion for every signature.
 *
 * Inputs and the claims buffer are exact-size heap blocks (ASan sees any over-read); the claims
 * buffer size varies with the input so the size checks are exercised too. */
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_scan.h"
#include "jwt.h"

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "fuzz_jwt: " __VA_ARGS__);                                                 \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

static const char SECRET[] = "fuzz-jwt-hmac-key-0123456789abcdef";
static struct jwt_key *hs_key, *hs_other, *rsa_key, *ec_key;
static EVP_PKEY *ec_pkey;

static struct jwt_key *key_from(EVP_PKEY *pkey) {
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, pkey);
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    char err[256];
    struct jwt_key *k = jwt_key_pem(data, (size_t)n, err, sizeof err);
    BIO_free(bio);
    if (!k) FAIL("jwt_key_pem refused a generated key: %s", err);
    return k;
}

static void init(void) {
    if (hs_key) return;
    hs_key = jwt_key_hmac(SECRET, strlen(SECRET));
    hs_other = jwt_key_hmac("another-key-another-key-another-key", 35);
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ec_pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!hs_key || !hs_other || !rsa || !ec_pkey) FAIL("cannot make keys");
    rsa_key = key_from(rsa);
    ec_key = key_from(ec_pkey);
    EVP_PKEY_free(rsa);
}

/* ---- our own base64url ---- */

static int b64v(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

/* Unpadded, canonical base64url -> bytes (the low bits of a final partial group must be zero,
 * as the server requires); -1 when invalid. out needs len bytes. */
static long ref_b64url_decode(const char *in, size_t len, unsigned char *out) {
    if (len % 4 == 1) return -1;
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64v((unsigned char)in[i]);
        if (v < 0) return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    if (acc & ((1u << bits) - 1)) return -1; /* unused bits set: not canonical */
    return (long)n;
}

static char *b64url(const unsigned char *in, size_t len, size_t *out_len) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = malloc(len * 4 / 3 + 4);
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        acc = acc << 8 | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[n++] = tab[(acc >> bits) & 63];
        }
    }
    if (bits) out[n++] = tab[(acc << (6 - bits)) & 63];
    out[n] = 0;
    *out_len = n;
    return out;
}

/* ---- checks ---- */

/* 1 when the HMAC of token[0..dot2) with SECRET under one of SHA-256/384/512 equals the
 * signature segment. */
static int hmac_really_verifies(const char *tok, size_t len) {
    const char *dot2 = NULL;
    for (size_t i = len; i > 0; i--)
        if (tok[i - 1] == '.') {
            dot2 = tok + i - 1;
            break;
        }
    if (!dot2) return 0;
    size_t slen = (size_t)(tok + len - dot2 - 1);
    unsigned char *sig = malloc(slen + 1);
    long sn = ref_b64url_decode(dot2 + 1, slen, sig);
    int ok = 0;
    const EVP_MD *mds[3] = {EVP_sha256(), EVP_sha384(), EVP_sha512()};
    for (int i = 0; i < 3 && sn >= 0 && !ok; i++) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned mac_len = 0;
        HMAC(mds[i], SECRET, (int)strlen(SECRET), (const unsigned char *)tok, (size_t)(dot2 - tok), mac, &mac_len);
        ok = (size_t)sn == mac_len && memcmp(mac, sig, mac_len) == 0;
    }
    free(sig);
    return ok;
}

static int past_signature(enum jwt_result r) {
    return r == JWT_OK || r == JWT_EXPIRED || r == JWT_NOT_YET_VALID || r == JWT_BAD_ISSUER || r == JWT_BAD_AUDIENCE;
}

static void check_ok(const struct jwt_claims *c, const char *buf, size_t cap) {
    size_t sl = strnlen(c->sub, sizeof c->sub);
    if (sl == 0 || sl > JWT_MAX_SUB_BYTES) FAIL("JWT_OK with a sub of %zu bytes", sl);
    if (c->json != buf || c->json_len > cap) FAIL("claims JSON outside the caller's buffer");
    if (!json_valid(c->json, c->json_len)) FAIL("JWT_OK with claims that are not valid JSON");
    size_t pos = 0;
    struct json_member m;
    if (json_object_next(c->json, c->json_len, &pos, &m) < 0) FAIL("JWT_OK with claims that are not an object");
}

static enum jwt_result run(const struct jwt_key *k, const struct jwt_policy *p, const char *tok, size_t len,
                           int64_t now, size_t cap, struct jwt_claims *out, char **buf_out) {
    char *copy = malloc(len ? len : 1);
    if (len) memcpy(copy, tok, len);
    char *buf = malloc(cap ? cap : 1);
    enum jwt_result r = jwt_verify(k, p, copy, len, now, out, buf, cap);
    if ((unsigned)r > JWT_BAD_AUDIENCE) FAIL("result %d out of range", (int)r);
    if (strcmp(jwt_result_code(r), "") == 0) FAIL("no code for result %d", (int)r);
    if (r == JWT_OK) check_ok(out, buf, cap);
    free(copy);
    if (buf_out) *buf_out = buf;
    else free(buf);
    return r;
}

static int64_t read_i64(const uint8_t *d, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v = v << 8 | d[i];
    return (int64_t)v;
}

/* ---- modes ---- */

static void mode_token(const uint8_t *data, size_t size) {
    if (size < 2) return;
    int which = data[0] % 3;
    size_t cap = data[1] & 1 ? JWT_MAX_TOKEN_BYTES : (size_t)data[1] * 4;
    const char *tok = (const char *)data + 2;
    size_t len = size - 2;
    const struct jwt_key *k = which == 0 ? hs_key : which == 1 ? rsa_key : ec_key;
    struct jwt_policy p = {NULL, NULL, 30};
    struct jwt_claims c1, c2;
    enum jwt_result r1 = run(k, &p, tok, len, 1700000000, cap, &c1, NULL);
    enum jwt_result r2 = run(k, &p, tok, len, 1700000000, cap, &c2, NULL);
    if (r1 != r2) FAIL("two calls, two results: %d then %d", (int)r1, (int)r2);
    if (which == 0 && past_signature(r1) && !hmac_really_verifies(tok, len))
        FAIL("result %d (%s) for a token whose HMAC does not verify", (int)r1, jwt_result_code(r1));
    if (r1 == JWT_OK && strcmp(c1.sub, c2.sub) != 0) FAIL("two calls, two subs");
}

static void mode_signed(const uint8_t *data, size_t size) {
    if (size < 8) return;
    static const char *issuers[] = {NULL, "iss", "https://a.example"};
    static const char *audiences[] = {NULL, "aud", "the-space"};
    int alg = data[0] % 3;
    struct jwt_policy p = {issuers[data[1] % 3], audiences[(data[1] / 3) % 3], data[2] % 64};
    int64_t now = read_i64(data + 3, 5) - (1LL << 38); /* around 0, both signs, up to ~8700 years */
    size_t cap = data[1] & 0x80 ? JWT_MAX_TOKEN_BYTES : 64 + (size_t)data[2] * 8;
    data += 8;
    size -= 8;
    const uint8_t *nul = memchr(data, 0, size);
    const uint8_t *hj = data, *cj = nul ? nul + 1 : data + size;
    size_t hl = nul ? (size_t)(nul - data) : size, cl = nul ? size - hl - 1 : 0;
    if (hl > 700 || cl > 6000) return;
    /* The header's own alg (the last one, as the verifier reads it) picks the digest when it names
     * an HMAC algorithm: then the signature must verify. */
    int hdr_alg = -1;
    {
        size_t pos = 0;
        struct json_member m;
        char a[16];
        int unusable = 0; /* an alg member the verifier refuses outright (not a string of < 16 bytes) */
        while (json_object_next((const char *)hj, hl, &pos, &m) == 1) {
            if (m.key.len == 3 && memcmp(m.key.p, "alg", 3) == 0) {
                hdr_alg = -1;
                if (m.type != 's' || json_string_value(m.value, a, sizeof a) < 0) unusable = 1;
                else if (strlen(a) == 5 && memcmp(a, "HS", 2) == 0)
                    hdr_alg = strcmp(a + 2, "256") == 0 ? 0 : strcmp(a + 2, "384") == 0 ? 1 : strcmp(a + 2, "512") == 0 ? 2 : -1;
            }
        }
        if (unusable) hdr_alg = -1;
    }
    if (hdr_alg >= 0) alg = hdr_alg;
    size_t h64l, c64l;
    char *h64 = b64url(hj, hl, &h64l), *c64 = b64url(cj, cl, &c64l);
    size_t in_len = h64l + 1 + c64l;
    char *tok = malloc(in_len + 1 + 100);
    memcpy(tok, h64, h64l);
    tok[h64l] = '.';
    memcpy(tok + h64l + 1, c64, c64l);
    const EVP_MD *md = alg == 0 ? EVP_sha256() : alg == 1 ? EVP_sha384() : EVP_sha512();
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    HMAC(md, SECRET, (int)strlen(SECRET), (unsigned char *)tok, in_len, mac, &mac_len);
    size_t s64l;
    char *s64 = b64url(mac, mac_len, &s64l);
    tok[in_len] = '.';
    memcpy(tok + in_len + 1, s64, s64l);
    size_t len = in_len + 1 + s64l;

    struct jwt_claims c;
    char *buf = NULL;
    enum jwt_result r = run(hs_key, &p, tok, len, now, cap, &c, &buf);
    if (r == JWT_OK && (c.json_len != cl || memcmp(c.json, cj, cl) != 0)) FAIL("JWT_OK, but the claims are not what was signed");
    if (hdr_alg >= 0 && hl && cl && (r == JWT_BAD_SIGNATURE || r == JWT_BAD_ALG))
        FAIL("a token signed with the key under its header's alg: result %d", (int)r);
    free(buf);
    struct jwt_claims c2;
    enum jwt_result r2 = run(hs_other, &p, tok, len, now, cap, &c2, NULL);
    if (past_signature(r2)) FAIL("another key: result %d (%s) looked past the signature", (int)r2, jwt_result_code(r2));
    free(h64);
    free(c64);
    free(s64);
    free(tok);
}

static void mode_es256(const uint8_t *data, size_t size) {
    if (size > 100) size = 100;
    char claims[256];
    size_t n = (size_t)snprintf(claims, sizeof claims, "{\"sub\":\"es");
    for (size_t i = 0; i < size; i++) n += (size_t)snprintf(claims + n, sizeof claims - n, "%02x", data[i]);
    n += (size_t)snprintf(claims + n, sizeof claims - n, "\"}");
    const char *hdr = "{\"alg\":\"ES256\"}";
    size_t h64l, c64l;
    char *h64 = b64url((const unsigned char *)hdr, strlen(hdr), &h64l);
    char *c64 = b64url((const unsigned char *)claims, n, &c64l);
    size_t in_len = h64l + 1 + c64l;
    char *tok = malloc(in_len + 1 + 100);
    memcpy(tok, h64, h64l);
    tok[h64l] = '.';
    memcpy(tok + h64l + 1, c64, c64l);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char der[128];
    size_t der_len = sizeof der;
    if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, ec_pkey) != 1 ||
        EVP_DigestSign(ctx, der, &der_len, (unsigned char *)tok, in_len) != 1)
        FAIL("ECDSA signing failed");
    EVP_MD_CTX_free(ctx);
    const unsigned char *dp = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &dp, (long)der_len);
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(sig, &r, &s);
    unsigned char raw[64];
    BN_bn2binpad(r, raw, 32);
    BN_bn2binpad(s, raw + 32, 32);
    ECDSA_SIG_free(sig);
    size_t s64l;
    char *s64 = b64url(raw, 64, &s64l);
    tok[in_len] = '.';
    memcpy(tok + in_len + 1, s64, s64l);
    struct jwt_policy p = {NULL, NULL, 0};
    struct jwt_claims c;
    enum jwt_result res = run(ec_key, &p, tok, in_len + 1 + s64l, 1700000000, JWT_MAX_TOKEN_BYTES, &c, NULL);
    if (res != JWT_OK) FAIL("a valid ES256 token (r[0]=%02x s[0]=%02x): result %d", raw[0], raw[32], (int)res);
    free(h64);
    free(c64);
    free(s64);
    free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    init();
    if (size < 1) return 0;
    switch (data[0] % 8) {
    case 0: case 1: case 2: case 3: mode_token(data + 1, size - 1); break;
    case 4: case 5: case 6: mode_signed(data + 1, size - 1); break;
    default: mode_es256(data + 1, size - 1); break;
    }
    return 0;
}
