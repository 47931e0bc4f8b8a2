//! `tool_limits`: rules of globs over exposed tool names, the first that
//! names a tool applies. A rule bounds a call's time (`timeout_ms`), the
//! calls a principal has running at once (`max_concurrent`, counted here),
//! and the bytes of its answer (`max_response_bytes`, counted by the proxy
//! over the JSON body or over all SSE events of the call).
//!
//! Running calls are counted per (rule, principal) in one process-wide
//! table keyed by the rule's patterns, so a reload that keeps a rule keeps
//! its counts. A [`Permit`] is the count of one call: dropping it (the
//! call's result, an error, the client gone, a timeout: whatever ends the
//! request) releases it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::base::glob::Glob;

/// One rule of `tool_limits`.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The exposed names it applies to.
    pub tools: Vec<Glob>,
    /// The patterns as written, joined: the rule's identity for counting.
    pub key: Arc<str>,
    /// A call still running after this is answered with an error and
    /// cancelled upstream.
    pub timeout: Option<Duration>,
    /// Calls one principal may have running at once.
    pub max_concurrent: Option<u32>,
    /// The largest answer (JSON body, or all SSE events of the call).
    pub max_response_bytes: Option<usize>,
}

/// The compiled `tool_limits` list.
#[derive(Debug, Clone, Default)]
pub struct ToolLimits {
    rules: Vec<Rule>,
}

/// `max_concurrent` calls of the rule are running for the principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    /// The rule's bound.
    pub max: u32,
}

type Counts = HashMap<(Arc<str>, [u8; crate::session::DIGEST]), u32>;

fn counts() -> std::sync::MutexGuard<'static, Counts> {
    static COUNTS: OnceLock<Mutex<Counts>> = OnceLock::new();
    COUNTS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One running call counted against its rule's `max_concurrent`.
#[derive(Debug)]
pub struct Permit {
    key: (Arc<str>, [u8; crate::session::DIGEST]),
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut all = counts();
        if let Some(n) = all.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                all.remove(&self.key);
            }
        }
    }
}

impl ToolLimits {
    /// The rules, in order.
    pub fn new(rules: Vec<Rule>) -> ToolLimits {
        ToolLimits { rules }
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The first rule naming `tool` (an exposed name).
    pub fn for_tool(&self, tool: &str) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|r| r.tools.iter().any(|g| g.matches(tool)))
    }
}

impl Rule {
    /// Counts a call of `principal` against `max_concurrent`: `None` when
    /// the rule has no such bound, `Busy` when the principal is at it.
    pub fn acquire(&self, principal: [u8; crate::session::DIGEST]) -> Result<Option<Permit>, Busy> {
        let Some(max) = self.max_concurrent else {
            return Ok(None);
        };
        let key = (self.key.clone(), principal);
        let mut all = counts();
        let n = all.entry(key.clone()).or_insert(0);
        if *n >= max {
            return Err(Busy { max });
        }
        *n += 1;
        Ok(Some(Permit { key }))
    }
}

/// Calls of the rule `key` running for `principal` (for tests and the
/// admin view).
pub fn running(key: &str, principal: [u8; crate::session::DIGEST]) -> u32 {
    counts()
        .get(&(Arc::from(key), principal))
        .copied()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(globs: &[&str], max: Option<u32>) -> Rule {
        Rule {
            tools: globs.iter().map(|g| Glob::new(g)).collect(),
            key: globs.join("\n").into(),
            timeout: Some(Duration::from_secs(1)),
            max_concurrent: max,
            max_response_bytes: None,
        }
    }

    #[test]
    fn the_first_rule_naming_a_tool_applies() {
        let l = ToolLimits::new(vec![rule(&["git__log*"], Some(1)), rule(&["*"], None)]);
        assert_eq!(&*l.for_tool("git__log_all").unwrap().key, "git__log*");
        assert_eq!(&*l.for_tool("other").unwrap().key, "*");
        assert!(ToolLimits::default().for_tool("x").is_none());
        // names are matched as they are: no case folding
        assert_eq!(&*l.for_tool("GIT__log").unwrap().key, "*");
    }

    #[test]
    fn permits_count_per_principal_and_release_on_drop() {
        let r = rule(&["limits-test-tool"], Some(2));
        let (alice, bob) = ([1u8; 16], [2u8; 16]);
        let a1 = r.acquire(alice).unwrap();
        let a2 = r.acquire(alice).unwrap();
        assert_eq!(r.acquire(alice).unwrap_err(), Busy { max: 2 });
        // another principal has its own count
        let b1 = r.acquire(bob).unwrap();
        assert!(b1.is_some());
        assert_eq!(running("limits-test-tool", alice), 2);
        drop(a1);
        assert_eq!(running("limits-test-tool", alice), 1);
        let a3 = r.acquire(alice).unwrap();
        drop((a2, a3, b1));
        assert_eq!(running("limits-test-tool", alice), 0);
        assert_eq!(running("limits-test-tool", bob), 0);
        // no bound: nothing counted
        assert!(rule(&["x"], None).acquire(alice).unwrap().is_none());
    }
}
