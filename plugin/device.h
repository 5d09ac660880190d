/* One device's twins, kept sorted by name in its kedge_device (include/kedge/twin.h): the
 * order Go prints map keys in, so encoders walk the array as is.
 */
#ifndef KEDGE_DEVICE_H
#define KEDGE_DEVICE_H

#include "kedge/twin.h"

/* The twin called name, or NULL. */
struct kedge_twin *device_twin_find(const struct kedge_device *d, const char *name);
/* Inserts t (taken on success) in name order; returns the stored twin, or NULL when the name
 * is already there or on -ENOMEM (t then stays the caller's). Pointers to other twins of d
 * become invalid. */
struct kedge_twin *device_twin_insert(struct kedge_device *d, struct kedge_twin *t);

#endif
