/* stmts: prints the API's prepared statements (services/api/sql.c) as one JSON object,
 * name -> SQL, so bench/scale explains and times the exact text the API runs. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include "api.h"

int main(void)
{
    cJSON *o = cJSON_CreateObject();
    char *text;

    for (size_t i = 0; o && i < api_stmts_count; i++)
        cJSON_AddStringToObject(o, api_stmts[i].name, api_stmts[i].sql);
    text = o ? cJSON_PrintUnformatted(o) : NULL;
    if (!text)
        return 1;
    puts(text);
    free(text);
    cJSON_Delete(o);
    return 0;
}
