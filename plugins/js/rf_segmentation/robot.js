// Robot `rf_segment` in JavaScript: RF segmentation, the same robot as
// plugins/rf-segmentation (Rust), giving the same segments. Built with
// componentize-js against wit/since_v0.1.0, world `robot`.

import { setFields } from 'robohost:robot/effects@0.1.0';

const SEGMENTS = [
  ['new', 'New', 'Новые'],
  ['promising', 'Promising', 'Перспективные'],
  ['wandering', 'Wandering', 'Блуждающие'],
  ['dormant', 'Dormant', 'Спящие'],
  ['loyal', 'Loyal', 'Лояльные'],
  ['at_risk', 'At risk', 'В зоне риска'],
  ['lost', 'Lost', 'Потерянные'],
];
const DAY_MS = 86400000n;

const names = (en, ru) => [{ lang: 'en', text: en }, { lang: 'ru', text: ru }];
const text = (value) => ({ tag: 'single', val: { tag: 'text', val: value } });
const integer = (value) => ({ tag: 'single', val: { tag: 'integer', val: BigInt(value) } });
const prop = (code, valueType, dflt, en, ru, choices = []) => ({
  code, names: names(en, ru), descriptions: [], valueType, required: false, multiple: false,
  default: dflt, choices,
});

export function describe() {
  return [{
    code: 'rf_segment',
    names: names('RF segmentation', 'RF-сегментация'),
    descriptions: names(
      "Writes the client's segment from days since the last purchase and the number of purchases.",
      'Записывает сегмент клиента по давности последней покупки и числу покупок.'),
    capabilities: ['set-fields'],
    properties: [
      prop('last_purchase_field', 'text', text('UF_LAST_PURCHASE'), 'Last purchase date field', 'Поле даты последней покупки'),
      prop('purchases_field', 'text', text('UF_PURCHASES'), 'Number of purchases field', 'Поле числа покупок'),
      prop('segment_field', 'text', text('UF_RF_SEGMENT'), 'Segment field', 'Поле сегмента'),
      prop('recent_days', 'integer', integer(30), 'Recent: days at most', 'Недавние: не более дней'),
      prop('lapsing_days', 'integer', integer(90), 'Lapsing: days at most', 'Уходящие: не более дней'),
      prop('dormant_days', 'integer', integer(180), 'Dormant: days at most', 'Спящие: не более дней'),
      prop('frequent', 'integer', integer(5), 'Frequent: purchases at least', 'Частые: покупок не менее'),
    ],
    returns: [prop('segment', 'option', undefined, 'Segment', 'Сегмент',
      SEGMENTS.map(([code, en, ru]) => ({ code, names: names(en, ru) })))],
  }];
}

function single(fields, code) {
  const field = fields.find((f) => f.code === code);
  if (!field) return undefined;
  if (field.value.tag === 'single') return field.value.val;
  if (field.value.tag === 'list' && field.value.val.length === 1) return field.value.val[0];
  return undefined;
}

function segment(days, purchases, recent, lapsing, dormant, frequent) {
  const isFrequent = purchases >= frequent;
  if (days > dormant) return 'lost';
  if (days > lapsing) return isFrequent ? 'at_risk' : 'dormant';
  if (isFrequent) return 'loyal';
  if (days > recent) return 'wandering';
  return purchases === 1n ? 'new' : 'promising';
}

function daysFromEpoch({ year, month, day }) {
  // Howard Hinnant's days_from_civil, as in the Rust SDK.
  const y = year - (month <= 2 ? 1 : 0);
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return BigInt(era * 146097 + doe - 719468);
}

const fail = (code, message) => {
  throw { code, message, retryable: false };
};

export function run(invocation) {
  const setting = (code, dflt) => {
    const value = single(invocation.properties, code);
    return value === undefined ? dflt : value.val;
  };
  const recent = setting('recent_days', 30n);
  const lapsing = setting('lapsing_days', 90n);
  const dormant = setting('dormant_days', 180n);
  const frequent = setting('frequent', 5n);
  if (!(recent < lapsing && lapsing < dormant)) {
    fail('bad_property', 'property `lapsing_days`: the day bounds must grow: recent_days < lapsing_days < dormant_days');
  }
  const entity = invocation.entity;
  const fields = [...entity.fields, ...entity.customFields];
  const count = single(fields, setting('purchases_field', 'UF_PURCHASES'));
  const purchases = count && count.tag === 'integer' ? count.val : 0n;
  const lastField = setting('last_purchase_field', 'UF_LAST_PURCHASE');
  const last = single(fields, lastField);
  let lastDay;
  if (last && last.tag === 'date') lastDay = daysFromEpoch(last.val);
  else if (last && last.tag === 'datetime') lastDay = last.val / DAY_MS;
  else if (purchases === 0n) fail('no_purchases', `the ${entity.kind} has made no purchase yet, so it has no segment`);
  else fail('no_last_purchase', `\`${lastField}\` holds no date of the last purchase`);
  const days = invocation.now / DAY_MS - lastDay;
  const name = segment(days, purchases > 0n ? purchases : 1n, recent, lapsing, dormant, frequent);
  const value = { tag: 'single', val: { tag: 'option', val: name } };
  setFields({ kind: entity.kind, id: entity.id }, [{ code: setting('segment_field', 'UF_RF_SEGMENT'), value }]);
  return [{ code: 'segment', value }];
}
