/* linkauth: the secrets of public links, free of any request: random link tokens and the
 * hash they are stored as, scrypt password hashes, and stateless HMAC unlock tickets. */
#ifndef PIX_API_LINKAUTH_H
#define PIX_API_LINKAUTH_H

#include <stddef.h>
#include <time.h>

#include "util.h"

#define LINK_TOKEN_BYTES 24 /* 192 bits from the OS RNG */
#define LINK_TOKEN_LEN 32   /* their base64url */
#define LINK_PWHASH_MAX 128 /* "scrypt$<log2 N>$<r>$<p>$<salt>$<hash>" + NUL */
#define LINK_TICKET_MAX 96  /* base64url of link id, expiry and MAC + NUL */

/* A new link token (LINK_TOKEN_LEN base64url characters). 0, or -1 if the RNG fails. */
int linkauth_token_new(char out[LINK_TOKEN_LEN + 1]) PIX_WUR;
/* Hex SHA-256 of a well-formed token (the only form stored). 0, or -1 when the token is
 * not LINK_TOKEN_LEN base64url characters. */
int linkauth_token_hash(const char *token, char hex[65]) PIX_WUR;

/* scrypt (N = 2^15, r = 8, p = 1: 32 MiB) of pw with a fresh 16-byte salt, stored as
 * "scrypt$15$8$1$<salt b64url>$<32-byte hash b64url>". 0, or -1 with err. */
int linkauth_password_hash(const char *pw, size_t len, char out[LINK_PWHASH_MAX],
                           char *err) PIX_WUR;
/* 1 if pw matches stored (compared in constant time), 0 if not, -1 if stored is not a hash
 * this module makes (or its parameters are out of bounds) or scrypt failed. */
int linkauth_password_verify(const char *pw, size_t len, const char *stored) PIX_WUR;

/* A ticket for link_id (a UUID) valid until exp: base64url of the id's 16 bytes, exp (64
 * bits, big-endian) and HMAC-SHA256 over both with a key derived from secret. 0 or -1. */
int linkauth_ticket_make(const unsigned char *secret, size_t secretlen, const char *link_id,
                         time_t exp, char out[LINK_TICKET_MAX]) PIX_WUR;
/* 1 if ticket is one of link_id's that has not expired at now, else 0. */
int linkauth_ticket_valid(const unsigned char *secret, size_t secretlen, const char *ticket,
                          const char *link_id, time_t now);

#endif
