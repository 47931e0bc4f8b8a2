//! Members' list results kept while their 2026-07-28 freshness hint says
//! (`ttlMs` > 0): a `cacheScope: public` page is shared by every principal,
//! a `private` one is kept for the principal it was fetched for and never
//! served to another; a page without hints is not kept. A member's
//! `notifications/…/list_changed` drops its pages of that kind. Bounded:
//! at most [`MAX_ENTRIES`] pages, expired ones dropped first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::json::Members;
use super::merge::ListKind;

/// Most pages kept per virtual server.
pub const MAX_ENTRIES: usize = 4096;
/// Longest a page is kept, whatever the member says.
pub const MAX_TTL: Duration = Duration::from_secs(3600);

/// Who may be served a kept page.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Everyone (`cacheScope: public`).
    Public,
    /// Only this principal (its digest).
    Private([u8; 16]),
}

type Key = (usize, ListKind, Option<String>, Scope);

/// The kept pages of one virtual server.
#[derive(Debug, Default)]
pub struct ListCache {
    pages: Mutex<HashMap<Key, (Instant, String)>>,
}

impl ListCache {
    /// A page of `kind` for member `m` (its own `cursor`) that `principal`
    /// may be served: its own private copy, else a public one.
    pub fn get(
        &self,
        m: usize,
        kind: ListKind,
        cursor: Option<&str>,
        principal: [u8; 16],
    ) -> Option<String> {
        let pages = self.pages.lock().ok()?;
        let now = Instant::now();
        let c = cursor.map(str::to_string);
        for scope in [Scope::Private(principal), Scope::Public] {
            if let Some((until, text)) = pages.get(&(m, kind, c.clone(), scope)) {
                if *until > now {
                    return Some(text.clone());
                }
            }
        }
        None
    }

    /// Keeps a member's page result if its hints allow.
    pub fn put(
        &self,
        m: usize,
        kind: ListKind,
        cursor: Option<&str>,
        principal: [u8; 16],
        result: &str,
    ) {
        let Some(r) = Members::of(result) else {
            return;
        };
        let ttl = r
            .get("ttlMs")
            .and_then(|v| v.get().parse::<u64>().ok())
            .unwrap_or(0);
        let scope = match r.str("cacheScope").as_deref() {
            Some("public") => Scope::Public,
            Some("private") => Scope::Private(principal),
            _ => return,
        };
        if ttl == 0 {
            return;
        }
        let until = Instant::now() + Duration::from_millis(ttl).min(MAX_TTL);
        let Ok(mut pages) = self.pages.lock() else {
            return;
        };
        if pages.len() >= MAX_ENTRIES {
            let now = Instant::now();
            pages.retain(|_, (u, _)| *u > now);
            if pages.len() >= MAX_ENTRIES {
                pages.clear();
            }
        }
        pages.insert(
            (m, kind, cursor.map(str::to_string), scope),
            (until, result.to_string()),
        );
    }

    /// Drops member `m`'s pages that a `notifications/…/list_changed`
    /// message (`method`) makes stale.
    pub fn changed(&self, m: usize, method: &str) {
        let kinds: &[ListKind] = match method {
            "notifications/tools/list_changed" => &[ListKind::Tools],
            "notifications/prompts/list_changed" => &[ListKind::Prompts],
            "notifications/resources/list_changed" => &[ListKind::Resources, ListKind::Templates],
            _ => return,
        };
        if let Ok(mut pages) = self.pages.lock() {
            pages.retain(|(pm, k, _, _), _| !(*pm == m && kinds.contains(k)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 16] = [1; 16];
    const B: [u8; 16] = [2; 16];

    #[test]
    fn private_pages_are_never_served_to_another_principal() {
        let c = ListCache::default();
        c.put(
            0,
            ListKind::Tools,
            None,
            A,
            r#"{"tools":[],"ttlMs":60000,"cacheScope":"private"}"#,
        );
        assert!(c.get(0, ListKind::Tools, None, A).is_some());
        assert!(c.get(0, ListKind::Tools, None, B).is_none());
        c.put(
            1,
            ListKind::Tools,
            None,
            A,
            r#"{"tools":[],"ttlMs":60000,"cacheScope":"public"}"#,
        );
        assert!(c.get(1, ListKind::Tools, None, B).is_some());
        assert!(
            c.get(1, ListKind::Tools, Some("p2"), B).is_none(),
            "another page"
        );
        assert!(c.get(1, ListKind::Prompts, None, B).is_none());
    }

    #[test]
    fn no_hint_no_keep_and_list_changed_drops() {
        let c = ListCache::default();
        c.put(0, ListKind::Tools, None, A, r#"{"tools":[]}"#);
        c.put(
            0,
            ListKind::Tools,
            None,
            A,
            r#"{"tools":[],"ttlMs":0,"cacheScope":"public"}"#,
        );
        c.put(0, ListKind::Tools, None, A, r#"{"tools":[],"ttlMs":5000}"#);
        assert!(c.get(0, ListKind::Tools, None, A).is_none());
        c.put(
            0,
            ListKind::Tools,
            None,
            A,
            r#"{"tools":[],"ttlMs":5000,"cacheScope":"public"}"#,
        );
        c.put(
            0,
            ListKind::Resources,
            None,
            A,
            r#"{"resources":[],"ttlMs":5000,"cacheScope":"public"}"#,
        );
        c.changed(0, "notifications/tools/list_changed");
        assert!(c.get(0, ListKind::Tools, None, A).is_none());
        assert!(c.get(0, ListKind::Resources, None, A).is_some());
        c.changed(0, "notifications/resources/list_changed");
        assert!(c.get(0, ListKind::Resources, None, A).is_none());
    }

    #[test]
    fn expired_pages_are_not_served() {
        let c = ListCache::default();
        c.put(
            0,
            ListKind::Tools,
            None,
            A,
            r#"{"tools":[],"ttlMs":1,"cacheScope":"public"}"#,
        );
        std::thread::sleep(Duration::from_millis(5));
        assert!(c.get(0, ListKind::Tools, None, A).is_none());
    }
}
