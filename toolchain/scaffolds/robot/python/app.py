"""Robot `{{code}}`: writes a greeting with the entity's title to a field.
`robohost plugin build` compiles it into a component with componentize-py;
`robohost plugin test` runs it on the cases in `tests/`."""

import wit_world
from componentize_py_types import Err
from wit_world.imports import effects, robot_types, types


def names(en, ru):
    return [types.Localized("en", en), types.Localized("ru", ru)]


def text_property(code, default, en, ru):
    value = None if default is None else types.FieldValue_Single(types.Value_Text(default))
    return robot_types.Property(code, names(en, ru), [], robot_types.ValueType.TEXT, False, False, value, [])


def text_setting(invocation, code, default):
    for field in invocation.properties:
        if field.code == code and isinstance(field.value, types.FieldValue_Single):
            if isinstance(field.value.value, types.Value_Text):
                return field.value.value.value
            raise Err(types.Failure("bad_property", f"property `{code}`: expected one text value", False))
    return default


def title_of(entity):
    for field in entity.fields:
        value = field.value
        if field.code == "TITLE" and isinstance(value, types.FieldValue_Single):
            if isinstance(value.value, types.Value_Text):
                return value.value.value
    return "friend"


class WitWorld(wit_world.WitWorld):
    def describe(self):
        return [
            robot_types.RobotInfo(
                "{{code}}",
                names("Greeting", "Приветствие"),
                names("Writes a greeting with the entity's title to a field.",
                      "Записывает приветствие с названием сущности в поле."),
                [types.Capability.SET_FIELDS],
                [
                    text_property("greeting", "Hello", "Greeting", "Приветствие"),
                    text_property("field", "UF_GREETING", "Field", "Поле"),
                ],
                [text_property("text", None, "Text", "Текст")],
            )
        ]

    def run(self, invocation):
        greeting = text_setting(invocation, "greeting", "Hello")
        target = text_setting(invocation, "field", "UF_GREETING")
        entity = invocation.entity
        text = f"{greeting}, {title_of(entity)}!"
        value = types.FieldValue_Single(types.Value_Text(text))
        # A host error (such as a denied capability) is raised as `Err`: the run fails with it.
        effects.set_fields(types.EntityRef(entity.kind, entity.id), [types.Field(target, value)])
        return [types.Field("text", value)]
