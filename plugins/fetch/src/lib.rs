//! Robot `fetch`: GETs `http://AUTHORITY/PATH` through `wasi:http` and
//! returns the status and body. A request to a host the admin did not
//! approve (`http:HOST`) is refused by the host: the robot fails with the
//! error code it got.

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
            .returns(Property::integer("status").name("en", "Status"))
            .returns(Property::text("body").name("en", "Body"))
    }

    fn run(cx: &Context) -> Result<Returns, Failure> {
        let authority = cx.prop_text("authority")?;
        let path = cx.opt_text("path")?.unwrap_or("/");
        let (status, body) = get(authority, path).map_err(|e| Failure::new("http_error", e))?;
        Ok(Returns::new().set("status", i64::from(status)).set("body", body.as_str()))
    }
}

fn get(authority: &str, path: &str) -> Result<(u16, String), String> {
    let request = OutgoingRequest::new(Fields::new());
    let set = |ok: Result<(), ()>, what: &str| ok.map_err(|()| format!("bad {what}"));
    set(request.set_scheme(Some(&Scheme::Http)), "scheme")?;
    set(request.set_authority(Some(authority)), "authority")?;
    set(request.set_path_with_query(Some(path)), "path")?;
    let pending = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(format!("{code:?}")),
        _ => return Err("no response".into()),
    };
    let status = response.status();
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
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

robohost_sdk::export_robots!(Fetch);
