//! Robot `{{code}}`: writes a greeting with the entity's title to a field.
//! `robohost plugin build` compiles it into a component;
//! `robohost plugin test` runs it on the cases in `tests/`.

use robohost_sdk::{Capability, Context, Failure, Property, Returns, Robot, RobotInfo, Value, effects};

struct Greeting;

impl Robot for Greeting {
    const CODE: &'static str = "{{code}}";

    fn info() -> RobotInfo {
        RobotInfo::new(Self::CODE)
            .name("en", "Greeting")
            .name("ru", "Приветствие")
            .description("en", "Writes a greeting with the entity's title to a field.")
            .description("ru", "Записывает приветствие с названием сущности в поле.")
            .capability(Capability::SetFields)
            .property(Property::text("greeting").default("Hello").name("en", "Greeting").name("ru", "Приветствие"))
            .property(Property::text("field").default("UF_GREETING").name("en", "Field").name("ru", "Поле"))
            .returns(Property::text("text").name("en", "Text").name("ru", "Текст"))
    }

    fn run(cx: &Context) -> Result<Returns, Failure> {
        let greeting = cx.opt_text("greeting")?.unwrap_or("Hello");
        let field = cx.opt_text("field")?.unwrap_or("UF_GREETING");
        let title = match cx.entity().value("TITLE")? {
            Some(Value::Text(title)) => title.as_str(),
            _ => "friend",
        };
        let text = format!("{greeting}, {title}!");
        effects::set_fields(cx.this()).set(field, text.as_str()).apply()?;
        Ok(Returns::new().set("text", text.as_str()))
    }
}

robohost_sdk::export_robots!(Greeting);
