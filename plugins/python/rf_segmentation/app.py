"""Robot `rf_segment` in Python: RF segmentation, the same robot as
plugins/rf-segmentation (Rust), giving the same segments. Built with
componentize-py against wit/since_v0.1.0, world `robot`."""

import wit_world
from componentize_py_types import Err
from wit_world.imports import effects, robot_types, types

SEGMENTS = [
    ("new", "New", "Новые"),
    ("promising", "Promising", "Перспективные"),
    ("wandering", "Wandering", "Блуждающие"),
    ("dormant", "Dormant", "Спящие"),
    ("loyal", "Loyal", "Лояльные"),
    ("at_risk", "At risk", "В зоне риска"),
    ("lost", "Lost", "Потерянные"),
]

DAY_MS = 86_400_000


def names(en, ru):
    return [types.Localized("en", en), types.Localized("ru", ru)]


def prop(code, value_type, default, en, ru, choices=()):
    return robot_types.Property(
        code, names(en, ru), [], value_type, False, False, default, list(choices)
    )


def text(value):
    return types.FieldValue_Single(types.Value_Text(value))


def integer(value):
    return types.FieldValue_Single(types.Value_Integer(value))


def segment(days, purchases, recent, lapsing, dormant, frequent):
    is_frequent = purchases >= frequent
    if days > dormant:
        return "lost"
    if days > lapsing:
        return "at_risk" if is_frequent else "dormant"
    if is_frequent:
        return "loyal"
    if days > recent:
        return "wandering"
    return "new" if purchases == 1 else "promising"


def days_from_epoch(date):
    # Howard Hinnant's days_from_civil, as in the Rust SDK.
    y = date.year - (1 if date.month <= 2 else 0)
    era = y // 400
    yoe = y - era * 400
    m = date.month
    doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + date.day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def fail(code, message):
    raise Err(types.Failure(code, message, False))


def single(fields, code):
    for field in fields:
        if field.code == code:
            value = field.value
            if isinstance(value, types.FieldValue_Single):
                return value.value
            if isinstance(value, types.FieldValue_List) and len(value.value) == 1:
                return value.value[0]
            return None
    return None


class WitWorld(wit_world.WitWorld):
    def describe(self):
        choices = [robot_types.Choice(code, names(en, ru)) for code, en, ru in SEGMENTS]
        return [
            robot_types.RobotInfo(
                "rf_segment",
                names("RF segmentation", "RF-сегментация"),
                names(
                    "Writes the client's segment from days since the last purchase and the number of purchases.",
                    "Записывает сегмент клиента по давности последней покупки и числу покупок.",
                ),
                [types.Capability.SET_FIELDS],
                [
                    prop("last_purchase_field", robot_types.ValueType.TEXT, text("UF_LAST_PURCHASE"),
                         "Last purchase date field", "Поле даты последней покупки"),
                    prop("purchases_field", robot_types.ValueType.TEXT, text("UF_PURCHASES"),
                         "Number of purchases field", "Поле числа покупок"),
                    prop("segment_field", robot_types.ValueType.TEXT, text("UF_RF_SEGMENT"),
                         "Segment field", "Поле сегмента"),
                    prop("recent_days", robot_types.ValueType.INTEGER, integer(30),
                         "Recent: days at most", "Недавние: не более дней"),
                    prop("lapsing_days", robot_types.ValueType.INTEGER, integer(90),
                         "Lapsing: days at most", "Уходящие: не более дней"),
                    prop("dormant_days", robot_types.ValueType.INTEGER, integer(180),
                         "Dormant: days at most", "Спящие: не более дней"),
                    prop("frequent", robot_types.ValueType.INTEGER, integer(5),
                         "Frequent: purchases at least", "Частые: покупок не менее"),
                ],
                [prop("segment", robot_types.ValueType.OPTION, None, "Segment", "Сегмент", choices)],
            )
        ]

    def run(self, invocation):
        props = invocation.properties

        def setting(code, default):
            value = single(props, code)
            return value.value if value is not None else default

        recent = setting("recent_days", 30)
        lapsing = setting("lapsing_days", 90)
        dormant = setting("dormant_days", 180)
        frequent = setting("frequent", 5)
        if not (recent < lapsing < dormant):
            fail("bad_property",
                 "property `lapsing_days`: the day bounds must grow: recent_days < lapsing_days < dormant_days")
        entity = invocation.entity
        fields = entity.fields + entity.custom_fields
        purchases_field = setting("purchases_field", "UF_PURCHASES")
        count = single(fields, purchases_field)
        purchases = count.value if isinstance(count, types.Value_Integer) else 0
        last_field = setting("last_purchase_field", "UF_LAST_PURCHASE")
        last = single(fields, last_field)
        if isinstance(last, types.Value_Date):
            last_day = days_from_epoch(last.value)
        elif isinstance(last, types.Value_Datetime):
            last_day = last.value // DAY_MS
        elif purchases == 0:
            fail("no_purchases", f"the {entity.kind.name.lower()} has made no purchase yet, so it has no segment")
        else:
            fail("no_last_purchase", f"`{last_field}` holds no date of the last purchase")
        days = invocation.now // DAY_MS - last_day
        name = segment(days, max(purchases, 1), recent, lapsing, dormant, frequent)
        target = setting("segment_field", "UF_RF_SEGMENT")
        value = types.FieldValue_Single(types.Value_Option(name))
        this = types.EntityRef(entity.kind, entity.id)
        effects.set_fields(this, [types.Field(target, value)])
        return [types.Field("segment", value)]
