//! The inspector's readers below the envelope: `params` and the objects
//! in it that it reads (`_meta`, `ref`, `notifications`), and the skipper
//! that validates (depth, UTF-8) what nobody reads.

use super::*;

/// What the inspector keeps of `params`.
#[derive(Default)]
pub(super) struct ParamsOut {
    pub(super) name: Field,
    pub(super) uri: Field,
    pub(super) meta_version: Option<Text>,
    pub(super) reference: Option<Box<Ref>>,
    pub(super) subscriptions: Option<Subscriptions>,
}

/// The `params` member: picks the keys it reads, skips (and validates) the rest.
pub(super) struct ParamsSeed<'s, 'b> {
    pub(super) st: &'s State<'b>,
}

impl<'de> DeserializeSeed<'de> for ParamsSeed<'_, '_> {
    type Value = ParamsOut;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ParamsOut, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ParamsSeed<'_, '_> {
    type Value = ParamsOut;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("params")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ParamsOut, A::Error> {
        let st = self.st;
        if st.max_depth < 2 {
            return Err(st.too_deep());
        }
        let mut out = ParamsOut::default();
        let mut seen = 0u8;
        while let Some(key) = st.next_key(&mut map, keys::PARAMS, &mut seen, false)? {
            match key {
                K_NAME => {
                    out.name = Field::from_str_seed(map.next_value_seed(StrSeed { st, depth: 2 })?)
                }
                K_URI => {
                    out.uri = Field::from_str_seed(map.next_value_seed(StrSeed { st, depth: 2 })?)
                }
                K_META => out.meta_version = map.next_value_seed(MetaSeed { st })?,
                K_REF => out.reference = Some(Box::new(map.next_value_seed(RefSeed { st })?)),
                K_NOTIFICATIONS => {
                    out.subscriptions = map.next_value_seed(NotificationsSeed { st })?
                }
                _ => map.next_value_seed(Skip { st, depth: 2 })?,
            }
        }
        Ok(out)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ParamsOut, A::Error> {
        Skip {
            st: self.st,
            depth: 1,
        }
        .visit_seq(seq)?;
        Ok(ParamsOut::default())
    }
    scalars!(ParamsOut, ParamsOut::default(); bool i64 u64 f64 str unit);
}

/// `params._meta`: picks the protocol version (MCP 2026-07-28), skips the rest.
pub(super) struct MetaSeed<'s, 'b> {
    pub(super) st: &'s State<'b>,
}

impl<'de> DeserializeSeed<'de> for MetaSeed<'_, '_> {
    type Value = Option<Text>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Text>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MetaSeed<'_, '_> {
    type Value = Option<Text>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("_meta")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Text>, A::Error> {
        let st = self.st;
        if st.max_depth < 3 {
            return Err(st.too_deep());
        }
        let mut version = None;
        let mut seen = 0u8;
        while let Some(key) = st.next_key(&mut map, keys::META, &mut seen, false)? {
            if key == 0 {
                version = map.next_value_seed(StrSeed { st, depth: 3 })?;
            } else {
                map.next_value_seed(Skip { st, depth: 3 })?;
            }
        }
        Ok(version)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Option<Text>, A::Error> {
        Skip {
            st: self.st,
            depth: 2,
        }
        .visit_seq(seq)?;
        Ok(None)
    }
    scalars!(Option<Text>, None; bool i64 u64 f64 str unit);
}

/// `params.ref`: `type`, `name` and `uri`.
pub(super) struct RefSeed<'s, 'b> {
    pub(super) st: &'s State<'b>,
}

impl<'de> DeserializeSeed<'de> for RefSeed<'_, '_> {
    type Value = Ref;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Ref, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RefSeed<'_, '_> {
    type Value = Ref;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("ref")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ref, A::Error> {
        let st = self.st;
        if st.max_depth < 3 {
            return Err(st.too_deep());
        }
        let mut r = Ref::default();
        let mut seen = 0u8;
        while let Some(key) = st.next_key(&mut map, keys::REF, &mut seen, false)? {
            let slot = match key {
                R_TYPE => &mut r.kind,
                R_NAME => &mut r.name,
                R_URI => &mut r.uri,
                _ => {
                    map.next_value_seed(Skip { st, depth: 3 })?;
                    continue;
                }
            };
            *slot = Field::from_str_seed(map.next_value_seed(StrSeed { st, depth: 3 })?);
        }
        Ok(r)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Ref, A::Error> {
        Skip {
            st: self.st,
            depth: 2,
        }
        .visit_seq(seq)?;
        Ok(not_object_ref())
    }
    scalars!(Ref, not_object_ref(); bool i64 u64 f64 str unit);
}

fn not_object_ref() -> Ref {
    Ref {
        not_object: true,
        ..Ref::default()
    }
}

/// `params.notifications`: `resourceSubscriptions` (an array of strings).
pub(super) struct NotificationsSeed<'s, 'b> {
    pub(super) st: &'s State<'b>,
}

impl<'de> DeserializeSeed<'de> for NotificationsSeed<'_, '_> {
    type Value = Option<Subscriptions>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Subscriptions>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NotificationsSeed<'_, '_> {
    type Value = Option<Subscriptions>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("notifications")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Subscriptions>, A::Error> {
        let st = self.st;
        if st.max_depth < 3 {
            return Err(st.too_deep());
        }
        let mut subs = None;
        let mut seen = 0u8;
        while let Some(key) = st.next_key(&mut map, keys::NOTIFICATIONS, &mut seen, false)? {
            if key == 0 {
                subs = Some(map.next_value_seed(UriListSeed { st })?);
            } else {
                map.next_value_seed(Skip { st, depth: 3 })?;
            }
        }
        Ok(subs)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Option<Subscriptions>, A::Error> {
        Skip {
            st: self.st,
            depth: 2,
        }
        .visit_seq(seq)?;
        Ok(Some(Subscriptions::Malformed))
    }
    scalars!(Option<Subscriptions>, Some(Subscriptions::Malformed); bool i64 u64 f64 str unit);
}

/// An array of strings (`resourceSubscriptions`).
pub(super) struct UriListSeed<'s, 'b> {
    pub(super) st: &'s State<'b>,
}

impl<'de> DeserializeSeed<'de> for UriListSeed<'_, '_> {
    type Value = Subscriptions;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Subscriptions, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UriListSeed<'_, '_> {
    type Value = Subscriptions;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("resourceSubscriptions")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Subscriptions, A::Error> {
        let st = self.st;
        if st.max_depth < 4 {
            return Err(st.too_deep());
        }
        let mut uris = Vec::new();
        let mut ok = true;
        while let Some(v) = seq.next_element_seed(StrSeed { st, depth: 4 })? {
            match v {
                Some(t) if ok => uris.push(t),
                _ => ok = false,
            }
        }
        Ok(if ok {
            Subscriptions::Uris(uris)
        } else {
            Subscriptions::Malformed
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Subscriptions, A::Error> {
        Skip {
            st: self.st,
            depth: 3,
        }
        .visit_map(map)?;
        Ok(Subscriptions::Malformed)
    }
    scalars!(Subscriptions, Subscriptions::Malformed; bool i64 u64 f64 str unit);
}

/// Validates and discards any value; `depth` is the nesting level of the
/// container holding it (a container value found here is at `depth + 1`).
pub(super) struct Skip<'s, 'b> {
    pub(super) st: &'s State<'b>,
    pub(super) depth: u32,
}

impl<'de> DeserializeSeed<'de> for Skip<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    scalars!((), (); bool i64 u64 f64 str unit);
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let depth = self.depth + 1;
        if depth > self.st.max_depth {
            return Err(self.st.too_deep());
        }
        while seq
            .next_element_seed(Skip { st: self.st, depth })?
            .is_some()
        {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let depth = self.depth + 1;
        if depth > self.st.max_depth {
            return Err(self.st.too_deep());
        }
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(Skip { st: self.st, depth })?;
        }
        Ok(())
    }
}
