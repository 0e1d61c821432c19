/* upload: the uploaders of the fanout scenario's --uploads. Each sends
 * send_file with a file of --upload-bytes of text (text/plain: ASCII, so the
 * server's content check passes), as base64 text in the JSON or as a
 * Socket.IO binary attachment. The frames are identical for every uploader
 * (one room, one name, one mask), so they are built and masked once, before
 * the measurement, and written from that one buffer: masking 14 MB on the
 * load generator's loop during the window would delay its own reads and
 * show as the server's latency. */
#include "base64.h"
#include "loadgen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UPLOAD_MASK 0x5a17c3e9u /* the frames are shared, so one mask for all */

int lg_uploads_prepare(struct lg *lg, uint32_t bytes, uint32_t room) {
    static const char line[] = "space-server upload benchmark: the quick brown fox jumps over the lazy dog\n";
    char *file = malloc(bytes ? bytes : 1);
    size_t b64_len = ((size_t)bytes + 2) / 3 * 4;
    char head[256], bin_head[256];
    int hn = snprintf(head, sizeof head,
                      "42[\"send_file\",{\"room\":\"r%u\",\"name\":\"upload.txt\",\"type\":\"text/plain\",\"data\":\"", room);
    int bn = snprintf(bin_head, sizeof bin_head,
                      "451-[\"send_file\",{\"room\":\"r%u\",\"name\":\"upload.txt\",\"type\":\"text/plain\","
                      "\"data\":{\"_placeholder\":true,\"num\":0}}]", room);
    size_t text_len = (size_t)hn + b64_len + 3; /* "}] after the base64 */
    char *text = malloc(text_len);
    lg->up_b64 = malloc(text_len + 14);
    lg->up_bin = malloc((size_t)bn + 14 + bytes + 14);
    if (!file || !text || !lg->up_b64 || !lg->up_bin) {
        free(file);
        free(text);
        return -1;
    }
    for (uint32_t i = 0; i < bytes; i++) file[i] = line[i % (sizeof line - 1)];
    memcpy(text, head, (size_t)hn);
    base64_encode(text + hn, file, bytes);
    memcpy(text + hn + b64_len, "\"}]", 3);
    lg->up_b64_len = lg_frame((uint8_t *)lg->up_b64, 1, text, text_len, UPLOAD_MASK);
    lg->up_bin_len = lg_frame((uint8_t *)lg->up_bin, 1, bin_head, (size_t)bn, UPLOAD_MASK);
    lg->up_bin_len += lg_frame((uint8_t *)lg->up_bin + lg->up_bin_len, 2, file, bytes, UPLOAD_MASK);
    lg->upload_bytes = bytes;
    free(file);
    free(text);
    return 0;
}

void lg_upload_start(struct lg *lg, struct client *c) {
    if (c->state != ST_READY || c->upload_in_flight || !c->uploads_left) return;
    c->uploads_left--;
    c->upload_in_flight = 1;
    lg->uploads_in_flight++;
    lg->c.uploads_started++;
    if (!lg->up_first_ns) lg->up_first_ns = lg_now_ns();
    if (c->upload_binary) lg_write_shared(c, lg->up_bin, lg->up_bin_len);
    else lg_write_shared(c, lg->up_b64, lg->up_b64_len);
}

void lg_upload_done(struct lg *lg, struct client *c) {
    c->upload_in_flight = 0;
    lg->uploads_in_flight--;
    lg->c.uploads_done++;
    lg->up_last_done_ns = lg->now_ns;
    if (lg->sending) lg_upload_start(lg, c); /* none begins after the window */
}
