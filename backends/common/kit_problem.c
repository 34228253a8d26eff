/*
 * kit_problem.c -- RFC 9457 problem details and HTTP reason phrases.
 *
 * With type "about:blank" the RFC asks that the title be the status's
 * reason phrase, so that is the default title; what went wrong this time
 * goes into detail.  Every problem carries the request_id, "" at worst,
 * so a user's report can be matched to a log line.
 */

#include <stddef.h>

#include "kit.h"
#include "kit_internal.h"

typedef struct {
    int          status;
    const char  *title;
} kit_status_t;

/* The phrases of RFC 9110, and 429 from RFC 6585. */
static const kit_status_t kit_statuses[] = {
    { 200, "OK" },
    { 201, "Created" },
    { 202, "Accepted" },
    { 204, "No Content" },
    { 301, "Moved Permanently" },
    { 302, "Found" },
    { 304, "Not Modified" },
    { 400, "Bad Request" },
    { 401, "Unauthorized" },
    { 402, "Payment Required" },
    { 403, "Forbidden" },
    { 404, "Not Found" },
    { 405, "Method Not Allowed" },
    { 406, "Not Acceptable" },
    { 408, "Request Timeout" },
    { 409, "Conflict" },
    { 410, "Gone" },
    { 411, "Length Required" },
    { 412, "Precondition Failed" },
    { 413, "Content Too Large" },
    { 414, "URI Too Long" },
    { 415, "Unsupported Media Type" },
    { 422, "Unprocessable Content" },
    { 423, "Locked" },
    { 428, "Precondition Required" },
    { 429, "Too Many Requests" },
    { 431, "Request Header Fields Too Large" },
    { 500, "Internal Server Error" },
    { 501, "Not Implemented" },
    { 502, "Bad Gateway" },
    { 503, "Service Unavailable" },
    { 504, "Gateway Timeout" },
};


const char *
kit_status_title(int status)
{
    size_t  i;

    for (i = 0; i < sizeof(kit_statuses) / sizeof(kit_statuses[0]); i++) {
        if (kit_statuses[i].status == status) {
            return kit_statuses[i].title;
        }
    }
    return "Unknown";
}


json_t *
kit_problem_new(int status, const char *title, const char *detail,
    const char *request_id)
{
    json_t  *p;

    if (title == NULL) {
        title = kit_status_title(status);
    }
    if (detail == NULL) {
        detail = title;
    }
    p = json_object();
    if (p == NULL) {
        return NULL;
    }
    if (json_object_set_new(p, "type", json_string("about:blank")) != 0
        || json_object_set_new(p, "title", kit_json_str(title)) != 0
        || json_object_set_new(p, "status", json_integer(status)) != 0
        || json_object_set_new(p, "detail", kit_json_str(detail)) != 0
        || json_object_set_new(p, "request_id",
                               kit_json_str(request_id)) != 0)
    {
        json_decref(p);
        return NULL;
    }
    return p;
}
