/*
 * config.h - checking a timers_config and subscribe options.
 */
#ifndef TIMERS_CONFIG_H
#define TIMERS_CONFIG_H

#include "timers.h"

/* Lua's unpack() in the claim script takes 2 arguments per timer. */
#define TM_CLAIM_BATCH_MAX 2048

int tm__config_check(const timers_config *c);
int tm__subscribe_options_check(const timers_subscribe_options *o);

#endif
