/*
 * text.h - text in and out for the `timers` subcommands: JSON strings,
 * base64, UTF-8 checks, payload previews, ISO-8601 times and relative ages.
 *
 * Times are Unix seconds as doubles, like the library's. Nothing here talks
 * to Redis; all of it is thread-safe (no shared state).
 */
#ifndef TIMERS_CLI_TEXT_H
#define TIMERS_CLI_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "timers.h"

/* ------------------------------------------------------------------ JSON */

/* s[0..len) as a JSON string, quotes included; bytes that are not valid
 * UTF-8 become U+FFFD. */
void cli_json_str(FILE *out, const char *s, size_t len);
void cli_json_cstr(FILE *out, const char *s);
/* {"k":"v",...} */
void cli_json_headers(FILE *out, const timers_header *h, size_t n);
/* A payload as "payload":"text" when it is valid UTF-8, else as
 * "payload_b64":"..."; at most max bytes of it (max 0: all of it), and
 * "truncated":true when cut. */
void cli_json_payload(FILE *out, const void *p, size_t len, size_t max);

/* ------------------------------------------------------------ ids, names */

/* Line-oriented output (pending, cancel, show, schedule, stats tables)
 * prints a topic or id as is when it is 1 or more bytes of printable ASCII
 * (0x21-0x7e) not starting with '"'; any other one (blanks, control
 * characters, non-ASCII, a leading quote) as a JSON string. So a field
 * starting with '"' is JSON, any other ends at the first blank. */
bool cli_name_bare(const char *s);
void cli_name_print(FILE *out, const char *s);
/* "key":"s" when s is UTF-8, else "key_b64":"<base64>" (its exact bytes;
 * only ids written by other clients can be such). */
void cli_json_name(FILE *out, const char *key, const char *s);

/* ---------------------------------------------------------- id listings */

/* The three forms of a listing of ids and times (pending, dead list). */
typedef enum cli_list_form {
  CLI_LIST_TEXT, /* "ID TIME" lines: the id by cli_name_print, ms        */
  CLI_LIST_JSON, /* {"id":...,"<time_key>":...} lines, us                */
  CLI_LIST_NUL   /* "ID TIME" with the id as is, us, each ended by a NUL */
} cli_list_form;

void cli_list_print(FILE *out, cli_list_form form, const char *time_key,
                    const char *id, double at);

/* ------------------------------------------------------- show's blocks */

/* Payload bytes show and dead show print without --full. */
#define CLI_SHOW_PREVIEW 200

/* "headers:   N" then one "  KEY=VALUE" line each (cli_name_print). */
void cli_headers_print(FILE *out, const timers_header *h, size_t n);
/* "payload:   N bytes[, base64][ (truncated; --full for all)]" and the
 * payload on the next line, indented: as is when cli_text_printable, else
 * base64; at most max bytes (0: all). */
void cli_payload_print(FILE *out, const void *p, size_t len, size_t max);

/* ---------------------------------------------------------------- bytes */

bool cli_utf8_valid(const void *p, size_t len);
/* Valid UTF-8 without control characters other than tab, CR and LF. */
bool cli_text_printable(const void *p, size_t len);
void cli_base64(FILE *out, const void *p, size_t len);
/* The longest prefix of p[0..len) not longer than max that does not cut a
 * UTF-8 sequence (max 0: len). */
size_t cli_utf8_cut(const void *p, size_t len, size_t max);

/* ---------------------------------------------------------------- times */

#define CLI_TIME_CAP 48

/* "2026-12-01T10:00:00.123Z": UTC with `digits` (0..6) fraction digits. */
void cli_iso_time(double t, int digits, char *buf, size_t cap);

/* Strict ISO-8601: YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm), a
 * year from 1970. */
bool cli_parse_iso(const char *s, double *out);

/* A point in time: ISO-8601 as above, a Unix timestamp (digits with an
 * optional fraction), "now", or "+D" (D a duration, from now). */
bool cli_parse_time(const char *s, double now, double *out);

/* "in 29.9 s", "12 s ago", "in 5.0 min", "3.2 h ago", "in 2.0 d". */
void cli_relative(double seconds_from_now, char *buf, size_t cap);
/* "850 ms", "12.0 s", "5.0 min", "3.2 h", "2.0 d"; "-" for 0. */
void cli_age(double seconds, char *buf, size_t cap);

#endif
