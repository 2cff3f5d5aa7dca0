//! Resolves the function address an event carries to the traced function.
//!
//! The kernel may report the address itself or, on kernels with IBT
//! (endbr64 at function entry), the address 4 bytes after it: try both.

use crate::discovery::Target;
use std::collections::HashMap;

pub struct Resolver<'t> {
    by_addr: HashMap<u64, &'t Target>,
}

/// Length of the endbr64 instruction that IBT kernels put at function entry.
const ENDBR_LEN: u64 = 4;

impl<'t> Resolver<'t> {
    pub fn new(targets: &'t [Target]) -> Self {
        Resolver {
            by_addr: targets.iter().map(|t| (t.addr, t)).collect(),
        }
    }

    pub fn resolve(&self, addr: u64) -> Option<&'t Target> {
        self.by_addr
            .get(&addr)
            .or_else(|| self.by_addr.get(&addr.wrapping_sub(ENDBR_LEN)))
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_exact_and_ibt_addresses() {
        let targets = vec![Target {
            name: "ip_rcv".into(),
            module: "vmlinux".into(),
            addr: 0x1000,
            skb_pos: 0,
            btf_id: 0,
            ret: None,
        }];
        let r = Resolver::new(&targets);
        assert_eq!(r.resolve(0x1000).unwrap().name, "ip_rcv");
        assert_eq!(r.resolve(0x1004).unwrap().name, "ip_rcv");
        assert!(r.resolve(0x1008).is_none());
    }
}
