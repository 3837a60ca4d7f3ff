// The entry point of `dagent-fuzz`: one executable, one target per run, picked by
// `DAGENT_FUZZ_TARGET` (scripts/fuzz sets it); the arguments are libFuzzer's. Built only with
// `DAGENT_FUZZ=1` (Package.swift). SwiftPM links an executable's `main` to `<module>_main`, so
// this defines `dagent_fuzz_main` and hands the process to libFuzzer's driver from there.
#if canImport(Glibc)
import Glibc
#endif

/// The target this process fuzzes, chosen once before libFuzzer starts.
nonisolated(unsafe) var selected: FuzzTarget?

public typealias FuzzArgv = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
public typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

/// libFuzzer's driver (compiler-rt, `-sanitize=fuzzer`): parses the flags, runs the corpus and the fuzzing loop.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<FuzzArgv>, _ callback: FuzzCallback) -> CInt

@_cdecl("dagent_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: FuzzArgv) -> CInt {
    let env = { (name: String) -> String? in getenv(name).map { String(cString: $0) } }
    if let dir = env("DAGENT_FUZZ_SEEDS") {
        return FuzzSeeds.write(to: dir) ? 0 : 1
    }
    let name = env("DAGENT_FUZZ_TARGET") ?? ""
    if name == "list" {
        for t in FuzzTargets.all { print("\(t.name)\t\(t.summary)") }
        return 0
    }
    guard let target = FuzzTargets.all.first(where: { $0.name == name }) else {
        let known = FuzzTargets.all.map(\.name).joined(separator: ", ")
        fputs("dagent-fuzz: DAGENT_FUZZ_TARGET=\(name.isEmpty ? "(unset)" : name) is not a target; one of: \(known)\n", stderr)
        return 2
    }
    selected = target
    var count = argc
    var args = argv
    return LLVMFuzzerRunDriver(&count, &args, fuzzTestOneInput)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    selected!.run(FuzzInput(UnsafeRawBufferPointer(start: data, count: size)))
    return 0
}
