/* sign: the Standard Webhooks signature of a delivery: "v1," + base64(HMAC-SHA256(secret,
 * "<webhook-id>.<webhook-timestamp>.<body>")), the secret being the base64 after "whsec_". */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hooks.h"

#define SECRET_PREFIX "whsec_"
#define SECRET_B64_MAX 512

/* Standard (not URL-safe) base64 with padding; NULL on malformed input. *n: bytes out. */
static unsigned char *b64_decode(const char *in, size_t len, size_t *n)
{
    unsigned char *out;
    int got;
    size_t pad = 0;

    if (len == 0 || len % 4 != 0 || len > SECRET_B64_MAX)
        return NULL;
    while (pad < 2 && in[len - 1 - pad] == '=')
        pad++;
    if (strspn(in, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") != len - pad)
        return NULL;
    if (!(out = malloc(len / 4 * 3 + 1)))
        return NULL;
    got = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
    if (got < 0 || (size_t)got < pad) {
        free(out);
        return NULL;
    }
    *n = (size_t)got - pad; /* EVP_DecodeBlock counts the padding as zero bytes */
    return out;
}

int hooks_sign(const char *secret, const char *msg_id, long long timestamp, const char *body,
               size_t body_len, char out[HOOKS_SIG_MAX], char *err)
{
    unsigned char mac[EVP_MAX_MD_SIZE], *key = NULL;
    unsigned int mac_len = 0;
    size_t key_len = 0, plen = strlen(SECRET_PREFIX);
    buf msg = {0};
    int rc = -1;

    if (strncmp(secret, SECRET_PREFIX, plen) != 0 ||
        !(key = b64_decode(secret + plen, strlen(secret + plen), &key_len)) || key_len == 0) {
        err_set(err, "secret_invalid: not whsec_ followed by base64");
        goto fail;
    }
    if (buf_printf(&msg, "%s.%lld.", msg_id, timestamp) < 0 ||
        buf_append(&msg, body, body_len) < 0) {
        err_set(err, "out of memory");
        goto fail;
    }
    if (!HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg.data, msg.len, mac,
              &mac_len)) {
        err_set(err, "HMAC-SHA256 failed");
        goto fail;
    }
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)mac_len); /* 44 chars + NUL */
    rc = 0;
fail:
    free(key);
    buf_free(&msg);
    return rc;
}
