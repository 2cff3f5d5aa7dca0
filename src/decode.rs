//! Turns a raw event into what outputs print: the function (name, module)
//! and extra fields, such as the drop reason of the kfree_skb tracepoint.
//! Extension fields (later) join the same ordered (key, value) list.

use crate::backend::tracepoint::KFREE_SKB;
use crate::discovery::{Target, TRACEPOINT_MODULE};
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

    /// The function and fields of `e`; fails only when a Lua extension's
    /// `decode` fails.
    pub fn decode(&self, e: &Event) -> Result<(Func<'t>, Fields)> {
        let target = self.resolver.resolve(e.faddr);
        let mut fields = Fields::new();
        if let Some(t) = target {
            if t.module == TRACEPOINT_MODULE && t.name == KFREE_SKB {
                let reason = self
                    .drop_reasons
                    .get(&e.retval)
                    .cloned()
                    .unwrap_or_else(|| e.retval.to_string());
                fields.push(("reason".into(), reason));
            }
        }
        if let Some(ext) = self.extension {
            fields.extend(ext.decode(&e.data)?);
        }
        Ok((Func::of(target, e.faddr), fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kfree_skb_tracepoint_gets_its_drop_reason() {
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
        let mut e = Event::from_bytes(&[0u8; Event::SIZE]).unwrap();
        e.faddr = 1;
        e.retval = 6;
        let (f, fields) = d.decode(&e).unwrap();
        assert_eq!((f.name, f.module), ("kfree_skb", "tracepoint"));
        assert_eq!(fields, [("reason".into(), "NETFILTER_DROP".to_string())]);
        e.retval = 999;
        assert_eq!(
            d.decode(&e).unwrap().1,
            [("reason".into(), "999".to_string())]
        );
        // The function of the same name is not the tracepoint.
        e.faddr = 0xffffffff81000000;
        assert!(d.decode(&e).unwrap().1.is_empty());
    }
}
