/* twin_flood: `bench_twin flood` (twin_flood.c says what it does). */
#ifndef KEDGE_BENCH_TWIN_FLOOD_H
#define KEDGE_BENCH_TWIN_FLOOD_H

struct flood_opts {
    long port, updates, devices, digits, start;
    const char *prefix;
};

/* Publish o->updates twin updates and print the flood line. 0, or -1 (the reason on stderr). */
int twin_flood(const struct flood_opts *o);

#endif
