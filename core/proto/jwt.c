#include "jwt.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

#include "json_scan.h"
#include "base64.h"

enum key_kind { KEY_HMAC, KEY_RSA, KEY_EC };

struct jwt_key {
    enum key_kind kind;
    EVP_PKEY *pkey;        /* KEY_RSA, KEY_EC */
    size_t secret_len;     /* KEY_HMAC */
    unsigned char secret[];
};

struct jwt_key *jwt_key_hmac(const void *secret, size_t len) {
    struct jwt_key *k = calloc(1, sizeof *k + len);
    if (!k) return NULL;
    k->kind = KEY_HMAC;
    k->secret_len = len;
    memcpy(k->secret, secret, len);
    return k;
}

struct jwt_key *jwt_key_pem(const char *pem, size_t len, char *err, size_t errlen) {
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *pkey = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    ERR_clear_error();
    if (!pkey) {
        snprintf(err, errlen, "not a PEM public key (-----BEGIN PUBLIC KEY-----)");
        return NULL;
    }
    enum key_kind kind;
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        kind = KEY_RSA;
    } else if (EVP_PKEY_is_a(pkey, "EC")) {
        char group[64] = "";
        size_t glen = 0;
        EVP_PKEY_get_utf8_string_param(pkey, "group", group, sizeof group, &glen);
        if (strcmp(group, "prime256v1") != 0) {
            snprintf(err, errlen, "EC keys must be P-256 (ES256), not %s", group[0] ? group : "?");
            EVP_PKEY_free(pkey);
            return NULL;
        }
        kind = KEY_EC;
    } else {
        snprintf(err, errlen, "the public key must be RSA or EC P-256");
        EVP_PKEY_free(pkey);
        return NULL;
    }
    struct jwt_key *k = calloc(1, sizeof *k);
    if (!k) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    k->kind = kind;
    k->pkey = pkey;
    return k;
}

void jwt_key_free(struct jwt_key *k) {
    if (!k) return;
    EVP_PKEY_free(k->pkey);
    OPENSSL_cleanse(k->secret, k->secret_len);
    free(k);
}

const char *jwt_key_algs(const struct jwt_key *k) {
    return k->kind == KEY_HMAC ? "HS256/HS384/HS512" : k->kind == KEY_RSA ? "RS256/RS384/RS512" : "ES256";
}

const char *jwt_result_code(enum jwt_result r) {
    switch (r) {
    case JWT_OK: return "ok";
    case JWT_MISSING: return "missing_token";
    case JWT_TOO_LARGE: return "token_too_large";
    case JWT_EXPIRED: return "token_expired";
    case JWT_NOT_YET_VALID: return "token_not_yet_valid";
    case JWT_BAD_ISSUER: return "invalid_issuer";
    case JWT_BAD_AUDIENCE: return "invalid_audience";
    default: return "invalid_token";
    }
}

/* base64url without padding -> bytes; -1 when invalid. out needs len bytes.
 * Only the canonical encoding is accepted: the unused low bits of the last
 * character must be zero, so that one signature has one spelling. */
static long b64url_decode(const char *in, size_t len, unsigned char *out) {
    if (len % 4 == 1) return -1;
    char *tmp = malloc(len + 4);
    if (!tmp) return -1;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '-') c = '+';
        else if (c == '_') c = '/';
        else if (c == '+' || c == '/' || c == '=') {
            free(tmp);
            return -1; /* standard base64 and padding are not base64url */
        }
        tmp[n++] = c;
    }
    if (n % 4 && (base64_value(tmp[n - 1]) & (n % 4 == 2 ? 0x0f : 0x03)) != 0) {
        free(tmp);
        return -1; /* unused bits set (or not base64 at all: -1 has every bit set) */
    }
    while (n % 4) tmp[n++] = '=';
    long r = base64_decode(out, tmp, n);
    free(tmp);
    return r;
}

static const EVP_MD *digest_for(const char *alg, enum key_kind kind) {
    static const struct { const char *alg; enum key_kind kind; } allowed[] = {
        {"HS256", KEY_HMAC}, {"HS384", KEY_HMAC}, {"HS512", KEY_HMAC},
        {"RS256", KEY_RSA},  {"RS384", KEY_RSA},  {"RS512", KEY_RSA},
        {"ES256", KEY_EC},
    };
    for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++) {
        if (strcmp(alg, allowed[i].alg) != 0 || allowed[i].kind != kind) continue;
        const char *bits = alg + 2;
        return strcmp(bits, "256") == 0 ? EVP_sha256() : strcmp(bits, "384") == 0 ? EVP_sha384() : EVP_sha512();
    }
    return NULL;
}

static int verify_signature(const struct jwt_key *k, const EVP_MD *md, const char *signed_part, size_t signed_len,
                            const unsigned char *sig, size_t sig_len) {
    if (k->kind == KEY_HMAC) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned mac_len = 0;
        if (!HMAC(md, k->secret, (int)k->secret_len, (const unsigned char *)signed_part, signed_len, mac, &mac_len))
            return 0;
        /* Constant time: the comparison must not tell how much matched. */
        return mac_len == sig_len && CRYPTO_memcmp(mac, sig, sig_len) == 0;
    }
    unsigned char *der = NULL;
    int der_len = 0;
    if (k->kind == KEY_EC) {
        /* JWS carries r||s (32 bytes each); OpenSSL verifies DER. */
        if (sig_len != 64) return 0;
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
        if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
            BN_free(r);
            BN_free(s);
            ECDSA_SIG_free(es);
            return 0;
        }
        der_len = i2d_ECDSA_SIG(es, &der);
        ECDSA_SIG_free(es);
        if (der_len <= 0) return 0;
        sig = der;
        sig_len = (size_t)der_len;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, md, NULL, k->pkey) == 1 &&
             EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)signed_part, signed_len) == 1;
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    ERR_clear_error();
    return ok;
}

static int aud_matches(const struct json_member *m, const char *audience, char *tmp, size_t cap) {
    if (m->type == 's') return json_string_value(m->value, tmp, cap) >= 0 && strcmp(tmp, audience) == 0;
    if (m->type != 'a') return 0;
    /* An array of strings: walk it by wrapping each element check. */
    const char *p = m->value.p + 1, *end = m->value.p + m->value.len - 1;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ',' || *p == '\n' || *p == '\t' || *p == '\r')) p++;
        if (p >= end) break;
        long e = json_scan_value(p, (size_t)(end - p), 0);
        if (e <= 0) return 0;
        size_t vlen = (size_t)e;
        while (vlen && (p[vlen - 1] == ' ' || p[vlen - 1] == '\n' || p[vlen - 1] == '\t' || p[vlen - 1] == '\r')) vlen--;
        if (json_string_value((struct slice){p, vlen}, tmp, cap) >= 0 && strcmp(tmp, audience) == 0) return 1;
        p += e;
    }
    return 0;
}

enum jwt_result jwt_verify(const struct jwt_key *k, const struct jwt_policy *p, const char *token, size_t len,
                           int64_t now_s, struct jwt_claims *out, char *buf, size_t cap) {
    if (!token || len == 0) return JWT_MISSING;
    if (len > JWT_MAX_TOKEN_BYTES) return JWT_TOO_LARGE;
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', (size_t)(token + len - dot1 - 1)) : NULL;
    if (!dot1 || !dot2 || memchr(dot2 + 1, '.', (size_t)(token + len - dot2 - 1)) || dot1 == token ||
        dot2 == dot1 + 1 || dot2 + 1 == token + len)
        return JWT_MALFORMED;
    unsigned char header[1024], sig[1024];
    size_t hlen = (size_t)(dot1 - token), clen = (size_t)(dot2 - dot1 - 1), slen = (size_t)(token + len - dot2 - 1);
    if (hlen > sizeof header || slen > sizeof sig || clen > cap) return JWT_MALFORMED;
    long hn = b64url_decode(token, hlen, header);
    long cn = b64url_decode(dot1 + 1, clen, (unsigned char *)buf);
    long sn = b64url_decode(dot2 + 1, slen, sig);
    if (hn < 0 || cn < 0 || sn < 0) return JWT_MALFORMED;

    struct json_member m;
    char alg[16];
    size_t pos = 0;
    int rc, has_alg = 0;
    while ((rc = json_object_next((const char *)header, (size_t)hn, &pos, &m)) == 1) {
        if (slice_eq(m.key, "alg")) {
            if (m.type != 's' || json_string_value(m.value, alg, sizeof alg) < 0) return JWT_BAD_ALG;
            has_alg = 1;
        } else if (slice_eq(m.key, "crit")) {
            return JWT_MALFORMED; /* extensions we don't understand must not be ignored */
        }
    }
    if (rc < 0 || !has_alg) return JWT_MALFORMED;
    const EVP_MD *md = digest_for(alg, k->kind);
    if (!md) return JWT_BAD_ALG;
    if (!verify_signature(k, md, token, (size_t)(dot2 - token), sig, (size_t)sn)) return JWT_BAD_SIGNATURE;

    /* Signed by our key: now the claims. */
    const char *claims = buf;
    size_t claims_len = (size_t)cn;
    memset(out, 0, sizeof *out);
    int has_sub = 0;
    char tmp[512];
    pos = 0;
    int has_iss = 0, has_aud = 0;
    while ((rc = json_object_next(claims, claims_len, &pos, &m)) == 1) {
        int64_t v;
        if (slice_eq(m.key, "sub")) {
            if (m.type != 's' || json_string_value(m.value, out->sub, sizeof out->sub) <= 0) return JWT_MALFORMED;
            has_sub = 1;
        } else if (slice_eq(m.key, "exp")) {
            if (m.type != 'n' || json_int_value(m.value, &v, 1)) return JWT_MALFORMED;
            out->exp = v;
            if (now_s > v + p->leeway_s) return JWT_EXPIRED;
        } else if (slice_eq(m.key, "nbf")) {
            if (m.type != 'n' || json_int_value(m.value, &v, 1)) return JWT_MALFORMED;
            if (now_s + p->leeway_s < v) return JWT_NOT_YET_VALID;
        } else if (slice_eq(m.key, "iss") && p->issuer) {
            has_iss = 1;
            if (m.type != 's' || json_string_value(m.value, tmp, sizeof tmp) < 0 || strcmp(tmp, p->issuer) != 0)
                return JWT_BAD_ISSUER;
        } else if (slice_eq(m.key, "aud") && p->audience) {
            has_aud = 1;
            if (!aud_matches(&m, p->audience, tmp, sizeof tmp)) return JWT_BAD_AUDIENCE;
        }
    }
    if (rc < 0 || !has_sub) return JWT_MALFORMED;
    if (p->issuer && !has_iss) return JWT_BAD_ISSUER;
    if (p->audience && !has_aud) return JWT_BAD_AUDIENCE;
    out->json = claims;
    out->json_len = claims_len;
    return JWT_OK;
}
