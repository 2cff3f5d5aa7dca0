//! Turns a raw event into what outputs print: the function (name, module)
//! and extra fields, such as the drop reason of the kfree_skb tracepoint.
//! Extension fields (later) join the same ordered (key, value) list.

use crate::discovery::Target;
use crate::event::Event;
use crate::extension::Extension;
use crate::output::Func;
use crate::symbols::Resolver;
use anyhow::Result;
use std::borrow::Cow;
use std::collections::HashMap;

/// Ordered (key, value) pairs printed after the function.
pub type Fields = Vec<(Cow<'static, str>, String)>;

pub struct Decoder<'t> {
    resolver: Resolver<'t>,
    drop_reasons: &'t HashMap<u64, String>,
    extension: Option<&'t Extension>,
}

impl<'t> Decoder<'t> {
    pub fn new(
        targets: &'t [Target],
        drop_reasons: &'t HashMap<u64, String>,
        extension: Option<&'t Extension>,
    ) -> Self {
        Decoder {
            resolver: Resolver::new(targets),
            drop_reasons,
            extension,
        }
    }

    /// The name of drop reason `reason` (enum skb_drop_reason), or its number.
    pub fn reason_name(&self, reason: u64) -> String {
        self.drop_reasons
            .get(&reason)
            .cloned()
            .unwrap_or_else(|| reason.to_string())
    }

    /// The function and fields of `e`; fails only when a Lua extension's
    /// `decode` fails.
    pub fn decode(&self, e: &Event) -> Result<(Func<'t>, Fields)> {
        let target = self.resolver.resolve(e.faddr);
        let mut fields = Fields::new();
        if let Some(reason) = e.reason {
            fields.push(("reason".into(), self.reason_name(reason)));
        }
        if let (Some(ext), Some(data)) = (self.extension, &e.data) {
            fields.extend(ext.decode(&data[..])?);
        }
        Ok((Func::of(target, e.faddr), fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_reasons_are_named() {
        let targets = vec![
            Target {
                name: "kfree_skb".into(),
                module: "tracepoint".into(),
                addr: 1,
                skb_pos: 0,
                btf_id: 0,
                ret: None,
            },
            Target {
                name: "kfree_skb".into(),
                module: "vmlinux".into(),
                addr: 0xffffffff81000000,
                skb_pos: 0,
                btf_id: 1,
                ret: None,
            },
        ];
        let reasons = HashMap::from([(6u64, "NETFILTER_DROP".to_string())]);
        let d = Decoder::new(&targets, &reasons, None);
        let mut e = Event {
            faddr: 1,
            reason: Some(6),
            ..Event::default()
        };
        let (f, fields) = d.decode(&e).unwrap();
        assert_eq!((f.name, f.module), ("kfree_skb", "tracepoint"));
        assert_eq!(fields, [("reason".into(), "NETFILTER_DROP".to_string())]);
        e.reason = Some(999);
        assert_eq!(
            d.decode(&e).unwrap().1,
            [("reason".into(), "999".to_string())]
        );
        // No reason section, no reason field.
        e.faddr = 0xffffffff81000000;
        e.reason = None;
        assert!(d.decode(&e).unwrap().1.is_empty());
    }
}
