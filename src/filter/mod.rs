//! Packet selection with pcap-filter expressions (tcpdump syntax): owns
//! turning an expression into the two eBPF subprograms ipft's programs call,
//! `ipft_filter_l2` (Ethernet frames) and `ipft_filter_l3` (raw IP), and
//! splicing them into a program before it is loaded.
//!
//! libpcap compiles the expression to classic BPF ([`pcap`], loaded at run
//! time), [`cbpf`] translates that to eBPF, [`splice`] replaces the
//! placeholders of src/bpf/filter.bpf.h. Where the filter runs (which
//! header, which skb) is for the BPF body and the backends to decide; this
//! module does not load or attach anything.

pub mod cbpf;
mod ebpf;
pub mod pcap;
pub mod splice;

#[cfg(test)]
mod kernel_tests;
#[cfg(test)]
mod test_packets;

use libbpf_sys::bpf_insn;

/// An expression compiled for both places a filter runs.
#[derive(Debug, Clone)]
pub struct PacketFilter {
    pub expression: String,
    /// Replaces ipft_filter_l2: data starts at the Ethernet header.
    pub l2: Vec<bpf_insn>,
    /// Replaces ipft_filter_l3: data starts at the IPv4 or IPv6 header.
    pub l3: Vec<bpf_insn>,
    /// Set when the expression cannot run on raw IP (l3 then selects
    /// nothing): one line for the user.
    pub l3_note: Option<String>,
}

/// Why an expression cannot be used: all bad input (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("invalid filter expression '{expression}': {message}")]
    Syntax { expression: String, message: String },
    #[error(
        "filter expression '{expression}' needs libpcap at run time: install it \
         (apt-get install libpcap0.8)"
    )]
    LibpcapMissing {
        expression: String,
        /// What loading tried (not shown: the way out is the same).
        cause: pcap::LibpcapMissing,
    },
    #[error("filter expression '{expression}' cannot be run by ipft ({layer}): {cause}")]
    Untranslatable {
        expression: String,
        layer: &'static str,
        cause: cbpf::TranslateError,
    },
}

/// Compiles `expression` with libpcap for Ethernet frames and for raw IP and
/// translates both to eBPF.
pub fn compile(expression: &str) -> Result<PacketFilter, FilterError> {
    let libpcap = pcap::Libpcap::get().map_err(|cause| FilterError::LibpcapMissing {
        expression: expression.into(),
        cause,
    })?;
    let syntax = |message: String| FilterError::Syntax {
        expression: expression.into(),
        message,
    };
    let untranslatable = |layer, cause| FilterError::Untranslatable {
        expression: expression.into(),
        layer,
        cause,
    };
    let l2_classic = libpcap
        .compile(expression, pcap::DLT_EN10MB)
        .map_err(syntax)?;
    let l2 = cbpf::translate(&l2_classic).map_err(|e| untranslatable("Ethernet frames", e))?;
    let (l3, l3_note) = match libpcap.compile(expression, pcap::DLT_RAW) {
        Ok(classic) => (
            cbpf::translate(&classic).map_err(|e| untranslatable("raw IP", e))?,
            None,
        ),
        // Valid on Ethernet but not on raw IP: it tests link-layer fields.
        Err(message) => (
            cbpf::reject_all(),
            Some(format!(
                "filter expression '{expression}' tests link-layer fields, so it matches only \
                 where the packet has an Ethernet header (libpcap on raw IP: {message})"
            )),
        ),
    };
    Ok(PacketFilter {
        expression: expression.into(),
        l2,
        l3,
        l3_note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_compiles_both_layers() {
        let f = compile("host 10.0.0.2 and icmp").unwrap();
        assert!(f.l2.len() > 10 && f.l3.len() > 10);
        assert!(f.l3_note.is_none());
        assert_eq!(f.expression, "host 10.0.0.2 and icmp");
    }

    #[test]
    fn filter_link_layer_only_expression_has_a_note_and_an_empty_l3() {
        for expression in ["arp", "ether host 00:11:22:33:44:55", "vlan 10 and ip"] {
            let f = compile(expression).unwrap();
            let note = f.l3_note.expect(expression);
            assert!(
                note.contains("link-layer") && !note.contains('\n'),
                "{note}"
            );
            assert_eq!(f.l3.len(), cbpf::reject_all().len());
        }
    }

    #[test]
    fn filter_syntax_error_names_expression_and_libpcap_message() {
        let err = compile("host and and").unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, FilterError::Syntax { .. }), "{text}");
        assert!(
            text.starts_with("invalid filter expression 'host and and': "),
            "{text}"
        );
        assert!(text.contains("syntax error"), "libpcap's own words: {text}");
    }

    #[test]
    fn filter_missing_libpcap_says_how_to_install_it() {
        let cause = pcap::load_first(&["libpcap-ipft-test-absent.so"])
            .err()
            .unwrap();
        assert!(
            cause.to_string().contains("libpcap-ipft-test-absent.so"),
            "{cause}"
        );
        let err = FilterError::LibpcapMissing {
            expression: "tcp".into(),
            cause,
        };
        assert_eq!(
            format!("{:#}", anyhow::Error::from(err)),
            "filter expression 'tcp' needs libpcap at run time: install it \
             (apt-get install libpcap0.8)"
        );
    }

    #[test]
    fn filter_protochain_is_refused_as_a_loop() {
        let err = compile("ip protochain 6").unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, FilterError::Untranslatable { .. }), "{text}");
        assert!(
            text.contains("'ip protochain 6'") && text.contains("backwards"),
            "{text}"
        );
    }
}
