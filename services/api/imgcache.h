/* imgcache: cache-first image reads. Each request worker keeps a small cache of the image
 * rows it read for a caller; whether an entry may still be served is decided by per-user
 * change stamps shared by the process (imgcache_gens), so invalidation is O(1). */
#ifndef PIX_API_IMGCACHE_H
#define PIX_API_IMGCACHE_H

#include "api.h"

/* The process's change stamps. A user's stamp moves when a change-log notification names
 * them (the LISTEN thread), and around every write request they make here (so a client
 * reads its own writes); "*" moves everything. While the LISTEN connection is down no entry
 * is served (changes could go unheard). Thread-safe; every call takes a NULL g (no cache). */
typedef struct imgcache_gens imgcache_gens;
imgcache_gens *imgcache_gens_new(void);
void imgcache_gens_free(imgcache_gens *g); /* NULL-safe */
void imgcache_changed(imgcache_gens *g, const char *user);
/* A write by user starts / ends (entries about user are neither served nor filled between). */
void imgcache_write_begin(imgcache_gens *g, const char *user);
void imgcache_write_end(imgcache_gens *g, const char *user);
void imgcache_set_live(imgcache_gens *g, int live);
/* The stamp to take before reading the database for a fill. */
unsigned long imgcache_stamp(const imgcache_gens *g);

/* One worker's cache: not thread-safe. */
typedef struct imgcache imgcache;
imgcache *imgcache_new(imgcache_gens *g, size_t slots, double ttl);
void imgcache_free(imgcache *c); /* NULL-safe */
/* 1 and *m if image_id's row for caller is cached and still valid, else 0. */
int imgcache_get(imgcache *c, const char *image_id, const char *caller, double now,
                 struct api_img *m);
/* Keeps m (an active image caller may read, as read after stamp was taken) unless a change
 * about its owner or the caller may have happened since. */
void imgcache_put(imgcache *c, const char *caller, const struct api_img *m, unsigned long stamp,
                  double now);

#endif
