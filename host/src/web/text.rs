//! The board's words in each language it speaks. Stored names (pipelines,
//! stages, robots) come in both languages already; this is the rest.

/// A language of the board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    En,
    Ru,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ru => "ru",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        match code {
            "en" => Some(Lang::En),
            "ru" => Some(Lang::Ru),
            _ => None,
        }
    }

    pub fn text(self) -> &'static Text {
        match self {
            Lang::En => &EN,
            Lang::Ru => &RU,
        }
    }

    /// The other language, which the switch offers.
    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Ru,
            Lang::Ru => Lang::En,
        }
    }

    /// `names` in this language, else in English, else any, else `fallback`.
    pub fn pick<'a>(self, names: &'a crate::domain::Localized, fallback: &'a str) -> &'a str {
        names
            .get(self.code())
            .or_else(|| names.get("en"))
            .or_else(|| names.values().next())
            .map_or(fallback, String::as_str)
    }
}

/// Every phrase of the board, in one language.
pub struct Text {
    pub language_name: &'static str,
    pub title: &'static str,
    pub sign_in: &'static str,
    pub user_name: &'static str,
    pub password: &'static str,
    pub wrong_password: &'static str,
    pub expired_form: &'static str,
    pub sign_out: &'static str,
    pub signed_in_as: &'static str,
    pub pipelines: &'static str,
    pub no_pipelines: &'static str,
    pub stages: &'static str,
    pub triggers: &'static str,
    pub robots: &'static str,
    pub no_robots: &'static str,
    pub immediately: &'static str,
    pub after_previous: &'static str,
    pub after: &'static str,
    pub before: &'static str,
    pub in_working_time: &'static str,
    pub only_in_working_time: &'static str,
    pub condition: &'static str,
    pub to_whom: &'static str,
    pub responsible: &'static str,
    pub supervisor: &'static str,
    pub user: &'static str,
    pub disabled: &'static str,
    pub not_found: &'static str,
    pub csrf_refused: &'static str,
}

pub const EN: Text = Text {
    language_name: "English",
    title: "Automation",
    sign_in: "Sign in",
    user_name: "User name",
    password: "Password",
    wrong_password: "The user name or password is wrong.",
    expired_form: "The form expired; send it again.",
    sign_out: "Sign out",
    signed_in_as: "Signed in as",
    pipelines: "Pipelines",
    no_pipelines: "No pipeline yet: install a template or create one through the API.",
    stages: "stages",
    triggers: "Triggers",
    robots: "Robots",
    no_robots: "No robots",
    immediately: "Immediately",
    after_previous: "after the previous robot",
    after: "After",
    before: "before",
    in_working_time: "in working time",
    only_in_working_time: "only in working time, else skipped",
    condition: "If",
    to_whom: "To",
    responsible: "the responsible",
    supervisor: "the responsible's head",
    user: "user",
    disabled: "Disabled",
    not_found: "No such page.",
    csrf_refused: "The form came without its security token, so nothing was done: reload the page and send it again.",
};

pub const RU: Text = Text {
    language_name: "Русский",
    title: "Автоматизация",
    sign_in: "Войти",
    user_name: "Имя пользователя",
    password: "Пароль",
    wrong_password: "Неверное имя пользователя или пароль.",
    expired_form: "Форма устарела; отправьте её ещё раз.",
    sign_out: "Выйти",
    signed_in_as: "Вы вошли как",
    pipelines: "Воронки",
    no_pipelines: "Воронок пока нет: установите шаблон или создайте воронку через API.",
    stages: "стадий",
    triggers: "Триггеры",
    robots: "Роботы",
    no_robots: "Нет роботов",
    immediately: "Сразу",
    after_previous: "после предыдущего робота",
    after: "Через",
    before: "до",
    in_working_time: "в рабочее время",
    only_in_working_time: "только в рабочее время, иначе пропускается",
    condition: "Если",
    to_whom: "Кому",
    responsible: "ответственному",
    supervisor: "руководителю ответственного",
    user: "пользователю",
    disabled: "Отключён",
    not_found: "Такой страницы нет.",
    csrf_refused: "Форма пришла без ключа безопасности, ничего не сделано: обновите страницу и отправьте её снова.",
};
