/*
 * layout.h - how a topic's timers are stored: one small interface, two
 * implementations (layout_native.c, layout_faststream.c). Adding or fixing
 * a layout touches its own file; the poller, workers, producers and
 * inspection only call through this table.
 */
#ifndef TIMERS_LAYOUT_H
#define TIMERS_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keys.h"
#include "timers.h"

/* A stored payload, decoded. Pointers go into the blob or the caller's
 * scratch (tm_decode_buf) and live as long as both. */
/* What a handler of the topic's other clients would do with a payload. */
typedef enum tm_verdict {
  TM_DELIVER = 0,           /* run the handler */
  TM_DROP = 1,              /* remove the timer, no handler */
  TM_HOLD = 2               /* no handler; the lease runs out, it comes back */
} tm_verdict;

typedef struct tm_decoded {
  double activate_at;       /* when it was due (envelope, or the score) */
  tm_verdict verdict;
  const void *payload;
  size_t payload_len;
  const timers_header *headers;
  size_t header_count;
  bool corrupt;             /* not a valid envelope: raw bytes, no headers */
} tm_decoded;

typedef struct tm_layout_ops {
  timers_layout kind;
  const char *name;              /* "native", "faststream" */
  const char *claim_flags;       /* CLAIM's flags (scripts.h) */
  bool has_meta;                 /* shard count recorded in Redis */
  bool has_wake;                 /* schedules publish wake messages */
  bool has_tombstones;           /* commits leave dedup tombstones */
  bool has_dead_letters;         /* attempts counted, a dead-letter set */
  bool fixed_one_shard;
  bool empty_header_keys;        /* scheduling: "" allowed as a header key */
  size_t max_headers;            /* scheduling: headers per timer */
  int poll_ms;                   /* longest gap between claims; 0: none */
  /* Input rules: TIMERS_OK or an error naming what is wrong. */
  int (*check_topic)(const char *topic);
  int (*check_id)(const char *id);
  void (*keys)(tm_keys keys, const tm_names *names, const char *topic,
               uint32_t shard);
  /* A fresh id (NUL-terminated, at most TIMERS_ID_MAX bytes). */
  void (*id_generate)(char *out);
  /* The stored payload of timer t with id and activation time at, in a
   * new allocation (caller frees with tm__free), its length in *len; NULL
   * (detail set: TIMERS_ETOOBIG, TIMERS_ENOMEM) if it cannot be. */
  char *(*encode)(const timers_timer *t, const char *id, double at,
                  size_t *len, int *err);
  /* Scratch a decode of len bytes may need: header entries, string bytes. */
  size_t (*headers_bound)(size_t len);
  size_t (*strings_bound)(size_t len);
  /* Never fails: a malformed blob is raw bytes (out->corrupt when the
   * layout considers that corruption). score: the score before the claim. */
  void (*decode)(const char *blob, size_t len, double score, tm_decoded *out,
                 timers_header *headers, char *strings);
} tm_layout_ops;

extern const tm_layout_ops tm__layout_native;
extern const tm_layout_ops tm__layout_faststream;

const tm_layout_ops *tm__layout_ops(timers_layout kind);

/* A topic's storage as resolved: layout and shard count. */
typedef struct tm_layout {
  const tm_layout_ops *ops;
  uint32_t nshards;
} tm_layout;

/* Scratch for a decode: small inputs use the inline arrays. */
typedef struct tm_decode_buf {
  timers_header *headers;
  char *strings;
  timers_header small_headers[64];
  char small_strings[1024];
} tm_decode_buf;

/* Decodes with scratch from buf (allocated only if the inline arrays are
 * too small). TIMERS_OK or TIMERS_ENOMEM. Free with tm__decode_buf_free. */
int tm__layout_decode(const tm_layout_ops *ops, const char *blob, size_t len,
                      double score, tm_decode_buf *buf, tm_decoded *out);
void tm__decode_buf_free(tm_decode_buf *buf);

/* A decoded envelope copied out for the application (timers_timer_info,
 * timers_dead_info): payload NUL-terminated, headers and their strings
 * owned. On an error what was copied stays in *m: free it with
 * tm__message_copy_free. */
typedef struct tm_message_copy {
  double activate_at;
  void *payload;
  size_t payload_len;
  timers_header *headers;
  size_t header_count;
} tm_message_copy;
int tm__layout_decode_copy(const tm_layout_ops *ops, const char *blob,
                           size_t len, double score, tm_message_copy *m);
void tm__message_copy_free(tm_message_copy *m);

#endif
