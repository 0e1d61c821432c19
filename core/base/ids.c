#include "ids.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>

#include "clock.h"
#include "log.h"

void ids_new_sid(struct ids *ids, char out[IDS_SID_LEN + 1]) {
    unsigned char raw[15];
    if (RAND_bytes(raw, 12) != 1) {
        /* Unpredictability matters (a sid authorizes polling requests). */
        log_error("ids", "RAND_bytes failed");
        abort();
    }
    uint32_t seq = ids->sid_seq++;
    /* The top 6 bits of byte 12 are the worker index, so base64 character
     * 16 names the worker that owns the session; the 12 random bytes that
     * make a sid unguessable stay. */
    raw[12] = (unsigned char)(((ids->worker & 63u) << 2) | ((seq >> 16) & 3u));
    raw[13] = (unsigned char)(seq >> 8);
    raw[14] = (unsigned char)seq;
    char b64[21];
    EVP_EncodeBlock((unsigned char *)b64, raw, 15);
    for (int i = 0; i < IDS_SID_LEN; i++) out[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
    out[IDS_SID_LEN] = 0;
}

void ids_init(struct ids *ids) {
    unsigned char tag = 0;
    if (RAND_bytes(&tag, 1) != 1) tag = 0; /* only makes collisions across nodes likelier */
    ids->node_tag = tag & 15u;
}

void ids_new_id(struct ids *ids, char out[IDS_ID_LEN + 1]) {
    uint64_t origin = ((uint64_t)(ids->node_tag & 15u) << 6) | (ids->worker & 63u);
    uint64_t id = clock_wall_ms() << 22 | origin;
    if (id <= ids->last_id) id = ((ids->last_id >> 10) + 1) << 10 | origin;
    ids->last_id = id;
    /* Once per message: a hex loop, not snprintf (4 % of an event's instructions). */
    static const char hex[] = "0123456789abcdef";
    for (int i = IDS_ID_LEN - 1; i >= 0; i--, id >>= 4) out[i] = hex[id & 15];
    out[IDS_ID_LEN] = 0;
}

int ids_worker_of(const char *sid) {
    char ch = sid[16];
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '-') return 62;
    if (ch == '_') return 63;
    return -1;
}
