/*
 * Robot `{{code}}`: writes a greeting with the entity's title to a field.
 * `robohost plugin build` generates the bindings (robot.h, robot.c) with
 * wit-bindgen, compiles with clang for wasm32-wasi and adapts the module
 * into a component; `robohost plugin test` runs it on the cases in `tests/`.
 *
 * Ownership, as wit-bindgen's C bindings want it: `run` owns the invocation
 * and frees it; what `describe` and `run` return is malloc'ed and freed by
 * the bindings; arguments of host calls stay the caller's; a host error
 * returned is the caller's to free.
 */

#include <stdlib.h>
#include <string.h>

#include "robot.h"

typedef robohost_robot_types_value_t value_t;
typedef robohost_robot_robot_types_list_localized_t names_t;
typedef robohost_robot_robot_types_property_t property_t;

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

static names_t names(const char *en, const char *ru) {
    names_t list = {alloc(2, sizeof(robohost_robot_robot_types_localized_t)), 2};
    list.ptr[0].lang = copy("en");
    list.ptr[0].text = copy(en);
    list.ptr[1].lang = copy("ru");
    list.ptr[1].text = copy(ru);
    return list;
}

static property_t text_property(const char *code, const char *fallback, const char *en, const char *ru) {
    property_t p;
    memset(&p, 0, sizeof p);
    p.code = copy(code);
    p.names = names(en, ru);
    p.value_type = ROBOHOST_ROBOT_ROBOT_TYPES_VALUE_TYPE_TEXT;
    if (fallback) {
        p.default_.is_some = true;
        p.default_.val.tag = ROBOHOST_ROBOT_TYPES_FIELD_VALUE_SINGLE;
        p.default_.val.val.single.tag = ROBOHOST_ROBOT_TYPES_VALUE_TEXT;
        p.default_.val.val.single.val.text = copy(fallback);
    }
    return p;
}

void exports_robot_describe(robot_list_robot_info_t *ret) {
    robot_robot_info_t *info = alloc(1, sizeof *info);
    info->code = copy("{{code}}");
    info->names = names("Greeting", "Приветствие");
    info->descriptions = names("Writes a greeting with the entity's title to a field.",
                               "Записывает приветствие с названием сущности в поле.");
    info->capabilities.len = 1;
    info->capabilities.ptr = alloc(1, sizeof(robohost_robot_robot_types_capability_t));
    info->capabilities.ptr[0] = ROBOHOST_ROBOT_TYPES_CAPABILITY_SET_FIELDS;
    info->properties.len = 2;
    info->properties.ptr = alloc(2, sizeof(property_t));
    info->properties.ptr[0] = text_property("greeting", "Hello", "Greeting", "Приветствие");
    info->properties.ptr[1] = text_property("field", "UF_GREETING", "Field", "Поле");
    info->returns.len = 1;
    info->returns.ptr = alloc(1, sizeof(property_t));
    info->returns.ptr[0] = text_property("text", NULL, "Text", "Текст");
    ret->ptr = info;
    ret->len = 1;
}

/* The text of field `code` among `count` fields, or `fallback`. */
static robot_string_t text_of(const robot_field_t *fields, size_t count, const char *code, const char *fallback) {
    for (size_t i = 0; i < count; i++) {
        const robohost_robot_types_field_value_t *v = &fields[i].value;
        if (fields[i].code.len == strlen(code) && memcmp(fields[i].code.ptr, code, strlen(code)) == 0 &&
            v->tag == ROBOHOST_ROBOT_TYPES_FIELD_VALUE_SINGLE && v->val.single.tag == ROBOHOST_ROBOT_TYPES_VALUE_TEXT)
            return v->val.single.val.text;
    }
    robot_string_t out = {(uint8_t *)fallback, strlen(fallback)};
    return out;
}

bool exports_robot_run(robot_invocation_t *inv, robot_list_field_t *ret, robot_failure_t *err) {
    robot_string_t greeting = text_of(inv->properties.ptr, inv->properties.len, "greeting", "Hello");
    robot_string_t target = text_of(inv->properties.ptr, inv->properties.len, "field", "UF_GREETING");
    robot_string_t title = text_of(inv->entity.fields.ptr, inv->entity.fields.len, "TITLE", "friend");

    /* "<greeting>, <title>!" */
    size_t len = greeting.len + 2 + title.len + 1;
    uint8_t *text = alloc(len + 1, 1);
    memcpy(text, greeting.ptr, greeting.len);
    memcpy(text + greeting.len, ", ", 2);
    memcpy(text + greeting.len + 2, title.ptr, title.len);
    text[len - 1] = '!';

    robohost_robot_types_field_t field;
    field.code = target;
    field.value.tag = ROBOHOST_ROBOT_TYPES_FIELD_VALUE_SINGLE;
    field.value.val.single.tag = ROBOHOST_ROBOT_TYPES_VALUE_TEXT;
    field.value.val.single.val.text = (robot_string_t){text, len};
    robohost_robot_effects_entity_ref_t this = {inv->entity.kind, inv->entity.id};
    robohost_robot_effects_list_field_t fields = {&field, 1};
    robohost_robot_types_host_error_t error;
    bool ok = robohost_robot_effects_set_fields(&this, &fields, &error);
    if (ok) {
        robot_field_t *out = alloc(1, sizeof *out);
        out->code = copy("text");
        out->value = field.value; /* `text` is handed over to the host here */
        ret->ptr = out;
        ret->len = 1;
    } else {
        /* A host error (such as a denied capability) fails the run. */
        robohost_robot_types_host_error_free(&error);
        err->code = copy("host_error");
        err->message = copy("the host refused to set the field; see the run's denials");
        err->retryable = false;
        free(text);
    }
    robot_invocation_free(inv);
    return ok;
}
