/*
 * stats.h - the lateness histogram's bucket function (shared with the
 * command line's load report through timers_lateness_bound_us).
 */
#ifndef TIMERS_STATS_H
#define TIMERS_STATS_H

/* The bucket of a lateness in seconds (timers_lateness_bound_us). */
int tm__lateness_bucket(double seconds);

#endif
