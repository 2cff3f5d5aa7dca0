//! TEMPORARY (replaced when the filter branch is merged).
use super::PacketFilter;
pub fn splice(
    insns: &[libbpf_sys::bpf_insn],
    _filter: &PacketFilter,
) -> anyhow::Result<Vec<libbpf_sys::bpf_insn>> {
    Ok(insns.to_vec())
}
