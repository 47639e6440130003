//! Robot `fetch`: GETs `SCHEME://AUTHORITY/PATH` through `wasi:http` and
//! returns the status and body, for the tests of outbound HTTP. A request
//! the host refuses (a host, port or address not approved, a budget spent)
//! fails the robot with the error code it got.
//!
//! `times` repeats the GET (budgets); `follow` requests a redirect's
//! `Location` once more, as a new request: wasi:http never follows one
//! itself, so the host checks every hop on its own.

use robohost_sdk::{Context, Failure, Property, Returns, Robot, RobotInfo};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

struct Fetch;

impl Robot for Fetch {
    const CODE: &'static str = "fetch";

    fn info() -> RobotInfo {
        RobotInfo::new(Self::CODE)
            .name("en", "Fetch")
            .description("en", "GETs a path of an outside HTTP service.")
            .property(Property::text("authority").required().name("en", "Host and port"))
            .property(Property::text("path").default("/").name("en", "Path"))
            .property(Property::text("scheme").default("http").name("en", "Scheme"))
            .property(Property::integer("times").default(1).name("en", "How many times"))
            .property(
                Property::boolean("follow")
                    .default(false)
                    .name("en", "Follow a redirect"),
            )
            .returns(Property::integer("status").name("en", "Status"))
            .returns(Property::text("body").name("en", "Body"))
    }

    fn run(cx: &Context) -> Result<Returns, Failure> {
        let mut url = Url {
            scheme: cx.opt_text("scheme")?.unwrap_or("http").to_owned(),
            authority: cx.prop_text("authority")?.to_owned(),
            path: cx.opt_text("path")?.unwrap_or("/").to_owned(),
        };
        let fail = |e| Failure::new("http_error", e);
        let mut answer = get(&url).map_err(fail)?;
        for _ in 1..cx.opt_integer("times")?.unwrap_or(1) {
            answer = get(&url).map_err(fail)?;
        }
        if cx.opt_bool("follow")?.unwrap_or(false)
            && let Some(location) = answer.location.take()
        {
            url = url.join(&location);
            answer = get(&url).map_err(fail)?;
        }
        Ok(Returns::new()
            .set("status", i64::from(answer.status))
            .set("body", answer.body.as_str()))
    }
}

struct Url {
    scheme: String,
    authority: String,
    path: String,
}

impl Url {
    /// The URL a `Location` header points to from this one.
    fn join(&self, location: &str) -> Url {
        match location.split_once("://") {
            Some((scheme, rest)) => {
                let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                Url {
                    scheme: scheme.to_owned(),
                    authority: authority.to_owned(),
                    path: if path.is_empty() { "/".into() } else { path.to_owned() },
                }
            }
            None => Url {
                scheme: self.scheme.clone(),
                authority: self.authority.clone(),
                path: location.to_owned(),
            },
        }
    }
}

struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

fn get(url: &Url) -> Result<Answer, String> {
    let request = OutgoingRequest::new(Fields::new());
    let set = |ok: Result<(), ()>, what: &str| ok.map_err(|()| format!("bad {what}"));
    let scheme = match url.scheme.as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_owned()),
    };
    set(request.set_scheme(Some(&scheme)), "scheme")?;
    set(request.set_authority(Some(&url.authority)), "authority")?;
    set(request.set_path_with_query(Some(&url.path)), "path")?;
    let pending = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(format!("{code:?}")),
        _ => return Err("no response".into()),
    };
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .first()
        .map(|value| String::from_utf8_lossy(value).into_owned());
    let body = response.consume().map_err(|()| "no body")?;
    let stream = body.stream().map_err(|()| "no body stream")?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend(chunk),
            Err(StreamError::Closed) => break,
            Err(e) => return Err(format!("reading the body: {e:?}")),
        }
    }
    Ok(Answer {
        status,
        location,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

robohost_sdk::export_robots!(Fetch);
