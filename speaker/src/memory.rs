//! Handing freed memory back to the kernel.
#![allow(unsafe_code)]

/// Hands the heap's free pages back to the kernel (glibc's `malloc_trim`): reading a large
/// store leaves megabytes of freed, fragmented memory that would otherwise stay resident.
pub fn release_free_memory() {
    // SAFETY: malloc_trim only walks the allocator's own free lists; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}
