/* files: the store of sent files. Storage is content-addressed (SHA-256: the
 * same bytes are stored once) under one directory:
 *   blobs/<2 hex>/<64 hex>   the bytes, written to tmp/, fsynced, renamed
 *   meta/<file id>           "sha256 type size name" for one sent file
 *   tmp/                     partial writes (a crash leaves nothing behind a URL)
 * The file id is server-made, unique, sorts in acceptance order and ends in
 * 64 random bits, so it cannot be guessed from the room or the time.
 * Decoding, checking, hashing and writing run on libuv's thread pool. The
 * store knows nothing of HTTP: downloads are served by the app
 * (files_http.c). */
#ifndef SPACE_FILES_H
#define SPACE_FILES_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define FILES_MAX_ID 40

/* Where files are stored and the loop whose thread pool writes them; set
 * once by file_store_init, read-only afterwards. */
struct file_store {
    uv_loop_t *loop;
    const char *dir; /* not owned: outlives the store (the configuration's) */
    uv_work_t warm;  /* starts libuv's thread pool at init (see file_store_init) */
};

struct file_info {
    char id[FILES_MAX_ID];
    char sha256[65];
    char type[128];
    char name[256 + 1];
    size_t size;
};

/* Also starts libuv's thread pool and this thread's random generator now,
 * not in the first upload's handler call (where their start-up counted
 * against --lua-cpu-ms). */
void file_store_init(struct file_store *st, uv_loop_t *loop, const char *dir);

/* What a store ended in. Refusals store nothing; FILES_FAILED is a write
 * error (logged already). */
enum files_result {
    FILES_STORED = 0,
    FILES_INVALID_BASE64, /* base64 text that does not decode */
    FILES_TOO_LARGE,      /* decoded bytes over max_bytes */
    FILES_WRONG_TYPE,     /* the content's magic bytes (or text) are not the declared type */
    FILES_FAILED,         /* the disk refused (err says why) */
};

/* Called on the loop when a store finished: info on FILES_STORED, else
 * NULL with why and err (a message for the sender; for FILES_FAILED the
 * cause, logged already). */
typedef void (*files_stored_cb)(void *ud, const struct file_info *info, enum files_result why, const char *err);

/* One upload. The store reads data on a thread-pool thread and copies none
 * of it: the caller keeps the bytes alive and unchanged until cb ran. */
struct file_put {
    const void *data;
    size_t len;
    int base64;       /* data is base64 text (standard alphabet, padded), decoded in the job */
    size_t max_bytes; /* the decoded size's limit */
    const char *type; /* the declared type, already allowed; the content must sniff as it */
    const char *name; /* already checked (filecheck_name) */
};

/* Stores put as a new file in ONE thread-pool job: decoding, the size and
 * type checks, SHA-256, the atomic write; nothing of it runs on the loop.
 * seq_id is a fresh server-made id (ids_new_id: 16 hex digits, unique and
 * increasing); the file id is it followed by 64 random bits.
 * Returns 0 (cb will run), or -1 (out of memory; cb will not run). */
int file_store_put(struct file_store *st, const char seq_id[17], const struct file_put *put, files_stored_cb cb,
                   void *ud);

/* Reads the record of file id (id already checked to be 32 hex digits).
 * 0, or -1 when there is no such file. Synchronous: a small read. */
int file_store_lookup(const struct file_store *st, const char *id, struct file_info *info);

/* Opens the bytes of a looked-up file for reading: an fd the caller owns,
 * or a negative libuv error. */
uv_file file_store_open_blob(const struct file_store *st, const struct file_info *info);

#endif
