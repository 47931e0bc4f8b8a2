//! `tool_overrides`: what clients see of a tool. An entry names a tool by
//! its exposed name (`tool`) and gives it a new description, a new exposed
//! name, or both. List results show the tool so; a call by the new name
//! reaches the tool by its own name; the old name of a renamed tool is no
//! longer callable (an unknown tool), and an upstream tool that happens to
//! be called like a new name is hidden (calls by that name go to the
//! renamed tool). Policy and `tool_limits` name a tool as `tool` does.

use std::collections::HashMap;

use crate::answer::{ItemView, ToolView};

/// One `tool_overrides` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// The tool's exposed name.
    pub tool: String,
    /// The name clients see and call instead.
    pub name: Option<String>,
    /// The description clients see instead.
    pub description: Option<String>,
}

/// The compiled `tool_overrides` list.
#[derive(Debug, Clone, Default)]
pub struct ToolOverrides {
    by_tool: HashMap<String, Override>,
    /// New name -> the tool's exposed name.
    by_name: HashMap<String, String>,
}

/// What a called name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Called<'a> {
    /// A name without a rename: called as it is.
    AsIs,
    /// A new name: the call goes to this tool.
    Renamed(&'a str),
    /// The old name of a renamed tool: not callable.
    Hidden,
}

impl ToolOverrides {
    /// The entries (checked by the config: tools and new names unique,
    /// no new name another entry's tool).
    pub fn new(entries: Vec<Override>) -> ToolOverrides {
        let mut o = ToolOverrides::default();
        for e in entries {
            if let Some(n) = &e.name {
                o.by_name.insert(n.clone(), e.tool.clone());
            }
            o.by_tool.insert(e.tool.clone(), e);
        }
        o
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.by_tool.is_empty()
    }

    /// What the tool name a client called is.
    pub fn called(&self, name: &str) -> Called<'_> {
        if let Some(tool) = self.by_name.get(name) {
            return Called::Renamed(tool);
        }
        match self.by_tool.get(name) {
            Some(o) if o.name.is_some() => Called::Hidden,
            _ => Called::AsIs,
        }
    }

    /// The name clients see for the tool `tool`.
    pub fn shown_name<'a>(&'a self, tool: &'a str) -> &'a str {
        self.by_tool
            .get(tool)
            .and_then(|o| o.name.as_deref())
            .unwrap_or(tool)
    }
}

impl ToolView for ToolOverrides {
    fn view(&self, name: &str, item: &str) -> ItemView {
        let Some(o) = self.by_tool.get(name) else {
            // an upstream tool called like a new name is shadowed by it
            return if self.by_name.contains_key(name) {
                ItemView::Drop
            } else {
                ItemView::Keep
            };
        };
        let Ok(serde_json::Value::Object(mut m)) = serde_json::from_str(item) else {
            // the list filter only passes objects with a name: not reached
            return ItemView::Drop;
        };
        if let Some(n) = &o.name {
            m.insert("name".into(), n.clone().into());
        }
        if let Some(d) = &o.description {
            m.insert("description".into(), d.clone().into());
        }
        ItemView::Replace(serde_json::Value::Object(m).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overrides() -> ToolOverrides {
        ToolOverrides::new(vec![
            Override {
                tool: "math__add".into(),
                name: None,
                description: Some("Add two integers (audited)".into()),
            },
            Override {
                tool: "git__git_log".into(),
                name: Some("git__history".into()),
                description: None,
            },
        ])
    }

    #[test]
    fn calls_by_new_names_reach_the_tool_and_old_names_are_gone() {
        let o = overrides();
        assert_eq!(o.called("git__history"), Called::Renamed("git__git_log"));
        assert_eq!(o.called("git__git_log"), Called::Hidden);
        // a description alone keeps the name callable
        assert_eq!(o.called("math__add"), Called::AsIs);
        assert_eq!(o.called("other"), Called::AsIs);
        // names are compared exactly
        assert_eq!(o.called("GIT__history"), Called::AsIs);
        assert_eq!(o.shown_name("git__git_log"), "git__history");
    }

    #[test]
    fn list_items_show_the_overrides() {
        let o = overrides();
        let ItemView::Replace(t) = o.view(
            "git__git_log",
            r#"{"name":"git__git_log","description":"log","inputSchema":{"type":"object"}}"#,
        ) else {
            panic!("not rewritten")
        };
        let v: serde_json::Value = serde_json::from_str(&t).unwrap();
        assert_eq!(v["name"], "git__history");
        assert_eq!(v["description"], "log");
        assert_eq!(v["inputSchema"]["type"], "object");
        let ItemView::Replace(t) = o.view("math__add", r#"{"name":"math__add"}"#) else {
            panic!("not rewritten")
        };
        assert!(t.contains("Add two integers (audited)"));
        assert_eq!(o.view("echo", r#"{"name":"echo"}"#), ItemView::Keep);
        // an upstream's own tool named like a new name is hidden
        assert_eq!(
            o.view("git__history", r#"{"name":"git__history"}"#),
            ItemView::Drop
        );
    }
}
