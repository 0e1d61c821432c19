/* Unit tests for core/proto/redis_wire.h: the messages of
 * @socket.io/redis-adapter 8.x and @socket.io/redis-emitter 5.x. The byte
 * traces are those of socketio-wire.md §4.2-4.4 (captured from Node); every
 * msgpack form a notepack peer may send; placeholders; round trips; and the
 * refusals (malformed, truncated, too deep, too big). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "redis_wire.h"

/* Hex text (spaces and '|' ignored) → bytes in a static buffer. */
static unsigned char hexbuf[4096];
static size_t hex(const char *h) {
    size_t n = 0;
    while (*h) {
        if (*h == ' ' || *h == '|' || *h == '\n') {
            h++;
            continue;
        }
        unsigned v;
        sscanf(h, "%2x", &v);
        hexbuf[n++] = (unsigned char)v;
        h += 2;
    }
    return n;
}

#define S(lit) ((struct slice){lit, sizeof(lit) - 1})

static const struct slice no_rooms[1];

/* The §4.2 trace: io.to("room1").emit("ev","a",1,Buffer[1,2,3]). */
#define TRACE_ROOM1                                                                                   \
    "93 a6 7348347533 2d 83 a4 74797065 02 a4 64617461 94 a2 6576 a1 61 01 c4 03 010203 a3 6e7370 a1 2f" \
    " 83 a5 726f6f6d73 91 a5 726f6f6d31 a6 657863657074 90 a5 666c616773 80"

TEST(encodes_the_room_broadcast_trace) {
    static const unsigned char att[] = {1, 2, 3};
    const void *bins[] = {att};
    size_t lens[] = {3};
    struct slice rooms[] = {S("room1")};
    const char *json = "[\"ev\",\"a\",1,{\"_placeholder\":true,\"num\":0}]";
    struct rw_broadcast b = {.uid = S("sH4u3-"), .nsp = S("/"), .type = 2, .ack_id = -1, .json = json,
                             .json_len = strlen(json), .n_bin = 1, .bin = bins, .bin_len = lens,
                             .n_rooms = 1, .rooms = rooms, .except = no_rooms};
    struct sbuf out = {0};
    CHECK_INT(0, rw_encode_broadcast(&out, &b));
    size_t n = hex(TRACE_ROOM1);
    CHECK_MEMN(hexbuf, n, out.p, out.len);
    /* BINARY_EVENT is written as EVENT, as socket.io hands it to the adapter. */
    b.type = 5;
    sbuf_reset(&out);
    CHECK_INT(0, rw_encode_broadcast(&out, &b));
    CHECK_MEMN(hexbuf, n, out.p, out.len);
    sbuf_free(&out);
}

TEST(decodes_the_room_broadcast_trace) {
    size_t n = hex(TRACE_ROOM1);
    struct rw_broadcast b;
    struct rw_decoded d;
    CHECK_INT(0, rw_decode_broadcast(hexbuf, n, &b, &d));
    memset(hexbuf, 0, sizeof hexbuf); /* the result must not point into the input */
    CHECK_SLICE("sH4u3-", b.uid);
    CHECK_SLICE("/", b.nsp);
    CHECK_INT(2, b.type);
    CHECK_INT(-1, b.ack_id);
    CHECK_MEM("[\"ev\",\"a\",1,{\"_placeholder\":true,\"num\":0}]", b.json, b.json_len);
    CHECK_UINT(1, b.n_bin);
    if (b.n_bin == 1) CHECK_MEMN("\1\2\3", 3, b.bin[0], b.bin_len[0]);
    CHECK_UINT(1, b.n_rooms);
    if (b.n_rooms == 1) CHECK_SLICE("room1", b.rooms[0]);
    CHECK_UINT(0, b.n_except);
    CHECK_UINT(0, b.flags);
    CHECK_UINT(0, b.timeout_ms);
    rw_decoded_free(&d);
}

/* io.emit("all",{x:1.5}) and io.to(["r1","r2"]).except("r3").volatile.emit("multi"). */
TEST(encodes_the_float_and_volatile_traces) {
    struct sbuf out = {0};
    const char *json = "[\"all\",{\"x\":1.5}]";
    struct rw_broadcast b = {.uid = S("sH4u3-"), .nsp = S("/"), .type = 2, .ack_id = -1, .json = json,
                             .json_len = strlen(json)};
    CHECK_INT(0, rw_encode_broadcast(&out, &b));
    size_t n = hex("93 a6 7348347533 2d 83 a4 74797065 02 a4 64617461 92 a3 616c6c 81 a1 78 cb 3ff8000000000000"
                   " a3 6e7370 a1 2f 83 a5 726f6f6d73 90 a6 657863657074 90 a5 666c616773 80");
    CHECK_MEMN(hexbuf, n, out.p, out.len);

    struct slice rooms[] = {S("r1"), S("r2")}, except[] = {S("r3")};
    json = "[\"multi\"]";
    b = (struct rw_broadcast){.uid = S("sH4u3-"), .type = 2, .ack_id = -1, .json = json, .json_len = strlen(json),
                              .n_rooms = 2, .rooms = rooms, .n_except = 1, .except = except,
                              .flags = RW_FLAG_VOLATILE};
    sbuf_reset(&out);
    CHECK_INT(0, rw_encode_broadcast(&out, &b));
    n = hex("93 a6 7348347533 2d 83 a4 74797065 02 a4 64617461 91 a5 6d756c7469 a3 6e7370 a1 2f"
            " 83 a5 726f6f6d73 92 a2 7231 a2 7232 a6 657863657074 91 a2 7233 a5 666c616773 81 a8 766f6c6174696c65 c3");
    CHECK_MEMN(hexbuf, n, out.p, out.len);

    struct rw_decoded d;
    CHECK_INT(0, rw_decode_broadcast(out.p, out.len, &b, &d));
    CHECK_UINT(RW_FLAG_VOLATILE, b.flags);
    CHECK_UINT(2, b.n_rooms);
    CHECK_UINT(1, b.n_except);
    if (b.n_except == 1) CHECK_SLICE("r3", b.except[0]);
    CHECK_MEM("[\"multi\"]", b.json, b.json_len);
    rw_decoded_free(&d);
    sbuf_free(&out);
}

/* §4.4: the emitter's opts come in the order rooms, flags, except. */
TEST(decodes_the_emitter_trace) {
    size_t n = hex("93 a7 656d6974746572 83 a4 74797065 02 a4 64617461 93 ab 66726f6d456d6974746572 a2 6869 02 a3 "
                   "6e7370 a1 2f 83 a5 726f6f6d73 91 a5 726f6f6d31 a5 666c616773 80 a6 657863657074 90");
    struct rw_broadcast b;
    struct rw_decoded d;
    CHECK_INT(0, rw_decode_broadcast(hexbuf, n, &b, &d));
    CHECK_SLICE("emitter", b.uid);
    CHECK_MEM("[\"fromEmitter\",\"hi\",2]", b.json, b.json_len);
    CHECK_UINT(0, b.n_bin);
    CHECK_UINT(1, b.n_rooms);
    rw_decoded_free(&d);
}

TEST(packet_defaults_id_and_flags) {
    /* No nsp → "/", an id, every flag and a timeout; no opts at all. */
    size_t n = hex("92 a1 75 82 a4 74797065 02 a4 64617461 91 a1 65");
    struct rw_broadcast b;
    struct rw_decoded d;
    CHECK_INT(0, rw_decode_broadcast(hexbuf, n, &b, &d));
    CHECK_SLICE("/", b.nsp);
    CHECK_UINT(0, b.n_rooms);
    rw_decoded_free(&d);
    /* an empty nsp stays empty (Node defaults only an absent one); null is refused */
    n = hex("92 a1 75 83 a4 74797065 02 a4 64617461 91 a1 65 a3 6e7370 a0");
    CHECK_INT(0, rw_decode_broadcast(hexbuf, n, &b, &d));
    CHECK_UINT(0, b.nsp.len);
    rw_decoded_free(&d);
    n = hex("92 a1 75 83 a4 74797065 02 a4 64617461 91 a1 65 a3 6e7370 c0");
    CHECK_INT(-1, rw_decode_broadcast(hexbuf, n, &b, &d));

    struct slice rooms[] = {S("x")};
    b = (struct rw_broadcast){.uid = S("u"), .nsp = S("/admin"), .type = 2, .ack_id = 300, .json = "[\"e\"]",
                              .json_len = 5, .n_rooms = 1, .rooms = rooms,
                              .flags = RW_FLAG_VOLATILE | RW_FLAG_COMPRESS | RW_FLAG_LOCAL | RW_FLAG_BROADCAST,
                              .timeout_ms = 70000};
    struct sbuf out = {0};
    CHECK_INT(0, rw_encode_broadcast(&out, &b));
    /* ... "nsp":"/admin","id":300 ... flags {volatile,compress,local,broadcast,timeout:70000} */
    n = hex("93 a1 75 84 a4 74797065 02 a4 64617461 91 a1 65 a3 6e7370 a6 2f61646d696e a2 6964 cd 012c"
            " 83 a5 726f6f6d73 91 a1 78 a6 657863657074 90 a5 666c616773 85 a8 766f6c6174696c65 c3"
            " a8 636f6d7072657373 c3 a5 6c6f63616c c3 a9 62726f616463617374 c3 a7 74696d656f7574 ce 00011170");
    CHECK_MEMN(hexbuf, n, out.p, out.len);
    CHECK_INT(0, rw_decode_broadcast(out.p, out.len, &b, &d));
    CHECK_SLICE("/admin", b.nsp);
    CHECK_INT(300, b.ack_id);
    CHECK_UINT(RW_FLAG_VOLATILE | RW_FLAG_COMPRESS | RW_FLAG_LOCAL | RW_FLAG_BROADCAST, b.flags);
    CHECK_UINT(70000, b.timeout_ms);
    rw_decoded_free(&d);
    sbuf_free(&out);
}

/* ---- JSON -> msgpack: notepack's choice of forms ---- */

/* The msgpack of the broadcast data for json, cut to the data value alone
 * (uid "u", nsp "/", no rooms). */
static size_t data_bytes(const char *json, unsigned char *dst) {
    struct rw_broadcast b = {.uid = S("u"), .type = 2, .ack_id = -1, .json = json, .json_len = strlen(json)};
    struct sbuf out = {0};
    if (rw_encode_broadcast(&out, &b)) return (size_t)-1;
    /* 93 a1 75 83 a4 type 02 a4 data <value> a3 nsp a1 2f 83 ... */
    size_t head = 15, tail = 6 + 23;
    size_t n = out.len - head - tail;
    memcpy(dst, out.p + head, n);
    sbuf_free(&out);
    return n;
}

static void check_form(const char *json, const char *hexs, const char *file, int line) {
    unsigned char got[4096];
    size_t n = data_bytes(json, got);
    size_t m = hex(hexs);
    if (!check_true(n != (size_t)-1, json, file, line)) return;
    check_mem((const char *)hexbuf, m, (const char *)got, n, json, file, line);
}
#define CHECK_FORM(json, hexs) check_form(json, hexs, __FILE__, __LINE__)

TEST(numbers_take_notepacks_forms) {
    CHECK_FORM("0", "00");
    CHECK_FORM("-0", "00");
    CHECK_FORM("127", "7f");
    CHECK_FORM("128", "cc 80");
    CHECK_FORM("255", "cc ff");
    CHECK_FORM("256", "cd 0100");
    CHECK_FORM("65535", "cd ffff");
    CHECK_FORM("65536", "ce 00010000");
    CHECK_FORM("4294967295", "ce ffffffff");
    CHECK_FORM("4294967296", "cf 0000000100000000");
    CHECK_FORM("9007199254740993", "cf 0020000000000000"); /* JSON.parse rounds it to 2^53 */
    CHECK_FORM("-1", "ff");
    CHECK_FORM("-32", "e0");
    CHECK_FORM("-33", "d0 df");
    CHECK_FORM("-128", "d0 80");
    CHECK_FORM("-129", "d1 ff7f");
    CHECK_FORM("-32768", "d1 8000");
    CHECK_FORM("-32769", "d2 ffff7fff");
    CHECK_FORM("-2147483648", "d2 80000000");
    CHECK_FORM("-2147483649", "d3 ffffffff7fffffff");
    CHECK_FORM("1.0", "01");
    CHECK_FORM("1e2", "64");
    CHECK_FORM("1.5", "cb 3ff8000000000000");
    CHECK_FORM("-0.5", "cb bfe0000000000000");
    CHECK_FORM("1e400", "cb 7ff0000000000000"); /* JSON.parse: Infinity */
    CHECK_FORM("1e19", "cf 8ac7230489e80000");
    CHECK_FORM("1e20", "cb 4415af1d78b58c40");
    CHECK_FORM("1.8446744073709552e19", "cb 43f0000000000000"); /* 2^64: past uint64 */
    CHECK_FORM("true", "c3");
    CHECK_FORM("false", "c2");
    CHECK_FORM("null", "c0");
}

TEST(strings_arrays_maps_take_the_smallest_forms) {
    CHECK_FORM("\"\"", "a0");
    CHECK_FORM("\"\\u00e9\\n\"", "a3 c3a9 0a");
    CHECK_FORM("\"\\ud83d\\ude00\"", "a4 f09f9880");
    CHECK_FORM("[]", "90");
    CHECK_FORM("{}", "80");
    CHECK_FORM(" { \"a\" : [ 1 , { } ] } ", "81 a1 61 92 01 80");
    /* str8 from 32 bytes, str16 from 256, str32 from 65536 */
    char json[70000];
    unsigned char got[70010];
    for (size_t len = 31; len <= 65536; len = len == 33 ? 255 : len == 257 ? 65535 : len + 1) {
        json[0] = '"';
        memset(json + 1, 'x', len);
        json[len + 1] = '"';
        json[len + 2] = 0;
        struct rw_broadcast b = {.uid = S("u"), .type = 2, .ack_id = -1, .json = json, .json_len = len + 2};
        struct sbuf out = {0};
        CHECK_INT(0, rw_encode_broadcast(&out, &b));
        memcpy(got, out.p + 15, 5);
        if (len < 32) CHECK_INT(0xa0 | (int)len, got[0]);
        else if (len < 256) CHECK(got[0] == 0xd9 && got[1] == len);
        else if (len < 65536) CHECK(got[0] == 0xda && (got[1] << 8 | got[2]) == (int)len);
        else CHECK(got[0] == 0xdb && got[2] == 1 && got[3] == 0 && got[4] == 0);
        sbuf_free(&out);
    }
    /* array16 from 16 elements, map16 from 16 keys */
    CHECK_FORM("[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]", "9f 000000000000000000000000000000");
    CHECK_FORM("[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]", "dc 0010 00000000000000000000000000000000");
    CHECK_FORM("{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,\"i\":9,\"j\":10,\"k\":11,\"l\":12,"
               "\"m\":13,\"n\":14,\"o\":15,\"p\":16}",
               "de 0010 a161 01 a162 02 a163 03 a164 04 a165 05 a166 06 a167 07 a168 08 a169 09 a16a 0a a16b 0b"
               " a16c 0c a16d 0d a16e 0e a16f 0f a170 10");
}

TEST(placeholders_become_bins_only_with_attachments) {
    /* Without attachments a placeholder-looking object is an object. */
    CHECK_FORM("{\"_placeholder\":true,\"num\":0}", "82 ac 5f706c616365686f6c646572 c3 a3 6e756d 00");
    static const unsigned char big[300] = {7};
    const void *bins[] = {"ab", big};
    size_t lens[] = {2, 300};
    const char *json = "[\"e\",{\"num\":1,\"_placeholder\":true},{\"_placeholder\":true,\"num\":0},"
                       "{\"_placeholder\":true,\"num\":0,\"x\":1}]";
    struct rw_broadcast b = {.uid = S("u"), .type = 5, .ack_id = -1, .json = json, .json_len = strlen(json),
                             .n_bin = 2, .bin = bins, .bin_len = lens};
    struct sbuf out = {0};
    CHECK_INT(0, rw_encode_broadcast(&out, &b));
    /* data: 94 a1 65 c5 012c <300> c4 02 6162 83 ... */
    CHECK(out.len > 20 && (unsigned char)out.p[15] == 0x94 && (unsigned char)out.p[18] == 0xc5);
    struct rw_decoded d;
    CHECK_INT(0, rw_decode_broadcast(out.p, out.len, &b, &d));
    CHECK_MEM("[\"e\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1},"
              "{\"_placeholder\":true,\"num\":0,\"x\":1}]",
              b.json, b.json_len);
    CHECK_UINT(2, b.n_bin);
    if (b.n_bin == 2) {
        CHECK_MEMN(big, 300, b.bin[0], b.bin_len[0]);
        CHECK_MEMN("ab", 2, b.bin[1], b.bin_len[1]);
    }
    rw_decoded_free(&d);
    /* A placeholder naming a missing attachment is refused. */
    json = "[\"e\",{\"_placeholder\":true,\"num\":2}]";
    b = (struct rw_broadcast){.uid = S("u"), .type = 2, .ack_id = -1, .json = json, .json_len = strlen(json),
                              .n_bin = 2, .bin = bins, .bin_len = lens};
    size_t before = out.len;
    CHECK_INT(-1, rw_encode_broadcast(&out, &b));
    CHECK_UINT(before, out.len);
    sbuf_free(&out);
}

TEST(bad_json_is_refused) {
    const char *bad[] = {"", "[", "[1,]", "{\"a\"}", "[\"\\x\"]", "[01]", "[1] x", "[\"\xc3\x28\"]", "nul"};
    struct sbuf out = {0};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct rw_broadcast b = {.uid = S("u"), .type = 2, .ack_id = -1, .json = bad[i], .json_len = strlen(bad[i])};
        CHECK_INT(-1, rw_encode_broadcast(&out, &b));
    }
    CHECK_UINT(0, out.len);
    sbuf_free(&out);
}

/* ---- msgpack -> JSON: every form a peer may send ---- */

/* Decodes [ "u", {type:2, data:<value hex>}, {} ] and checks the JSON text. */
static void check_value(const char *value_hex, const char *json, const char *file, int line) {
    char h[8192];
    snprintf(h, sizeof h, "93 a1 75 82 a4 74797065 02 a4 64617461 %s 80", value_hex);
    size_t n = hex(h);
    struct rw_broadcast b;
    struct rw_decoded d;
    int rc = rw_decode_broadcast(hexbuf, n, &b, &d);
    if (!json) {
        check_int(-1, rc, value_hex, file, line);
        return;
    }
    if (!check_int(0, rc, value_hex, file, line)) return;
    check_mem(json, strlen(json), b.json, b.json_len, value_hex, file, line);
    rw_decoded_free(&d);
}
#define CHECK_VALUE(h, json) check_value(h, json, __FILE__, __LINE__)
#define CHECK_BAD_VALUE(h) check_value(h, NULL, __FILE__, __LINE__)

TEST(decodes_every_int_form) {
    CHECK_VALUE("00", "0");
    CHECK_VALUE("7f", "127");
    CHECK_VALUE("e0", "-32");
    CHECK_VALUE("ff", "-1");
    CHECK_VALUE("cc ff", "255");
    CHECK_VALUE("cd ffff", "65535");
    CHECK_VALUE("ce ffffffff", "4294967295");
    CHECK_VALUE("cf 0020000000000000", "9007199254740992");
    CHECK_VALUE("cf ffffffffffffffff", "18446744073709551616"); /* the double JavaScript holds (it prints 18446744073709552000) */
    CHECK_VALUE("d0 80", "-128");
    CHECK_VALUE("d0 05", "5");
    CHECK_VALUE("d1 8000", "-32768");
    CHECK_VALUE("d2 80000000", "-2147483648");
    CHECK_VALUE("d3 8000000000000000", "-9223372036854775808");
    CHECK_VALUE("d3 ffe0000000000000", "-9007199254740992");
}

TEST(decodes_floats_to_the_shortest_text) {
    CHECK_VALUE("cb 3ff8000000000000", "1.5");
    CHECK_VALUE("cb 3fb999999999999a", "0.1");
    CHECK_VALUE("cb 3fd5555555555555", "0.3333333333333333");
    CHECK_VALUE("cb 4000000000000000", "2");
    CHECK_VALUE("cb 8000000000000000", "-0");
    CHECK_VALUE("cb 7ff0000000000000", "null");
    CHECK_VALUE("cb fff0000000000000", "null");
    CHECK_VALUE("cb 7ff8000000000000", "null");
    CHECK_VALUE("cb 0000000000000001", "4.94065645841247e-324");
    CHECK_VALUE("cb 7fefffffffffffff", "1.7976931348623157e+308");
    CHECK_VALUE("ca 3fc00000", "1.5");
    CHECK_VALUE("ca 3dcccccd", "0.10000000149011612"); /* float32 0.1 as a double */
    CHECK_VALUE("ca 7f800000", "null");
    /* Every formatted double reads back the same. */
    double samples[] = {0.1, 1.0 / 3, 2.0 / 3, 1e21, 1e-7, 123456789.125, 5e-324, 1.7976931348623157e308, M_PI};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        char buf[32];
        rw_format_double(buf, samples[i]);
        CHECK(strtod(buf, NULL) == samples[i]);
        CHECK(strlen(buf) <= 24);
    }
}

TEST(decodes_strings_bins_and_containers) {
    CHECK_VALUE("a0", "\"\"");
    CHECK_VALUE("a3 612262", "\"a\\\"b\"");
    CHECK_VALUE("a2 0a1e", "\"\\n\\u001e\"");
    CHECK_VALUE("d9 03 616263", "\"abc\"");
    CHECK_VALUE("da 0003 616263", "\"abc\"");
    CHECK_VALUE("db 00000003 616263", "\"abc\"");
    CHECK_VALUE("a2 c328", "\"\\ufffd(\"");      /* not UTF-8: still JSON */
    CHECK_VALUE("c4 00", "{\"_placeholder\":true,\"num\":0}");
    CHECK_VALUE("92 c5 0001 61 c6 00000001 62", "[{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]");
    CHECK_VALUE("c0", "null");
    CHECK_VALUE("c2", "false");
    CHECK_VALUE("c3", "true");
    CHECK_VALUE("dc 0002 01 02", "[1,2]");
    CHECK_VALUE("dd 00000001 01", "[1]");
    CHECK_VALUE("de 0001 a161 01", "{\"a\":1}");
    CHECK_VALUE("df 00000001 a161 01", "{\"a\":1}");
    CHECK_VALUE("84 01 02 ff 03 c3 04 cb 3ff8000000000000 05", "{\"1\":2,\"-1\":3,\"true\":4,\"1.5\":5}");
    CHECK_BAD_VALUE("81 90 01"); /* an array as a key */
    /* notepack 2: undefined and ArrayBuffer (ext type 0) */
    CHECK_VALUE("d4 00 00", "null");
    CHECK_VALUE("c7 03 00 010203", "{\"_placeholder\":true,\"num\":0}");
    CHECK_VALUE("c8 0001 00 01", "{\"_placeholder\":true,\"num\":0}");
    CHECK_VALUE("c9 00000001 00 01", "{\"_placeholder\":true,\"num\":0}");
    /* Date (timestamp ext -1) as JSON.stringify writes it */
    CHECK_VALUE("d6 ff 00000000", "\"1970-01-01T00:00:00.000Z\"");
    CHECK_VALUE("d6 ff 6a25c8ab", "\"2026-06-07T19:38:19.000Z\"");
    CHECK_VALUE("d7 ff 77359400 00000001", "\"1970-01-01T00:00:01.500Z\"");
    CHECK_VALUE("c7 0c ff 1dcd6500 ffffffffffffffff", "\"1969-12-31T23:59:59.500Z\"");
    CHECK_VALUE("c7 0c ff 00000000 0000003afff44180", "\"+010000-01-01T00:00:00.000Z\"");
    CHECK_VALUE("c7 0c ff 00000000 fffffff1868b8400", "\"0000-01-01T00:00:00.000Z\"");
    CHECK_VALUE("c7 0c ff 00000000 fffffff184aa5080", "\"-000001-01-01T00:00:00.000Z\"");
    CHECK_VALUE("c7 0c ff 00000000 7fffffffffffffff", "null");
    CHECK_VALUE("d4 00 07", "null");
    CHECK_VALUE("d7 00 00000001 00000000", "\"1970-02-19T17:02:47.296Z\""); /* notepack 2's Date: ms */
    CHECK_VALUE("c7 08 00 0000000100000000", "{\"_placeholder\":true,\"num\":0}");
    CHECK_VALUE("c7 0c ff 3b9ac9ff 0000000000000000", "\"1970-01-01T00:00:00.999Z\"");
    CHECK_BAD_VALUE("c7 04 ff 00000000"); /* a timestamp 96 that is not 12 bytes */
    /* any other ext: [type, Buffer] as notepack gives it */
    CHECK_VALUE("d4 01 ff", "[1,{\"_placeholder\":true,\"num\":0}]");
    CHECK_VALUE("d5 00 0102", "[0,{\"_placeholder\":true,\"num\":0}]");
    CHECK_VALUE("d6 05 0000000a", "[5,{\"_placeholder\":true,\"num\":0}]");
    CHECK_VALUE("d8 00 00000000000000000000000000000001", "[0,{\"_placeholder\":true,\"num\":0}]");
    CHECK_VALUE("c7 03 7f 010203", "[127,{\"_placeholder\":true,\"num\":0}]");
    CHECK_VALUE("d4 ff 00", "[-1,{\"_placeholder\":true,\"num\":0}]");
}

TEST(a_peers_placeholder_shaped_map_is_refused_beside_binary) {
    /* {"_placeholder":true,"num":0} sent as a map: alone it is an object ... */
    CHECK_VALUE("92 a1 65 82 ac 5f706c616365686f6c646572 c3 a3 6e756d 00", "[\"e\",{\"_placeholder\":true,\"num\":0}]");
    CHECK_VALUE("92 a1 65 82 a3 6e756d cb 3ff0000000000000 ac 5f706c616365686f6c646572 c3",
                "[\"e\",{\"num\":1,\"_placeholder\":true}]");
    /* ... beside a binary value it would read as an attachment: refused */
    CHECK_BAD_VALUE("92 c4 00 82 ac 5f706c616365686f6c646572 c3 a3 6e756d 00");
    CHECK_BAD_VALUE("92 c4 00 82 a3 6e756d cb 4000000000000000 ac 5f706c616365686f6c646572 c3");
    /* not placeholder-shaped: kept */
    CHECK_VALUE("92 c4 00 82 ac 5f706c616365686f6c646572 c2 a3 6e756d 00",
                "[{\"_placeholder\":true,\"num\":0},{\"_placeholder\":false,\"num\":0}]");
    CHECK_VALUE("92 c4 00 82 ac 5f706c616365686f6c646572 c3 a3 6e756d ff",
                "[{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":-1}]");
}

TEST(bins_in_the_decoded_data_keep_their_bytes) {
    size_t n = hex("93 a1 75 82 a4 74797065 05 a4 64617461 93 a1 65 c4 02 abcd 81 a1 6b c4 01 ef 80");
    struct rw_broadcast b;
    struct rw_decoded d;
    CHECK_INT(0, rw_decode_broadcast(hexbuf, n, &b, &d));
    CHECK_INT(2, b.type);
    CHECK_MEM("[\"e\",{\"_placeholder\":true,\"num\":0},{\"k\":{\"_placeholder\":true,\"num\":1}}]", b.json, b.json_len);
    CHECK_UINT(2, b.n_bin);
    if (b.n_bin == 2) {
        CHECK_MEMN("\xab\xcd", 2, b.bin[0], b.bin_len[0]);
        CHECK_MEMN("\xef", 1, b.bin[1], b.bin_len[1]);
    }
    /* encode → decode gives the same bytes again */
    struct sbuf out = {0};
    CHECK_INT(0, rw_encode_broadcast(&out, &b));
    struct rw_broadcast b2;
    struct rw_decoded d2;
    CHECK_INT(0, rw_decode_broadcast(out.p, out.len, &b2, &d2));
    CHECK_MEMN(b.json, b.json_len, b2.json, b2.json_len);
    CHECK_UINT(2, b2.n_bin);
    rw_decoded_free(&d2);
    rw_decoded_free(&d);
    sbuf_free(&out);
}

TEST(round_trips_json) {
    const char *cases[] = {
        "[\"ev\",1,-2,3.25,\"s\",null,true,false,[],{},[[1],{\"a\":{\"b\":[null]}}]]",
        "[\"\\u00e9\\u2028\\ud83d\\ude00\",\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0001\"]",
        "[1e-7,1e21,123456789.125,-1.5e300,0.1]",
    };
    const char *expect[] = {
        NULL,
        "[\"\xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80\",\"\\\"\\\\/\\b\\f\\n\\r\\t\\u0001\"]",
        "[1e-07,1e+21,123456789.125,-1.5e+300,0.1]",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct rw_broadcast b = {.uid = S("u"), .type = 2, .ack_id = -1, .json = cases[i], .json_len = strlen(cases[i])};
        struct sbuf out = {0};
        struct rw_decoded d;
        CHECK_INT(0, rw_encode_broadcast(&out, &b));
        CHECK_INT(0, rw_decode_broadcast(out.p, out.len, &b, &d));
        const char *want = expect[i] ? expect[i] : cases[i];
        CHECK_MEM(want, b.json, b.json_len);
        rw_decoded_free(&d);
        sbuf_free(&out);
    }
}

/* ---- refusals ---- */

TEST(refuses_malformed_truncated_and_trailing) {
    size_t n = hex(TRACE_ROOM1);
    unsigned char copy[256];
    memcpy(copy, hexbuf, n);
    struct rw_broadcast b;
    struct rw_decoded d;
    for (size_t cut = 0; cut < n; cut++) {
        /* every truncation, in its own allocation so ASan sees any read past it */
        unsigned char *p = malloc(cut ? cut : 1);
        memcpy(p, copy, cut);
        CHECK_INT(-1, rw_decode_broadcast(p, cut, &b, &d));
        free(p);
    }
    copy[n] = 0xc0;
    CHECK_INT(-1, rw_decode_broadcast(copy, n + 1, &b, &d)); /* trailing byte */
    const char *bad[] = {
        "c1",                                                 /* never used */
        "80",                                                 /* not an array */
        "91 a1 75",                                           /* too short */
        "94 a1 75 80 80 80",                                  /* too long */
        "93 01 82 a4 74797065 02 a4 64617461 90 80",          /* uid not a string */
        "93 a1 75 81 a4 64617461 90 80",                      /* no type */
        "93 a1 75 81 a4 74797065 02 80",                      /* no data */
        "93 a1 75 82 a4 74797065 07 a4 64617461 90 80",       /* type out of range */
        "93 a1 75 82 a4 74797065 02 a4 64617461 90 81 a5 726f6f6d73 91 c3", /* a boolean room */
        "93 a1 75 82 a4 74797065 02 a4 64617461 90 81 a5 726f6f6d73 a1 78", /* rooms not an array */
        "93 a1 75 83 a4 74797065 02 a4 64617461 90 a3 6e7370 01 80",       /* nsp not a string */
        "93 a1 75 82 a4 74797065 02 a4 64617461 dd ffffffff 80",           /* a count beyond the bytes */
        "93 a1 75 82 a4 74797065 02 a4 64617461 df 7fffffff 80",
        "93 a1 75 82 a4 74797065 02 a4 64617461 db ffffffff 80",
        "93 a1 75 82 a4 74797065 02 a4 64617461 c9 ffffffff 00 80",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t m = hex(bad[i]);
        if (!CHECK_INT(-1, rw_decode_broadcast(hexbuf, m, &b, &d))) fprintf(stderr, "    case %s\n", bad[i]);
        CHECK(d.chunks == NULL && d.bin == NULL);
    }
    CHECK_INT(-1, rw_decode_broadcast(hexbuf, RW_MAX_MESSAGE + 1, &b, &d)); /* over the limit: not even read */
}

/* [u, {type, data: [k zeros]}] */
static unsigned char *many(size_t k, size_t *n) {
    size_t h = hex("93 a1 75 82 a4 74797065 02 a4 64617461 dd");
    unsigned char *p = calloc(h + 4 + k + 1, 1);
    memcpy(p, hexbuf, h);
    p[h] = (unsigned char)(k >> 24), p[h + 1] = (unsigned char)(k >> 16);
    p[h + 2] = (unsigned char)(k >> 8), p[h + 3] = (unsigned char)k;
    p[h + 4 + k] = 0x80;
    *n = h + 4 + k + 1;
    return p;
}

TEST(refuses_more_values_than_the_limit) {
    struct rw_broadcast b;
    struct rw_decoded d;
    size_t n;
    unsigned char *p = many(RW_MAX_ITEMS, &n); /* with the root's, the packet's and the opts' values: over */
    CHECK_INT(-1, rw_decode_broadcast(p, n, &b, &d));
    free(p);
    p = many(100000, &n);
    CHECK_INT(0, rw_decode_broadcast(p, n, &b, &d));
    CHECK_UINT(200001, b.json_len);
    rw_decoded_free(&d);
    free(p);
}

/* data nested k deep: [[[...[1]...]]] */
static size_t nested(unsigned char *p, int k) {
    size_t n = hex("93 a1 75 82 a4 74797065 02 a4 64617461");
    memcpy(p, hexbuf, n);
    for (int i = 0; i < k; i++) p[n++] = 0x91;
    p[n++] = 0x01;
    p[n++] = 0x80;
    return n;
}

TEST(nesting_is_bounded_both_ways) {
    static unsigned char p[256];
    struct rw_broadcast b;
    struct rw_decoded d;
    /* root array and packet map hold two levels: data may nest 30 */
    size_t n = nested(p, RW_MAX_DEPTH - 2);
    CHECK_INT(0, rw_decode_broadcast(p, n, &b, &d));
    struct sbuf out = {0};
    CHECK_INT(0, rw_encode_broadcast(&out, &b));
    CHECK_MEMN(p + 15, RW_MAX_DEPTH - 2 + 1, out.p + 15, RW_MAX_DEPTH - 2 + 1);
    rw_decoded_free(&d);
    n = nested(p, RW_MAX_DEPTH - 1);
    CHECK_INT(-1, rw_decode_broadcast(p, n, &b, &d));
    /* An empty container takes a level too (as in msgpack-c). */
    n = nested(p, RW_MAX_DEPTH - 2);
    p[n - 2] = 0x90;
    CHECK_INT(-1, rw_decode_broadcast(p, n, &b, &d));
    n = nested(p, RW_MAX_DEPTH - 3);
    p[n - 2] = 0x80;
    CHECK_INT(0, rw_decode_broadcast(p, n, &b, &d));
    rw_decoded_free(&d);
    /* The encoder refuses what our decoder would. */
    char json[100];
    memset(json, '[', 31);
    memset(json + 32, ']', 31);
    json[31] = '1';
    b = (struct rw_broadcast){.uid = S("u"), .type = 2, .ack_id = -1, .json = json, .json_len = 63};
    sbuf_reset(&out);
    CHECK_INT(-1, rw_encode_broadcast(&out, &b));
    b.json = json + 1, b.json_len = 61;
    CHECK_INT(0, rw_encode_broadcast(&out, &b));
    json[31] = ']';
    b.json = json, b.json_len = 62; /* 31 levels, the last empty */
    CHECK_INT(-1, rw_encode_broadcast(&out, &b));
    sbuf_free(&out);
}

/* ---- requests ---- */

TEST(decodes_json_requests) {
    struct rw_request r;
    struct rw_decoded d;
    const char *s = "{\"uid\":\"sH4u3-\",\"type\":2,\"opts\":{\"rooms\":[\"room1\"],\"except\":[]},\"rooms\":[\"room2\"]}";
    CHECK_INT(0, rw_decode_request(s, strlen(s), &r, &d));
    CHECK_INT(RW_REQ_REMOTE_JOIN, r.type);
    CHECK_SLICE("sH4u3-", r.uid);
    CHECK_INT(0, r.has_request_id);
    CHECK_UINT(1, r.n_opts_rooms);
    if (r.n_opts_rooms == 1) CHECK_SLICE("room1", r.opts_rooms[0]);
    CHECK_UINT(0, r.n_opts_except);
    CHECK_UINT(1, r.n_rooms);
    if (r.n_rooms == 1) CHECK_SLICE("room2", r.rooms[0]);
    rw_decoded_free(&d);

    s = "{\"uid\":\"sH4u3-\",\"type\":4,\"opts\":{\"rooms\":[\"room9\"],\"except\":[\"x\\u00e9\",7]},\"close\":true}";
    CHECK_INT(0, rw_decode_request(s, strlen(s), &r, &d));
    CHECK_INT(4, r.type);
    CHECK_INT(1, r.close);
    CHECK_UINT(2, r.n_opts_except);
    if (r.n_opts_except == 2) {
        CHECK_SLICE("x\xc3\xa9", r.opts_except[0]);
        CHECK_SLICE("7", r.opts_except[1]);
    }
    rw_decoded_free(&d);

    s = "{\"uid\":\"sH4u3-\",\"requestId\":\"kCl3sP\",\"type\":5,\"opts\":{\"rooms\":[],\"except\":[],"
        "\"flags\":{\"local\":true,\"timeout\":5}}}";
    CHECK_INT(0, rw_decode_request(s, strlen(s), &r, &d));
    CHECK_INT(5, r.type);
    CHECK_SLICE("kCl3sP", r.request_id);
    CHECK_INT(1, r.has_request_id);
    CHECK_UINT(RW_FLAG_LOCAL, r.opts_flags);
    CHECK_UINT(5, r.opts_timeout_ms);
    rw_decoded_free(&d);

    s = "{\"uid\":\"sH4u3-\",\"requestId\":\"PQ4v3c\",\"type\":1}";
    CHECK_INT(0, rw_decode_request(s, strlen(s), &r, &d));
    CHECK_INT(1, r.type);
    CHECK(r.data_json == NULL);
    rw_decoded_free(&d);

    s = "{\"uid\":\"emitter\",\"type\":6,\"data\":[\"hello\",\"from emitter\"]}";
    CHECK_INT(0, rw_decode_request(s, strlen(s), &r, &d));
    CHECK_INT(6, r.type);
    CHECK_MEM("[\"hello\",\"from emitter\"]", r.data_json, r.data_len);
    rw_decoded_free(&d);

    s = "{\"type\":3,\"opts\":{\"rooms\":[\"room1\"],\"except\":[]},\"rooms\":[\"roomX\"]}"; /* emitter: no uid */
    CHECK_INT(0, rw_decode_request(s, strlen(s), &r, &d));
    CHECK_INT(0, r.has_uid);
    CHECK_INT(3, r.type);
    rw_decoded_free(&d);

    s = "{\"type\":8,\"requestId\":\"zUrNdL\",\"clientCount\":3}"; /* a response */
    CHECK_INT(0, rw_decode_request(s, strlen(s), &r, &d));
    CHECK_UINT(3, r.client_count);
    rw_decoded_free(&d);

    s = "{\"type\":2,\"requestId\":\"abc\",\"sid\":\"S1\",\"room\":\"R\"}"; /* legacy */
    CHECK_INT(0, rw_decode_request(s, strlen(s), &r, &d));
    CHECK_SLICE("S1", r.sid);
    CHECK_SLICE("R", r.room);
    CHECK_INT(1, r.has_sid);
    rw_decoded_free(&d);

    const char *bad[] = {"{", "{}", "{\"type\":\"2\"}", "{\"type\":1.5}", "{\"type\":7}", "{\"type\":2,\"uid\":3}",
                         "{\"type\":2,\"rooms\":[true]}", "{\"type\":2,\"rooms\":\"r\"}", "{\"type\":2} x", "[1]",
                         "{\"type\":2,\"opts\":[]}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (!CHECK_INT(-1, rw_decode_request(bad[i], strlen(bad[i]), &r, &d))) fprintf(stderr, "    case %s\n", bad[i]);
        CHECK(d.chunks == NULL);
    }
}

TEST(decodes_the_broadcast_with_ack_request) {
    size_t n = hex("85 a3 756964 a6 7348347533 2d a9 726571756573744964 a6 7a55724e644c a4 74797065 07"
                   " a6 7061636b6574 83 a4 74797065 02 a4 64617461 92 a7 7769746861636b 01 a3 6e7370 a1 2f"
                   " a4 6f707473 83 a5 726f6f6d73 91 a5 726f6f6d31 a6 657863657074 90 a5 666c616773 81 a7 74696d656f7574 cd 03e8");
    struct rw_request r;
    struct rw_decoded d;
    CHECK_INT(0, rw_decode_request(hexbuf, n, &r, &d));
    CHECK_INT(RW_REQ_BROADCAST, r.type);
    CHECK_SLICE("sH4u3-", r.uid);
    CHECK_SLICE("zUrNdL", r.request_id);
    CHECK_SLICE("sH4u3-", r.packet.uid);
    CHECK_INT(2, r.packet.type);
    CHECK_INT(-1, r.packet.ack_id);
    CHECK_MEM("[\"withack\",1]", r.packet.json, r.packet.json_len);
    CHECK_UINT(1, r.packet.n_rooms);
    CHECK_UINT(1000, r.packet.timeout_ms);
    CHECK_UINT(1000, r.opts_timeout_ms);
    CHECK_UINT(1, r.n_opts_rooms);
    rw_decoded_free(&d);
    /* type 7 without its packet */
    n = hex("82 a4 74797065 07 a3 756964 a1 75");
    CHECK_INT(-1, rw_decode_request(hexbuf, n, &r, &d));
}

/* ---- responses ---- */

TEST(encodes_the_json_responses) {
    struct sbuf out = {0};
    struct slice rooms[] = {S("RaD5K05J59jIcIkxAAAA"), S("room1")};
    CHECK_INT(0, rw_encode_all_rooms_response(&out, S("PQ4v3c"), rooms, 2));
    CHECK_MEM("{\"requestId\":\"PQ4v3c\",\"rooms\":[\"RaD5K05J59jIcIkxAAAA\",\"room1\"]}", out.p, out.len);
    sbuf_reset(&out);
    CHECK_INT(0, rw_encode_sockets_response(&out, S("r"), rooms, 1));
    CHECK_MEM("{\"requestId\":\"r\",\"sockets\":[\"RaD5K05J59jIcIkxAAAA\"]}", out.p, out.len);
    sbuf_reset(&out);
    CHECK_INT(0, rw_encode_client_count_response(&out, S("zUrNdL"), 1));
    CHECK_MEM("{\"type\":8,\"requestId\":\"zUrNdL\",\"clientCount\":1}", out.p, out.len);
    sbuf_reset(&out);
    CHECK_INT(0, rw_encode_server_side_emit_response(&out, S("q1"), "\"pong\"", 6));
    CHECK_MEM("{\"type\":6,\"requestId\":\"q1\",\"data\":\"pong\"}", out.p, out.len);
    sbuf_reset(&out);
    CHECK_INT(0, rw_encode_server_side_emit_response(&out, S("q1"), NULL, 0));
    CHECK_MEM("{\"type\":6,\"requestId\":\"q1\",\"data\":null}", out.p, out.len);
    sbuf_reset(&out);
    CHECK_INT(-1, rw_encode_server_side_emit_response(&out, S("q1"), "{", 1));
    CHECK_UINT(0, out.len);
    CHECK_INT(0, rw_encode_simple_response(&out, S("a\"b")));
    CHECK_MEM("{\"requestId\":\"a\\\"b\"}", out.p, out.len);
    sbuf_reset(&out);

    struct slice srooms[] = {S("RaD5K05J59jIcIkxAAAA"), S("room1")};
    struct rw_socket_info s = {
        .id = S("RaD5K05J59jIcIkxAAAA"),
        .time = S("Wed Nov 25 2026 17:42:03 GMT+0000 (Coordinated Universal Time)"),
        .address = S("::ffff:127.0.0.1"),
        .url = S("/socket.io/?EIO=4&transport=websocket"),
        .issued = 1795628523895,
        .query_json = "{\"EIO\":\"4\",\"transport\":\"websocket\"}",
        .query_len = 35,
        .n_rooms = 2,
        .rooms = srooms,
        .data_json = "{\"user\":\"u1\"}",
        .data_len = 13,
    };
    CHECK_INT(0, rw_encode_fetch_sockets_response(&out, S("kCl3sP"), &s, 1));
    CHECK_MEM("{\"requestId\":\"kCl3sP\",\"sockets\":[{\"id\":\"RaD5K05J59jIcIkxAAAA\",\"handshake\":{\"headers\":{},"
              "\"time\":\"Wed Nov 25 2026 17:42:03 GMT+0000 (Coordinated Universal Time)\",\"address\":\"::ffff:127.0.0.1\","
              "\"xdomain\":false,\"secure\":false,\"issued\":1795628523895,\"url\":\"/socket.io/?EIO=4&transport=websocket\","
              "\"query\":{\"EIO\":\"4\",\"transport\":\"websocket\"},\"auth\":{}},\"rooms\":[\"RaD5K05J59jIcIkxAAAA\",\"room1\"],"
              "\"data\":{\"user\":\"u1\"}}]}",
              out.p, out.len);
    sbuf_reset(&out);
    CHECK_INT(0, rw_encode_fetch_sockets_response(&out, S("x"), NULL, 0));
    CHECK_MEM("{\"requestId\":\"x\",\"sockets\":[]}", out.p, out.len);
    sbuf_free(&out);
}

/* Empty slices with no bytes behind them (a request without requestId). */
TEST(responses_take_empty_slices) {
    struct sbuf out = {0};
    struct slice none = {NULL, 0};
    CHECK_INT(0, rw_encode_simple_response(&out, none));
    CHECK_MEM("{\"requestId\":\"\"}", out.p, out.len);
    sbuf_reset(&out);
    CHECK_INT(0, rw_encode_all_rooms_response(&out, none, &none, 1));
    CHECK_MEM("{\"requestId\":\"\",\"rooms\":[\"\"]}", out.p, out.len);
    sbuf_reset(&out);
    CHECK_INT(0, rw_channel(&out, "p", RW_CH_BROADCAST, none, none));
    CHECK_MEM("p##", out.p, out.len);
    sbuf_free(&out);
}

TEST(encodes_the_broadcast_ack) {
    struct sbuf out = {0};
    CHECK_INT(0, rw_encode_broadcast_ack(&out, S("zUrNdL"), "\"ackval\"", 8));
    size_t n = hex("83 a4 74797065 09 a9 726571756573744964 a6 7a55724e644c a6 7061636b6574 a6 61636b76616c");
    CHECK_MEMN(hexbuf, n, out.p, out.len);
    /* it decodes as a request of type 9 */
    struct rw_request r;
    struct rw_decoded d;
    CHECK_INT(0, rw_decode_request(out.p, out.len, &r, &d));
    CHECK_INT(RW_REQ_BROADCAST_ACK, r.type);
    CHECK_SLICE("zUrNdL", r.request_id);
    CHECK_MEM("\"ackval\"", r.data_json, r.data_len);
    rw_decoded_free(&d);
    sbuf_reset(&out);
    CHECK_INT(0, rw_encode_broadcast_ack(&out, S("z"), NULL, 0));
    CHECK((unsigned char)out.p[out.len - 1] == 0xc0);
    sbuf_free(&out);
}

/* ---- channels ---- */

TEST(builds_and_reads_channel_names) {
    struct sbuf out = {0};
    CHECK_INT(0, rw_channel(&out, "socket.io", RW_CH_BROADCAST, S("/"), S("")));
    CHECK_MEM("socket.io#/#", out.p, out.len);
    sbuf_reset(&out);
    CHECK_INT(0, rw_channel(&out, "socket.io", RW_CH_BROADCAST, S("/"), S("room1")));
    CHECK_MEM("socket.io#/#room1#", out.p, out.len);
    sbuf_reset(&out);
    CHECK_INT(0, rw_channel(&out, "socket.io", RW_CH_PATTERN, S("/admin"), S("")));
    CHECK_MEM("socket.io#/admin#*", out.p, out.len);
    sbuf_reset(&out);
    CHECK_INT(0, rw_channel(&out, "k", RW_CH_REQUEST, S("/"), S("x")));
    CHECK_MEM("k-request#/#", out.p, out.len);
    sbuf_reset(&out);
    CHECK_INT(0, rw_channel(&out, "socket.io", RW_CH_RESPONSE, S("/"), S("")));
    CHECK_MEM("socket.io-response#/#", out.p, out.len);
    sbuf_reset(&out);
    CHECK_INT(0, rw_channel(&out, "socket.io", RW_CH_RESPONSE, S("/"), S("sH4u3-")));
    CHECK_MEM("socket.io-response#/#sH4u3-#", out.p, out.len);
    sbuf_free(&out);

    struct slice room;
    CHECK_INT(0, rw_channel_room(S("socket.io#/#room1#"), "socket.io", S("/"), &room));
    CHECK_SLICE("room1", room);
    CHECK_INT(0, rw_channel_room(S("socket.io#/#"), "socket.io", S("/"), &room));
    CHECK_UINT(0, room.len);
    CHECK_INT(0, rw_channel_room(S("socket.io#/#a#b#"), "socket.io", S("/"), &room));
    CHECK_SLICE("a#b", room);
    CHECK_INT(-1, rw_channel_room(S("socket.io#/admin#"), "socket.io", S("/"), &room));
    CHECK_INT(-1, rw_channel_room(S("socket.io#/"), "socket.io", S("/"), &room));
    CHECK_INT(-1, rw_channel_room(S("other#/#"), "socket.io", S("/"), &room));
}

int main(void) {
    RUN(encodes_the_room_broadcast_trace);
    RUN(decodes_the_room_broadcast_trace);
    RUN(encodes_the_float_and_volatile_traces);
    RUN(decodes_the_emitter_trace);
    RUN(packet_defaults_id_and_flags);
    RUN(numbers_take_notepacks_forms);
    RUN(strings_arrays_maps_take_the_smallest_forms);
    RUN(placeholders_become_bins_only_with_attachments);
    RUN(bad_json_is_refused);
    RUN(decodes_every_int_form);
    RUN(decodes_floats_to_the_shortest_text);
    RUN(decodes_strings_bins_and_containers);
    RUN(a_peers_placeholder_shaped_map_is_refused_beside_binary);
    RUN(bins_in_the_decoded_data_keep_their_bytes);
    RUN(round_trips_json);
    RUN(refuses_malformed_truncated_and_trailing);
    RUN(refuses_more_values_than_the_limit);
    RUN(nesting_is_bounded_both_ways);
    RUN(decodes_json_requests);
    RUN(decodes_the_broadcast_with_ack_request);
    RUN(encodes_the_json_responses);
    RUN(responses_take_empty_slices);
    RUN(encodes_the_broadcast_ack);
    RUN(builds_and_reads_channel_names);
    return check_finish("test_redis_wire");
}
