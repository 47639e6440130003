"""Trigger `{{code}}`: a form on the site posts what the visitor entered as
JSON, such as `{"form": "contact-us", "email": "ann@example.com",
"message": "Call me back"}`, and the trigger fires for the contact with that
email (the host compares emails ignoring case), with the form's name and the
message as the event's data.
`robohost plugin build` compiles it into a component with componentize-py;
`robohost plugin test` runs it on the cases in `tests/`."""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import log, trigger_types, types


def names(en, ru):
    return [types.Localized("en", en), types.Localized("ru", ru)]


def text(value):
    return types.FieldValue_Single(types.Value_Text(value))


def refuse(code, message):
    """A failure refuses the call: `method` and `bad_payload` are the codes a
    test case's `expect.failure` names."""
    return Err(types.Failure(code, message, False))


class WitWorld(wit_world.WitWorld):
    def describe(self):
        return [
            trigger_types.TriggerInfo(
                "{{code}}",
                names("Form submitted", "Форма отправлена"),
                names("A visitor submitted a form on the site with the contact's email.",
                      "Посетитель отправил форму на сайте с email контакта."),
            )
        ]

    def handle(self, request):
        if request.method != "POST":
            raise refuse("method", f"method {request.method} is not accepted: only POST is")
        try:
            form = json.loads(request.body)
            # A lone UTF-16 surrogate ("\ud800") parses, but is no text the host takes.
            json.dumps(form, ensure_ascii=False).encode()
        except ValueError:
            form = None
        if not isinstance(form, dict):
            raise refuse("bad_payload", "the body is not a JSON object")

        def field(name):
            value = form.get(name)
            return value if isinstance(value, str) else ""

        email = field("email")
        if "@" not in email:
            raise refuse("bad_payload", "field `email` is missing or not an email address")
        log.write(log.Level.INFO, f"form `{field('form')}` submitted by {email}")
        target = trigger_types.Target_Lookup(
            trigger_types.Lookup(types.EntityKind.CONTACT, "EMAIL", types.Value_Text(email)))
        data = [types.Field("FORM", text(field("form"))), types.Field("MESSAGE", text(field("message")))]
        return [trigger_types.Hit("{{code}}", target, data)]
