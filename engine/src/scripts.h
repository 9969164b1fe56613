/*
 * scripts.h - the server-side Lua scripts of the protocol. Each is loaded
 * once per connection (SCRIPT LOAD) and called by EVALSHA.
 */
#ifndef TIMERS_SCRIPTS_H
#define TIMERS_SCRIPTS_H

#define TM_COMMIT_MAX 1024   /* ids per commit call   */
#define TM_SCHEDULE_MAX 1000 /* timers per schedule call */

typedef enum tm_script {
  TM_SCRIPT_SCHEDULE, /* KEYS z p a; ARGV channel shard earliest n pairs...  */
  TM_SCRIPT_CLAIM,    /* KEYS z p a; ARGV now lease count track            */
  TM_SCRIPT_COMMIT,   /* KEYS z p a; ARGV (lease id)... -> removed count      */
  TM_SCRIPT_CANCEL,   /* KEYS z p a; ARGV id -> 0/1                           */
  TM_SCRIPT_CLEAR,    /* KEYS z p a -> members removed                        */
  TM_SCRIPT_META,     /* KEYS meta; ARGV shards -> the recorded shard count   */
  TM_SCRIPT_COUNT
} tm_script;

extern const char *const tm__script_source[TM_SCRIPT_COUNT];

#endif
