/*
 * Trigger `{{code}}`: a form on the site posts what the visitor entered as
 * JSON, such as {"form": "contact-us", "email": "ann@example.com",
 * "message": "Call me back"}, and the trigger fires for the contact with that
 * email (the host compares emails ignoring case), with the form's name and
 * the message as the event's data.
 * `robohost plugin build` generates the bindings (trigger.h, trigger.c) with
 * wit-bindgen, compiles with clang for wasm32-wasi and adapts the module into
 * a component; `robohost plugin test` runs it on the cases in `tests/`.
 *
 * Ownership, as wit-bindgen's C bindings want it: `handle` owns the request
 * and frees it; what `describe` and `handle` return is malloc'ed and freed by
 * the bindings; arguments of host calls stay the caller's.
 */

#include <stdlib.h>
#include <string.h>

#include "trigger.h"

typedef robohost_robot_trigger_types_list_localized_t names_t;

static void *alloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size);
    if (!p) abort();
    return p;
}

/* A malloc'ed copy of `s`, for data handed back to the host. */
static trigger_string_t copy(const char *s) {
    trigger_string_t out;
    trigger_string_dup(&out, s);
    return out;
}

static names_t names(const char *en, const char *ru) {
    names_t list = {alloc(2, sizeof(robohost_robot_trigger_types_localized_t)), 2};
    list.ptr[0].lang = copy("en");
    list.ptr[0].text = copy(en);
    list.ptr[1].lang = copy("ru");
    list.ptr[1].text = copy(ru);
    return list;
}

void exports_trigger_describe(trigger_list_trigger_info_t *ret) {
    trigger_trigger_info_t *info = alloc(1, sizeof *info);
    info->code = copy("{{code}}");
    info->names = names("Form submitted", "Форма отправлена");
    info->descriptions = names("A visitor submitted a form on the site with the contact's email.",
                               "Посетитель отправил форму на сайте с email контакта.");
    ret->ptr = info;
    ret->len = 1;
}

/*
 * Just enough JSON for a form: the string members of the body's top-level
 * object, each decoded into a malloc'ed string. Other members and nested
 * values are skipped; the body must be UTF-8 (the host takes only UTF-8
 * text back).
 */

typedef struct {
    const uint8_t *at, *end;
} json_t;

static bool is_utf8(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t len = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : (c & 0xF0) == 0xE0 ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (len == 0 || len > n - i) return false;
        for (size_t k = 1; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80) return false;
        /* Overlong forms, UTF-16 surrogates and code points past U+10FFFF. */
        if ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] >= 0xA0) || (c == 0xF0 && s[i + 1] < 0x90) ||
            (c == 0xF4 && s[i + 1] >= 0x90))
            return false;
        i += len;
    }
    return true;
}

static void skip_space(json_t *j) {
    while (j->at < j->end && (*j->at == ' ' || *j->at == '\t' || *j->at == '\n' || *j->at == '\r')) j->at++;
}

/* The 4 hex digits at `p` (at least 4 bytes), or -1. */
static long hex4(const uint8_t *p) {
    long v = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static uint8_t *put_utf8(uint8_t *o, unsigned long cp) {
    if (cp < 0x80) {
        *o++ = (uint8_t)cp;
    } else if (cp < 0x800) {
        *o++ = (uint8_t)(0xC0 | cp >> 6);
        *o++ = (uint8_t)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (uint8_t)(0xE0 | cp >> 12);
        *o++ = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (uint8_t)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (uint8_t)(0xF0 | cp >> 18);
        *o++ = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
        *o++ = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (uint8_t)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* Reads the JSON string at `j`, decoded into `*out` (malloc'ed) unless `out`
 * is NULL. False when it is no string. */
static bool read_string(json_t *j, trigger_string_t *out) {
    if (j->at >= j->end || *j->at != '"') return false;
    j->at++;
    /* Decoded text is never longer than its JSON form. */
    uint8_t *buf = out ? alloc((size_t)(j->end - j->at), 1) : NULL, *o = buf;
    while (j->at < j->end && *j->at != '"') {
        uint8_t c = *j->at++;
        if (c < 0x20) goto bad;
        if (c != '\\') {
            if (o) *o++ = c;
            continue;
        }
        if (j->at >= j->end) goto bad;
        unsigned long cp;
        switch (c = *j->at++) {
        case '"': case '\\': case '/': cp = c; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u': {
            long u = j->end - j->at >= 4 ? hex4(j->at) : -1;
            if (u < 0) goto bad;
            j->at += 4;
            cp = (unsigned long)u;
            /* A UTF-16 pair is one code point; a lone half is U+FFFD. */
            if (cp >= 0xD800 && cp <= 0xDFFF) {
                long low = cp < 0xDC00 && j->end - j->at >= 6 && j->at[0] == '\\' && j->at[1] == 'u' ? hex4(j->at + 2) : -1;
                if (low >= 0xDC00 && low <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + ((unsigned long)low - 0xDC00);
                    j->at += 6;
                } else {
                    cp = 0xFFFD;
                }
            }
            break;
        }
        default: goto bad;
        }
        if (o) o = put_utf8(o, cp);
    }
    if (j->at >= j->end) goto bad;
    j->at++; /* the closing quote */
    if (out) {
        out->ptr = buf;
        out->len = (size_t)(o - buf);
    }
    return true;
bad:
    free(buf);
    return false;
}

/* Skips the JSON value at `j`: numbers and literals are not checked further. */
static bool skip_value(json_t *j, int depth) {
    skip_space(j);
    if (j->at >= j->end) return false;
    uint8_t open = *j->at;
    if (open == '"') return read_string(j, NULL);
    if (open != '{' && open != '[') {
        const uint8_t *start = j->at;
        while (j->at < j->end && *j->at && strchr("+-.0123456789Eeaflnrstu", *j->at)) j->at++;
        return j->at > start;
    }
    uint8_t close = open == '{' ? '}' : ']';
    if (depth > 32) return false;
    j->at++;
    skip_space(j);
    if (j->at < j->end && *j->at == close) {
        j->at++;
        return true;
    }
    for (;;) {
        if (open == '{') {
            skip_space(j);
            if (!read_string(j, NULL)) return false;
            skip_space(j);
            if (j->at >= j->end || *j->at++ != ':') return false;
        }
        if (!skip_value(j, depth + 1)) return false;
        skip_space(j);
        if (j->at >= j->end) return false;
        uint8_t next = *j->at++;
        if (next == close) return true;
        if (next != ',') return false;
    }
}

enum { FORM, EMAIL, MESSAGE, MEMBERS };
static const char *const MEMBER_NAMES[MEMBERS] = {"form", "email", "message"};

static bool same(const trigger_string_t *s, const char *text) {
    return s->len == strlen(text) && memcmp(s->ptr, text, s->len) == 0;
}

/* The members MEMBER_NAMES of the object `body` into `values` (absent or not
 * a string: empty). False when the body is not a JSON object. */
static bool read_form(const trigger_list_u8_t *body, trigger_string_t values[MEMBERS]) {
    json_t j = {body->ptr, body->ptr + body->len};
    if (!is_utf8(body->ptr, body->len)) return false;
    skip_space(&j);
    if (j.at >= j.end || *j.at++ != '{') return false;
    skip_space(&j);
    if (j.at < j.end && *j.at == '}') return ++j.at, skip_space(&j), j.at == j.end;
    for (;;) {
        trigger_string_t key;
        skip_space(&j);
        if (!read_string(&j, &key)) return false;
        skip_space(&j);
        int member = -1;
        for (int i = 0; i < MEMBERS; i++)
            if (same(&key, MEMBER_NAMES[i])) member = i;
        trigger_string_free(&key);
        if (j.at >= j.end || *j.at++ != ':') return false;
        skip_space(&j);
        if (member >= 0 && j.at < j.end && *j.at == '"') {
            trigger_string_free(&values[member]); /* a repeated member: the last one counts */
            if (!read_string(&j, &values[member])) return false;
        } else if (!skip_value(&j, 0)) {
            return false;
        }
        skip_space(&j);
        if (j.at >= j.end) return false;
        uint8_t next = *j.at++;
        if (next == '}') break;
        if (next != ',') return false;
    }
    skip_space(&j);
    return j.at == j.end;
}

static void refuse(trigger_failure_t *err, const char *code, const char *message) {
    err->code = copy(code);
    err->message = copy(message);
    err->retryable = false;
}

static robohost_robot_trigger_types_field_t text_field(const char *code, trigger_string_t text) {
    robohost_robot_trigger_types_field_t field;
    field.code = copy(code);
    field.value.tag = ROBOHOST_ROBOT_TYPES_FIELD_VALUE_SINGLE;
    field.value.val.single.tag = ROBOHOST_ROBOT_TYPES_VALUE_TEXT;
    field.value.val.single.val.text = text; /* handed over to the host */
    return field;
}

bool exports_trigger_handle(trigger_request_t *request, trigger_list_hit_t *ret, trigger_failure_t *err) {
    trigger_string_t values[MEMBERS];
    memset(values, 0, sizeof values);
    bool ok = false;
    /* Failures refuse the call: `method` and `bad_payload` are the codes a
     * test case's `expect.failure` names. */
    if (!same(&request->method, "POST")) {
        refuse(err, "method", "only POST is accepted");
    } else if (!read_form(&request->body, values)) {
        refuse(err, "bad_payload", "the body is not a JSON object");
    } else if (values[EMAIL].len == 0 || !memchr(values[EMAIL].ptr, '@', values[EMAIL].len)) {
        refuse(err, "bad_payload", "field `email` is missing or not an email address");
    } else {
        trigger_string_t line = copy("form submitted by ");
        line.ptr = realloc(line.ptr, line.len + values[EMAIL].len);
        if (!line.ptr) abort();
        memcpy(line.ptr + line.len, values[EMAIL].ptr, values[EMAIL].len);
        line.len += values[EMAIL].len;
        robohost_robot_log_write(ROBOHOST_ROBOT_LOG_LEVEL_INFO, &line);
        trigger_string_free(&line);

        trigger_hit_t *hit = alloc(1, sizeof *hit);
        hit->trigger = copy("{{code}}");
        hit->target.tag = ROBOHOST_ROBOT_TRIGGER_TYPES_TARGET_LOOKUP;
        hit->target.val.lookup.kind = ROBOHOST_ROBOT_TYPES_ENTITY_KIND_CONTACT;
        hit->target.val.lookup.code = copy("EMAIL");
        hit->target.val.lookup.value.tag = ROBOHOST_ROBOT_TYPES_VALUE_TEXT;
        hit->target.val.lookup.value.val.text = values[EMAIL];
        hit->data.ptr = alloc(2, sizeof *hit->data.ptr);
        hit->data.len = 2;
        hit->data.ptr[0] = text_field("FORM", values[FORM]);
        hit->data.ptr[1] = text_field("MESSAGE", values[MESSAGE]);
        memset(values, 0, sizeof values); /* each is the hit's now */
        ret->ptr = hit;
        ret->len = 1;
        ok = true;
    }
    for (int i = 0; i < MEMBERS; i++) trigger_string_free(&values[i]);
    trigger_request_free(request);
    return ok;
}
