//! A component's declared minimum linear memory, read from its binary.
//!
//! Every core module inside a component declares how many pages each of its
//! memories starts with; CPython-based components start at ~13 MiB. Under a
//! smaller `--plugin-memory` wasmtime refuses the component with a message
//! about pooling-allocator slots; reading the minimum first lets the host say
//! what is wrong in the user's terms (both numbers), before compiling.

use wasmparser::{Parser, Payload};

/// The largest initial size of any memory the component (or a module nested
/// in it) defines, in bytes; `None` if the binary cannot be read (compiling
/// it then reports why).
pub fn declared_minimum(wasm: &[u8]) -> Option<u64> {
    let mut largest = 0u64;
    for payload in Parser::new(0).parse_all(wasm) {
        if let Payload::MemorySection(memories) = payload.ok()? {
            for memory in memories {
                let memory = memory.ok()?;
                let page = 1u64 << memory.page_size_log2.unwrap_or(16);
                largest = largest.max(memory.initial.saturating_mul(page));
            }
        }
    }
    Some(largest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_initial_pages_of_a_module() {
        // (module (memory 3)) and (module (memory 0) (memory 5)) by hand:
        // header, then a memory section (id 5) of N limits (flag 0, initial).
        let one = b"\0asm\x01\0\0\0\x05\x03\x01\x00\x03";
        assert_eq!(declared_minimum(one), Some(3 * 65536));
        let none = b"\0asm\x01\0\0\0";
        assert_eq!(declared_minimum(none), Some(0));
        assert_eq!(declared_minimum(b"not wasm"), None);
    }
}
