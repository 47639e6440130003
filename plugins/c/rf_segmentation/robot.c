/*
 * Robot `rf_segment` in C: RF segmentation, the same robot as
 * plugins/rf-segmentation (Rust), giving the same segments, failures and
 * messages. A client's segment comes from Recency, the days since the last
 * purchase, and Frequency, the number of purchases:
 *
 *   recency \ purchases    1          2 to frequent-1   frequent or more
 *   up to recent_days      new        promising         loyal
 *   up to lapsing_days     wandering  wandering         loyal
 *   up to dormant_days     dormant    dormant           at_risk
 *   longer                 lost       lost              lost
 *
 * Built against wit/since_v0.1.0, world `robot`. robot.h is the header of
 * the bindings wit-bindgen's C generator writes for the world (with its own
 * glue robot.c and robot_component_type.o, in a build folder apart from this
 * one); robohost-toolchain generates them, compiles with clang for
 * wasm32-wasi and adapts the module to a component.
 *
 * Ownership, as wit-bindgen's C bindings want it: `run` owns the invocation
 * it is given and frees it; everything `describe` and `run` return is
 * malloc'ed, and the bindings free it once the host has read it; arguments
 * passed to host calls stay the caller's; a host error returned is ours to
 * free.
 *
 * It uses no stdio, so the component imports nothing from WASI.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "robot.h"

#define DAY_MS 86400000LL

typedef robohost_robot_types_value_t value_t;
typedef robohost_robot_types_field_value_t field_value_t;
typedef robohost_robot_types_host_error_t host_error_t;
typedef robohost_robot_robot_types_list_localized_t names_t;
typedef robohost_robot_robot_types_property_t property_t;
typedef robohost_robot_robot_types_choice_t choice_t;

/* code, English name, Russian name */
static const char *const SEGMENTS[][3] = {
    {"new", "New", "Новые"},
    {"promising", "Promising", "Перспективные"},
    {"wandering", "Wandering", "Блуждающие"},
    {"dormant", "Dormant", "Спящие"},
    {"loyal", "Loyal", "Лояльные"},
    {"at_risk", "At risk", "В зоне риска"},
    {"lost", "Lost", "Потерянные"},
};
#define SEGMENT_COUNT (sizeof SEGMENTS / sizeof SEGMENTS[0])

/* WIT names, indexed by the generated enum and variant tags. */
static const char *const ENTITY_KINDS[] = {"lead", "deal", "contact", "company", "task", "activity"};
static const char *const VALUE_TYPES[] = {"text", "integer", "decimal", "money", "boolean", "date",
                                          "datetime", "user", "entity", "option", "file"};
static const char *const CAPABILITIES[] = {"crm-read", "set-fields", "move-stage", "change-responsible",
                                           "create-entity", "add-comment", "notify", "send-message",
                                           "kv-store", "calendar"};

/* --- small helpers ------------------------------------------------------- */

static void *alloc(size_t count, size_t size) {
    void *p = calloc(count, size);
    if (!p) abort();
    return p;
}

/* A malloc'ed copy of `s`, for data handed back to the host. */
static robot_string_t copy(const char *s) {
    robot_string_t out;
    robot_string_dup(&out, s);
    return out;
}

/* `s` itself, not copied: for reading and for host call arguments. */
static robot_string_t view(const char *s) {
    robot_string_t out = {(uint8_t *)s, strlen(s)};
    return out;
}

/* Floor division and remainder, as Rust's div_euclid for a positive divisor. */
static int64_t div_floor(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b < 0) ? q - 1 : q;
}

/* A growing message, malloc'ed: it becomes a failure's message. */
typedef struct {
    char *data;
    size_t len, cap;
} text_t;

static void put_n(text_t *t, const char *s, size_t n) {
    if (t->len + n > t->cap) {
        t->cap = (t->len + n) * 2 + 16;
        t->data = realloc(t->data, t->cap);
        if (!t->data) abort();
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
}

static void put(text_t *t, const char *s) { put_n(t, s, strlen(s)); }

static void put_str(text_t *t, robot_string_t s) { put_n(t, (const char *)s.ptr, s.len); }

static void put_u64(text_t *t, uint64_t n) {
    char digits[20];
    size_t i = sizeof digits;
    do {
        digits[--i] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    put_n(t, digits + i, sizeof digits - i);
}

/* Fills `err` with failure `code` and `message` (taken over); returns false. */
static bool fail(robot_failure_t *err, const char *code, text_t message, bool retryable) {
    err->code = copy(code);
    err->message.ptr = (uint8_t *)message.data;
    err->message.len = message.len;
    err->retryable = retryable;
    return false;
}

/* --- the catalog ----------------------------------------------------------- */

static names_t names(const char *en, const char *ru) {
    names_t list = {alloc(2, sizeof(robohost_robot_robot_types_localized_t)), 2};
    list.ptr[0].lang = copy("en");
    list.ptr[0].text = copy(en);
    list.ptr[1].lang = copy("ru");
    list.ptr[1].text = copy(ru);
    return list;
}

/* An optional, single-valued property with no description, default or choices. */
static property_t property(const char *code, uint8_t value_type, const char *en, const char *ru) {
    property_t p;
    memset(&p, 0, sizeof p);
    p.code = copy(code);
    p.names = names(en, ru);
    p.value_type = value_type;
    return p;
}

static property_t text_property(const char *code, const char *fallback, const char *en, const char *ru) {
    property_t p = property(code, ROBOHOST_ROBOT_ROBOT_TYPES_VALUE_TYPE_TEXT, en, ru);
    p.default_.is_some = true;
    p.default_.val.tag = ROBOHOST_ROBOT_TYPES_FIELD_VALUE_SINGLE;
    p.default_.val.val.single.tag = ROBOHOST_ROBOT_TYPES_VALUE_TEXT;
    p.default_.val.val.single.val.text = copy(fallback);
    return p;
}

static property_t days_property(const char *code, int64_t fallback, const char *en, const char *ru) {
    property_t p = property(code, ROBOHOST_ROBOT_ROBOT_TYPES_VALUE_TYPE_INTEGER, en, ru);
    p.default_.is_some = true;
    p.default_.val.tag = ROBOHOST_ROBOT_TYPES_FIELD_VALUE_SINGLE;
    p.default_.val.val.single.tag = ROBOHOST_ROBOT_TYPES_VALUE_INTEGER;
    p.default_.val.val.single.val.integer = fallback;
    return p;
}

void exports_robot_describe(robot_list_robot_info_t *ret) {
    robot_robot_info_t *info = alloc(1, sizeof *info);
    info->code = copy("rf_segment");
    info->names = names("RF segmentation", "RF-сегментация");
    info->descriptions = names(
        "Writes the client's segment from days since the last purchase and the number of purchases.",
        "Записывает сегмент клиента по давности последней покупки и числу покупок.");

    info->capabilities.len = 1;
    info->capabilities.ptr = alloc(1, sizeof(robohost_robot_robot_types_capability_t));
    info->capabilities.ptr[0] = ROBOHOST_ROBOT_TYPES_CAPABILITY_SET_FIELDS;

    property_t *props = alloc(7, sizeof *props);
    props[0] = text_property("last_purchase_field", "UF_LAST_PURCHASE", "Last purchase date field",
                             "Поле даты последней покупки");
    props[1] = text_property("purchases_field", "UF_PURCHASES", "Number of purchases field", "Поле числа покупок");
    props[2] = text_property("segment_field", "UF_RF_SEGMENT", "Segment field", "Поле сегмента");
    props[3] = days_property("recent_days", 30, "Recent: days at most", "Недавние: не более дней");
    props[4] = days_property("lapsing_days", 90, "Lapsing: days at most", "Уходящие: не более дней");
    props[5] = days_property("dormant_days", 180, "Dormant: days at most", "Спящие: не более дней");
    props[6] = days_property("frequent", 5, "Frequent: purchases at least", "Частые: покупок не менее");
    info->properties.ptr = props;
    info->properties.len = 7;

    property_t *segment = alloc(1, sizeof *segment);
    *segment = property("segment", ROBOHOST_ROBOT_ROBOT_TYPES_VALUE_TYPE_OPTION, "Segment", "Сегмент");
    segment->choices.len = SEGMENT_COUNT;
    segment->choices.ptr = alloc(SEGMENT_COUNT, sizeof(choice_t));
    for (size_t i = 0; i < SEGMENT_COUNT; i++) {
        segment->choices.ptr[i].code = copy(SEGMENTS[i][0]);
        segment->choices.ptr[i].names = names(SEGMENTS[i][1], SEGMENTS[i][2]);
    }
    info->returns.ptr = segment;
    info->returns.len = 1;

    ret->ptr = info;
    ret->len = 1;
}

/* --- reading the invocation ---------------------------------------------- */

/* The values a field value holds: none, one, or a list. */
static size_t values_of(const field_value_t *value, const value_t **values) {
    switch (value->tag) {
    case ROBOHOST_ROBOT_TYPES_FIELD_VALUE_SINGLE:
        *values = &value->val.single;
        return 1;
    case ROBOHOST_ROBOT_TYPES_FIELD_VALUE_LIST:
        *values = value->val.list.ptr;
        return value->val.list.len;
    default:
        *values = NULL;
        return 0;
    }
}

static bool same(robot_string_t a, robot_string_t b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* The value of the first of `count` fields named `code`, NULL when none is. */
static const field_value_t *find(const robot_field_t *fields, size_t count, robot_string_t code) {
    for (size_t i = 0; i < count; i++)
        if (same(fields[i].code, code)) return &fields[i].value;
    return NULL;
}

/* Property `code` as at most one value tagged `tag` (named `type`); `*out`
 * stays NULL when it is unset or empty. False with `err` filled when it
 * holds several values or another type. */
static bool property_value(const robot_invocation_t *inv, const char *code, uint8_t tag, const value_t **out,
                           robot_failure_t *err) {
    *out = NULL;
    const field_value_t *field = find(inv->properties.ptr, inv->properties.len, view(code));
    const value_t *values;
    size_t count = field ? values_of(field, &values) : 0;
    if (count == 0) return true;
    if (count == 1 && values[0].tag == tag) {
        *out = &values[0];
        return true;
    }
    text_t m = {0};
    put(&m, "property `");
    put(&m, code);
    put(&m, "`: expected one ");
    put(&m, VALUE_TYPES[tag]);
    put(&m, " value, got ");
    if (count == 1) {
        put(&m, VALUE_TYPES[values[0].tag]);
    } else {
        put_u64(&m, count);
        put(&m, " values");
    }
    return fail(err, "bad_property", m, false);
}

static bool integer_setting(const robot_invocation_t *inv, const char *code, int64_t fallback, int64_t *out,
                            robot_failure_t *err) {
    const value_t *value;
    if (!property_value(inv, code, ROBOHOST_ROBOT_TYPES_VALUE_INTEGER, &value, err)) return false;
    *out = value ? value->val.integer : fallback;
    return true;
}

/* A text property; `*out` points into the invocation or at `fallback`. */
static bool text_setting(const robot_invocation_t *inv, const char *code, const char *fallback,
                         robot_string_t *out, robot_failure_t *err) {
    const value_t *value;
    if (!property_value(inv, code, ROBOHOST_ROBOT_TYPES_VALUE_TEXT, &value, err)) return false;
    *out = value ? value->val.text : view(fallback);
    return true;
}

/* The one value of the entity's standard or custom field `code`; `*out`
 * stays NULL when it is missing or empty. */
static bool entity_value(const robohost_robot_types_entity_t *entity, robot_string_t code, const value_t **out,
                         robot_failure_t *err) {
    *out = NULL;
    const field_value_t *field = find(entity->fields.ptr, entity->fields.len, code);
    if (!field) field = find(entity->custom_fields.ptr, entity->custom_fields.len, code);
    const value_t *values;
    size_t count = field ? values_of(field, &values) : 0;
    if (count == 1) *out = &values[0];
    if (count <= 1) return true;
    text_t m = {0};
    put(&m, "field `");
    put_str(&m, code);
    put(&m, "`: expected one value, got ");
    put_u64(&m, count);
    return fail(err, "bad_field", m, false);
}

/* Howard Hinnant's days_from_civil, as in the Rust SDK. */
static int64_t days_from_epoch(robohost_robot_types_date_t date) {
    int64_t m = date.month, d = date.day;
    int64_t y = (int64_t)date.year - (m <= 2);
    int64_t era = div_floor(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The failure a host error becomes, as the Rust SDK makes it. Frees `error`. */
static bool host_failure(host_error_t *error, robot_failure_t *err) {
    text_t m = {0};
    const char *code;
    bool retryable = false;
    switch (error->tag) {
    case ROBOHOST_ROBOT_TYPES_HOST_ERROR_DENIED:
        code = "host_denied";
        put(&m, "the host denied capability `");
        put(&m, CAPABILITIES[error->val.denied]);
        put(&m, "`: the robot must declare it and the admin must grant it");
        break;
    case ROBOHOST_ROBOT_TYPES_HOST_ERROR_NOT_FOUND:
        code = "host_not_found";
        put(&m, "not found: ");
        put_str(&m, error->val.not_found);
        break;
    case ROBOHOST_ROBOT_TYPES_HOST_ERROR_INVALID:
        code = "host_invalid";
        put(&m, "the host rejected the request: ");
        put_str(&m, error->val.invalid);
        break;
    case ROBOHOST_ROBOT_TYPES_HOST_ERROR_LIMIT_EXCEEDED:
        code = "host_limit_exceeded";
        put(&m, "a run limit was reached: ");
        put_str(&m, error->val.limit_exceeded);
        break;
    default:
        code = "host_unavailable";
        retryable = true;
        put(&m, "the host is unavailable: ");
        put_str(&m, error->val.unavailable);
        break;
    }
    robohost_robot_types_host_error_free(error);
    return fail(err, code, m, retryable);
}

/* --- the robot ----------------------------------------------------------- */

typedef struct {
    int64_t recent_days, lapsing_days, dormant_days, frequent;
} bounds_t;

/* The segment of a client `days` after their last purchase with `purchases`
 * purchases in all. */
static const char *segment(int64_t days, int64_t purchases, const bounds_t *b) {
    bool frequent = purchases >= b->frequent;
    if (days > b->dormant_days) return "lost";
    if (days > b->lapsing_days) return frequent ? "at_risk" : "dormant";
    if (frequent) return "loyal";
    if (days > b->recent_days) return "wandering";
    return purchases == 1 ? "new" : "promising";
}

static bool rf_segment(const robot_invocation_t *inv, robot_list_field_t *ret, robot_failure_t *err) {
    bounds_t b;
    if (!integer_setting(inv, "recent_days", 30, &b.recent_days, err) ||
        !integer_setting(inv, "lapsing_days", 90, &b.lapsing_days, err) ||
        !integer_setting(inv, "dormant_days", 180, &b.dormant_days, err) ||
        !integer_setting(inv, "frequent", 5, &b.frequent, err))
        return false;
    if (!(b.recent_days < b.lapsing_days && b.lapsing_days < b.dormant_days)) {
        text_t m = {0};
        put(&m, "property `lapsing_days`: the day bounds must grow: recent_days < lapsing_days < dormant_days");
        return fail(err, "bad_property", m, false);
    }

    const robohost_robot_types_entity_t *entity = &inv->entity;
    robot_string_t purchases_field;
    const value_t *count;
    if (!text_setting(inv, "purchases_field", "UF_PURCHASES", &purchases_field, err) ||
        !entity_value(entity, purchases_field, &count, err))
        return false;
    int64_t purchases = 0;
    if (count && count->tag == ROBOHOST_ROBOT_TYPES_VALUE_INTEGER) {
        purchases = count->val.integer;
    } else if (count) {
        text_t m = {0};
        put(&m, "`");
        put_str(&m, purchases_field);
        put(&m, "` holds ");
        put(&m, VALUE_TYPES[count->tag]);
        put(&m, ", not a number of purchases");
        return fail(err, "bad_field", m, false);
    }

    robot_string_t last_field;
    const value_t *last;
    if (!text_setting(inv, "last_purchase_field", "UF_LAST_PURCHASE", &last_field, err) ||
        !entity_value(entity, last_field, &last, err))
        return false;
    int64_t last_day;
    if (last && last->tag == ROBOHOST_ROBOT_TYPES_VALUE_DATE) {
        last_day = days_from_epoch(last->val.date);
    } else if (last && last->tag == ROBOHOST_ROBOT_TYPES_VALUE_DATETIME) {
        last_day = div_floor(last->val.datetime, DAY_MS);
    } else if (purchases == 0) {
        text_t m = {0};
        put(&m, "the ");
        put(&m, ENTITY_KINDS[entity->kind]);
        put(&m, " has made no purchase yet, so it has no segment");
        return fail(err, "no_purchases", m, false);
    } else {
        text_t m = {0};
        put(&m, "`");
        put_str(&m, last_field);
        put(&m, "` holds no date of the last purchase");
        return fail(err, "no_last_purchase", m, false);
    }

    int64_t days = div_floor(inv->now, DAY_MS) - last_day;
    const char *name = segment(days, purchases > 1 ? purchases : 1, &b);
    robot_string_t target;
    if (!text_setting(inv, "segment_field", "UF_RF_SEGMENT", &target, err)) return false;

    /* Host call arguments stay ours: views of the invocation and of constants. */
    robohost_robot_types_field_t field;
    field.code = target;
    field.value.tag = ROBOHOST_ROBOT_TYPES_FIELD_VALUE_SINGLE;
    field.value.val.single.tag = ROBOHOST_ROBOT_TYPES_VALUE_OPTION;
    field.value.val.single.val.option = view(name);
    robohost_robot_effects_entity_ref_t entity_ref = {entity->kind, entity->id};
    robohost_robot_effects_list_field_t fields = {&field, 1};
    host_error_t error;
    if (!robohost_robot_effects_set_fields(&entity_ref, &fields, &error)) return host_failure(&error, err);

    /* The returned value is the host's to read and the bindings' to free. */
    robot_field_t *out = alloc(1, sizeof *out);
    out->code = copy("segment");
    out->value.tag = ROBOHOST_ROBOT_TYPES_FIELD_VALUE_SINGLE;
    out->value.val.single.tag = ROBOHOST_ROBOT_TYPES_VALUE_OPTION;
    out->value.val.single.val.option = copy(name);
    ret->ptr = out;
    ret->len = 1;
    return true;
}

bool exports_robot_run(robot_invocation_t *invocation, robot_list_field_t *ret, robot_failure_t *err) {
    bool ok;
    if (same(invocation->robot, view("rf_segment"))) {
        ok = rf_segment(invocation, ret, err);
    } else {
        text_t m = {0};
        put(&m, "this component has no robot `");
        put_str(&m, invocation->robot);
        put(&m, "`; it has: rf_segment");
        ok = fail(err, "unknown_robot", m, false);
    }
    robot_invocation_free(invocation);
    return ok;
}
