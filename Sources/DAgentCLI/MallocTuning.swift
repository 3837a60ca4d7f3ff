#if canImport(Glibc)
import Glibc
#endif

/// Keeps glibc's malloc from handing freed buffers back to the kernel after
/// every burst. Link buffers of 64 KiB to 1 MiB are allocated and freed at
/// the stream's rate (socket reads, batches, TLS records); with the default
/// thresholds the large ones are mmap'd or trimmed off the heap on free, so
/// the next one page-faults its memory in again, zeroed (`clear_page`).
/// Called first thing by the executables; a process that sets
/// `GLIBC_TUNABLES` or `MALLOC_TRIM_THRESHOLD_`/`MALLOC_MMAP_THRESHOLD_`
/// keeps its own settings.
package enum MallocTuning {
    /// Allocations below this come from the heap (glibc's default starts at 128 KiB and adapts).
    static let mmapThreshold: Int32 = 32 << 20
    /// Free memory at the top of a heap kept for reuse before it is returned (default 128 KiB).
    static let trimThreshold: Int32 = 64 << 20

    package static func apply() {
        #if canImport(Glibc)
        let env = ["GLIBC_TUNABLES", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"]
        guard !env.contains(where: { getenv($0) != nil }) else { return }
        // mallopt is declared in <malloc.h>, which the Glibc module does not import.
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
        _ = mallopt(-3, mmapThreshold)   // M_MMAP_THRESHOLD (also stops the threshold adapting)
        _ = mallopt(-1, trimThreshold)   // M_TRIM_THRESHOLD
        #endif
    }
}
