// Trigger `{{code}}`: a form on the site posts what the visitor entered as
// JSON, such as `{"form": "contact-us", "email": "ann@example.com",
// "message": "Call me back"}`, and the trigger fires for the contact with that
// email (the host compares emails ignoring case), with the form's name and the
// message as the event's data.
// `robohost plugin build` compiles it into a component with componentize-js;
// `robohost plugin test` runs it on the cases in `tests/`.

import { write } from 'robohost:robot/log@0.1.0';

const names = (en, ru) => [{ lang: 'en', text: en }, { lang: 'ru', text: ru }];
const text = (value) => ({ tag: 'single', val: { tag: 'text', val: value } });

// A thrown failure refuses the call: `method` and `bad_payload` are the codes
// a test case's `expect.failure` names.
const refuse = (code, message) => ({ code, message, retryable: false });

export function describe() {
  return [{
    code: '{{code}}',
    names: names('Form submitted', 'Форма отправлена'),
    descriptions: names("A visitor submitted a form on the site with the contact's email.",
      'Посетитель отправил форму на сайте с email контакта.'),
  }];
}

export function handle(request) {
  if (request.method !== 'POST') {
    throw refuse('method', `method ${request.method} is not accepted: only POST is`);
  }
  let form = null;
  try {
    form = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(request.body));
  } catch {
    // Not UTF-8, or not JSON: refused below.
  }
  if (form === null || typeof form !== 'object' || Array.isArray(form)) {
    throw refuse('bad_payload', 'the body is not a JSON object');
  }
  const field = (name) => (typeof form[name] === 'string' ? form[name] : '');
  const email = field('email');
  if (!email.includes('@')) {
    throw refuse('bad_payload', 'field `email` is missing or not an email address');
  }
  write('info', `form \`${field('form')}\` submitted by ${email}`);
  return [{
    trigger: '{{code}}',
    target: { tag: 'lookup', val: { kind: 'contact', code: 'EMAIL', value: { tag: 'text', val: email } } },
    data: [
      { code: 'FORM', value: text(field('form')) },
      { code: 'MESSAGE', value: text(field('message')) },
    ],
  }];
}
