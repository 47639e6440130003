// Robot `{{code}}`: writes a greeting with the entity's title to a field.
// `robohost plugin build` compiles it into a component with componentize-js;
// `robohost plugin test` runs it on the cases in `tests/`.

import { setFields } from 'robohost:robot/effects@0.1.0';

const names = (en, ru) => [{ lang: 'en', text: en }, { lang: 'ru', text: ru }];
const text = (value) => ({ tag: 'single', val: { tag: 'text', val: value } });
const textProperty = (code, dflt, en, ru) => ({
  code, names: names(en, ru), descriptions: [], valueType: 'text', required: false, multiple: false,
  default: dflt === undefined ? undefined : text(dflt), choices: [],
});

export function describe() {
  return [{
    code: '{{code}}',
    names: names('Greeting', 'Приветствие'),
    descriptions: names("Writes a greeting with the entity's title to a field.",
      'Записывает приветствие с названием сущности в поле.'),
    capabilities: ['set-fields'],
    properties: [
      textProperty('greeting', 'Hello', 'Greeting', 'Приветствие'),
      textProperty('field', 'UF_GREETING', 'Field', 'Поле'),
    ],
    returns: [textProperty('text', undefined, 'Text', 'Текст')],
  }];
}

function textSetting(invocation, code, dflt) {
  const field = invocation.properties.find((f) => f.code === code);
  if (!field || field.value.tag !== 'single') return dflt;
  if (field.value.val.tag !== 'text') {
    throw { code: 'bad_property', message: `property \`${code}\`: expected one text value`, retryable: false };
  }
  return field.value.val.val;
}

export function run(invocation) {
  const greeting = textSetting(invocation, 'greeting', 'Hello');
  const target = textSetting(invocation, 'field', 'UF_GREETING');
  const { entity } = invocation;
  const title = entity.fields.find((f) => f.code === 'TITLE');
  const name = title && title.value.tag === 'single' && title.value.val.tag === 'text' ? title.value.val.val : 'friend';
  const value = text(`${greeting}, ${name}!`);
  // A host error (such as a denied capability) is thrown: the run fails with it.
  setFields({ kind: entity.kind, id: entity.id }, [{ code: target, value }]);
  return [{ code: 'text', value }];
}
