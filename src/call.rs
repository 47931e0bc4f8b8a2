//! What one JSON-RPC message asks for: its method and the items it names (a
//! tool, a prompt, resource URIs), read from the inspected envelope. The one
//! place that knows which method names which item, so policy, routing and
//! rate limits all see the same thing:
//!
//! | method | item |
//! |---|---|
//! | `tools/call` | tool `params.name` |
//! | `prompts/get` | prompt `params.name` |
//! | `resources/read`, `resources/subscribe`, `resources/unsubscribe` | resource `params.uri` |
//! | `completion/complete` | prompt `params.ref.name` (`ref/prompt`) or resource `params.ref.uri` (`ref/resource`) |
//! | `subscriptions/listen` (2026-07-28) | resources `params.notifications.resourceSubscriptions[]` |
//! | any other method under `tools/`, `prompts/`, `resources/`, `completion/` | `params.name` (a tool or prompt) and `params.uri` when present |
//!
//! Resource URIs are in their normal form ([`crate::uri`]); one that cannot
//! be normalized refuses the call. Pingora-free.

use std::borrow::Cow;

use crate::jsonrpc::{Envelope, Field, Kind, Subscriptions};

/// What kind of named thing a call or list entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// A tool (by name).
    Tool,
    /// A resource (by URI or URI template).
    Resource,
    /// A prompt (by name).
    Prompt,
}

/// Prefixes whose methods name items: a method under one of them that the
/// gateway does not know is only allowed by its exact name (a glob such as
/// `tools/*` does not open methods added to MCP later).
pub const GUARDED_PREFIXES: &[&str] = &["tools/", "prompts/", "resources/", "completion/"];

/// The methods under [`GUARDED_PREFIXES`] the gateway knows.
pub const KNOWN_ITEM_METHODS: &[&str] = &[
    "tools/list",
    "tools/call",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
    "completion/complete",
];

/// Whether `method` is under a guarded prefix and not known to the gateway.
pub fn is_unknown_item_method(method: &str) -> bool {
    GUARDED_PREFIXES.iter().any(|p| method.starts_with(p)) && !KNOWN_ITEM_METHODS.contains(&method)
}

/// What policy, routing and rate limits look at in one call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Call<'a> {
    /// JSON-RPC method; `None` for GET/DELETE and JSON-RPC responses.
    pub method: Option<&'a str>,
    /// The tool it names.
    pub tool: Option<&'a str>,
    /// The prompt it names.
    pub prompt: Option<&'a str>,
    /// The resource URI (or URI template) it names, normalized.
    pub resource: Option<Cow<'a, str>>,
    /// The resource URIs a `subscriptions/listen` subscribes to, normalized.
    pub subscriptions: Vec<Cow<'a, str>>,
}

/// Why a call's items cannot be read: answered 400 / -32602 before anything
/// is forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadParams(pub &'static str);

impl<'a> Call<'a> {
    /// A call from parts that are already checked (a normal-form URI): for
    /// tests, benches and method-less traffic.
    pub fn from_parts(
        method: Option<&'a str>,
        name: Option<&'a str>,
        uri: Option<&'a str>,
    ) -> Self {
        let mut call = Call {
            method,
            ..Call::default()
        };
        match method {
            Some("tools/call") => call.tool = name,
            Some("prompts/get") => call.prompt = name,
            Some("resources/read" | "resources/subscribe" | "resources/unsubscribe") => {
                call.resource = uri.map(Cow::Borrowed)
            }
            _ => {}
        }
        call
    }

    /// The call an inspected message makes. JSON-RPC responses (a client
    /// answering a server request) name nothing.
    pub fn of(env: &'a Envelope, body: &'a [u8]) -> Result<Call<'a>, BadParams> {
        if env.kind == Kind::Response {
            return Ok(Call::default());
        }
        let method = env.method(body);
        let mut call = Call {
            method,
            ..Call::default()
        };
        let Some(m) = method else {
            return Ok(call);
        };
        let name = || env.name(body).ok_or(BadParams(NAME_STRING));
        let uri = || match env.uri(body) {
            Some(u) => normal(u),
            None => Err(BadParams(URI_STRING)),
        };
        match m {
            "tools/call" => call.tool = Some(name()?),
            "prompts/get" => call.prompt = Some(name()?),
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                call.resource = Some(uri()?)
            }
            "completion/complete" => {
                let r = env.reference.as_deref().ok_or(BadParams(REF_OBJECT))?;
                if r.not_object {
                    return Err(BadParams(REF_OBJECT));
                }
                match r.kind.text().map(|t| t.as_str(body)) {
                    Some("ref/prompt") => {
                        call.prompt = Some(string(&r.name, body, REF_NAME_STRING)?)
                    }
                    Some("ref/resource") => {
                        call.resource = Some(normal(string(&r.uri, body, REF_URI_STRING)?)?)
                    }
                    _ => return Err(BadParams(REF_TYPE)),
                }
            }
            "subscriptions/listen" => match &env.subscriptions {
                None => {}
                Some(Subscriptions::Malformed) => return Err(BadParams(SUBSCRIPTIONS)),
                Some(Subscriptions::Uris(list)) => {
                    call.subscriptions = list
                        .iter()
                        .map(|t| normal(t.as_str(body)))
                        .collect::<Result<_, _>>()?
                }
            },
            m if is_unknown_item_method(m) => {
                // an unknown method that names something is checked against
                // it; a name or URI that is not a string cannot be checked
                if env.name_not_string {
                    return Err(BadParams(NAME_STRING));
                }
                if env.uri_not_string {
                    return Err(BadParams(URI_STRING));
                }
                if let Some(n) = env.name(body) {
                    if m.starts_with("prompts/") {
                        call.prompt = Some(n);
                    } else if m.starts_with("tools/") {
                        call.tool = Some(n);
                    }
                }
                if let Some(u) = env.uri(body) {
                    call.resource = Some(normal(u)?);
                }
            }
            _ => {}
        }
        Ok(call)
    }

    /// Every item the call names, for policy.
    pub fn items(&self) -> impl Iterator<Item = (Item, &str)> + '_ {
        self.tool
            .map(|t| (Item::Tool, t))
            .into_iter()
            .chain(self.prompt.map(|p| (Item::Prompt, p)))
            .chain(self.resource.as_deref().map(|r| (Item::Resource, r)))
            .chain(self.subscriptions.iter().map(|r| (Item::Resource, &**r)))
    }

    /// The one item logs and refusals name: the tool, prompt or resource.
    pub fn target(&self) -> Option<&str> {
        self.tool
            .or(self.prompt)
            .or(self.resource.as_deref())
            .or(self.subscriptions.first().map(|s| &**s))
    }
}

const NAME_STRING: &str = "invalid params: \"name\" must be a string";
const URI_STRING: &str = "invalid params: \"uri\" must be a string";
const REF_OBJECT: &str = "invalid params: \"ref\" must be an object";
const REF_TYPE: &str = "invalid params: \"ref.type\" must be \"ref/prompt\" or \"ref/resource\"";
const REF_NAME_STRING: &str = "invalid params: \"ref.name\" must be a string";
const REF_URI_STRING: &str = "invalid params: \"ref.uri\" must be a string";
const SUBSCRIPTIONS: &str =
    "invalid params: \"notifications.resourceSubscriptions\" must be an array of strings";

fn string<'a>(f: &'a Field, body: &'a [u8], msg: &'static str) -> Result<&'a str, BadParams> {
    f.text().map(|t| t.as_str(body)).ok_or(BadParams(msg))
}

fn normal(uri: &str) -> Result<Cow<'_, str>, BadParams> {
    crate::uri::normalize(uri).map_err(|r| BadParams(r.message()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonrpc::inspect;

    fn call_of(body: &str) -> Result<Call<'static>, BadParams> {
        let body: &'static [u8] = Box::leak(body.as_bytes().to_vec().into_boxed_slice());
        let env: &'static Envelope = Box::leak(Box::new(match inspect(body, 64) {
            Ok(e) => e,
            Err(e) => panic!("{e:?}"),
        }));
        Call::of(env, body)
    }

    #[test]
    fn items_by_method() {
        let c =
            call_of(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#)
                .unwrap();
        assert_eq!(c.items().collect::<Vec<_>>(), [(Item::Tool, "echo")]);
        let c = call_of(
            r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"secret-prompt"},"argument":{"name":"a","value":""}}}"#,
        )
        .unwrap();
        assert_eq!(
            c.items().collect::<Vec<_>>(),
            [(Item::Prompt, "secret-prompt")]
        );
        let c = call_of(
            r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"FILE://localhost/secret/{k}"}}}"#,
        )
        .unwrap();
        assert_eq!(
            c.items().collect::<Vec<_>>(),
            [(Item::Resource, "file:///secret/{k}")]
        );
        let c = call_of(
            r#"{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"notifications":{"resourceSubscriptions":["file:///a","file:///%73ecret"]}}}"#,
        )
        .unwrap();
        assert_eq!(
            c.items().collect::<Vec<_>>(),
            [
                (Item::Resource, "file:///a"),
                (Item::Resource, "file:///secret")
            ]
        );
        let c = call_of(
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"file:///%70ublic/a"}}"#,
        )
        .unwrap();
        assert_eq!(c.resource.as_deref(), Some("file:///public/a"));
        // an unknown method under a guarded prefix is checked against what it names
        let c = call_of(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/describe","params":{"name":"admin.drop","uri":"file:///x"}}"#,
        )
        .unwrap();
        assert_eq!(
            c.items().collect::<Vec<_>>(),
            [(Item::Tool, "admin.drop"), (Item::Resource, "file:///x")]
        );
        // a response names nothing
        let c = call_of(r#"{"jsonrpc":"2.0","id":1,"result":{"name":"x"}}"#).unwrap();
        assert_eq!(c, Call::default());
    }

    #[test]
    fn unreadable_items_refuse_the_call() {
        for b in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":1}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"prompts/get"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///public/../secret/k"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///public/%2e%2e/secret/k"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/unsubscribe","params":{"uri":["x"]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/tool","name":"x"}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt"}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"file:///a/../b"}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"notifications":{"resourceSubscriptions":"file:///a"}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"notifications":{"resourceSubscriptions":["file:///a/./b"]}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/describe","params":{"name":{}}}"#,
        ] {
            assert!(call_of(b).is_err(), "{b}");
        }
    }

    #[test]
    fn unknown_item_methods() {
        assert!(is_unknown_item_method("tools/describe"));
        assert!(is_unknown_item_method("resources/write"));
        assert!(is_unknown_item_method("completion/other"));
        assert!(!is_unknown_item_method("tools/call"));
        assert!(!is_unknown_item_method("resources/templates/list"));
        assert!(!is_unknown_item_method("ping"));
        assert!(!is_unknown_item_method("tasks/get"));
    }
}
