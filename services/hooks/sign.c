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

int hooks_sign(const char *secret, const char *msg_id, long long timestamp, const char *body,
               size_t body_len, char out[HOOKS_SIG_MAX], char *err)
{
    unsigned char mac[EVP_MAX_MD_SIZE], *key = NULL;
    unsigned int mac_len = 0;
    size_t key_len = 0, plen = strlen(SECRET_PREFIX);
    buf msg = {0};
    int rc = -1;

    if (strncmp(secret, SECRET_PREFIX, plen) != 0 || strlen(secret + plen) > SECRET_B64_MAX ||
        !(key = util_b64_decode(secret + plen, strlen(secret + plen), &key_len)) || key_len == 0) {
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
