//! Giving freed memory back to the operating system after documents unload.

/// Returns freed heap memory to the OS. glibc's allocator keeps freed memory
/// mapped for reuse, so without this an unloaded document's memory would
/// stay in the process's RSS (reused by the next documents, but never
/// returned). Runs on a blocking thread: trimming a large heap takes a few
/// milliseconds.
pub fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    actix_web::rt::task::spawn_blocking(|| {
        // SAFETY: malloc_trim only walks and trims the allocator's own
        // arenas under their locks; it has no preconditions.
        unsafe {
            libc::malloc_trim(0);
        }
    });
}
