//! `--gen`: the extension header and a complete skeleton extension.

use crate::cli::GenTarget;

pub const HEADER: &str = include_str!("../bpf/ext/ipft.h");
const SKELETON: &str = include_str!("../bpf/ext/skeleton.c");

/// The text `--gen target` prints: the skeleton embeds the header so that
/// it compiles on its own, like ipftrace2's.
pub fn generate(target: GenTarget) -> String {
    match target {
        GenTarget::BpfModuleHeader => HEADER.to_string(),
        GenTarget::BpfModuleSkeleton => SKELETON.replace("#include \"ipft.h\"\n", HEADER),
    }
}
