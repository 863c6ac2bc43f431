/* webapp: the browser pages (web/dist: the uploader and the gallery) served at /app/ from
 * memory: read once at start-up, each file with its type and ETag. */
#ifndef PIX_API_WEBAPP_H
#define PIX_API_WEBAPP_H

#include "http.h"
#include "util.h"

#define WEBAPP_PREFIX "/app"

typedef struct webapp webapp;

/* Reads the regular files directly in dir. NULL with err "" when dir does not exist (the
 * pages are off); NULL with a message for anything else that goes wrong. */
webapp *webapp_load(const char *dir, char *err);
void webapp_free(webapp *w); /* NULL-safe */
int webapp_files(const webapp *w);
/* 1 if path is under WEBAPP_PREFIX (then r is answered), else 0. */
int webapp_serve(const webapp *w, http_req *r, const char *path);

#endif
