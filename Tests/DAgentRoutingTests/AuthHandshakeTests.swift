import DAgentWire
import XCTest
@testable import DAgentRouting

/// The cluster secret handshake as a pure state machine: seeded nonces, no I/O.
final class AuthHandshakeTests: XCTestCase {
    let secret = "correct horse battery staple"
    func nonce(_ b: UInt8) -> [UInt8] { [UInt8](repeating: b, count: AuthHandshake.nonceBytes) }

    /// Runs dialer and listener against each other; returns every frame that crossed.
    func run(dialer: inout AuthHandshake, listener: inout AuthHandshake) -> (frames: [Dagent_Frame.OneOf_Body], d: Bool, l: Bool) {
        var frames: [Dagent_Frame.OneOf_Body] = [.authHello(dialer.hello())]
        guard case .send(let challenge) = listener.receive(frames[0]) else { return (frames, false, false) }
        frames.append(challenge)
        guard case .authenticated(let proof?) = dialer.receive(challenge) else { return (frames, false, false) }
        frames.append(proof)
        guard case .authenticated(nil) = listener.receive(proof) else { return (frames, true, false) }
        return (frames, true, true)
    }

    func testBothSidesProveTheSecretAndItNeverCrossesTheWire() throws {
        var d = AuthHandshake(role: .dialer, secret: secret, nonce: nonce(1))
        var l = AuthHandshake(role: .listener, secret: secret, nonce: nonce(2))
        let (frames, dOK, lOK) = run(dialer: &d, listener: &l)
        XCTAssertTrue(dOK && lOK)
        XCTAssertTrue(d.isAuthenticated && l.isAuthenticated)
        XCTAssertEqual(frames.count, 3)
        let bytes = try frames.flatMap { body -> [UInt8] in
            var f = Dagent_Frame()
            f.body = body
            return try f.serializedBytes()
        }
        XCTAssertNil(find(Array(secret.utf8), in: bytes), "the secret is on the wire")
        XCTAssertNil(find(Array(secret.utf8.prefix(8)), in: bytes), "part of the secret is on the wire")
    }

    func testTheProofsDependOnBothNoncesAndTheRole() {
        var d1 = AuthHandshake(role: .dialer, secret: secret, nonce: nonce(1))
        var l1 = AuthHandshake(role: .listener, secret: secret, nonce: nonce(2))
        var d2 = AuthHandshake(role: .dialer, secret: secret, nonce: nonce(1))
        var l2 = AuthHandshake(role: .listener, secret: secret, nonce: nonce(3))
        let a = run(dialer: &d1, listener: &l1).frames, b = run(dialer: &d2, listener: &l2).frames
        guard case .authChallenge(let c1) = a[1], case .authChallenge(let c2) = b[1],
              case .authProof(let p1) = a[2], case .authProof(let p2) = b[2] else { return XCTFail() }
        XCTAssertNotEqual(c1.proofBytes, c2.proofBytes)
        XCTAssertNotEqual(p1.proofBytes, p2.proofBytes)
        XCTAssertNotEqual(c1.proofBytes, p1.proofBytes, "the listener's proof is not valid as the dialer's")
        XCTAssertEqual(p1.proofBytes.count, 32)
    }

    func testAWrongSecretIsRefusedByTheListener() {
        var d = AuthHandshake(role: .dialer, secret: "another secret of some length", nonce: nonce(1))
        var l = AuthHandshake(role: .listener, secret: secret, nonce: nonce(2))
        guard case .send(let challenge) = l.receive(.authHello(d.hello())) else { return XCTFail() }
        // The dialer sees the listener cannot prove *its* secret and stops first.
        guard case .failed(let why) = d.receive(challenge) else { return XCTFail() }
        XCTAssertTrue(why.contains("did not prove it knows the cluster secret"), why)
        XCTAssertFalse(d.isAuthenticated)
    }

    func testAFakeListenerIsRefusedByTheDialer() {
        var d = AuthHandshake(role: .dialer, secret: secret, nonce: nonce(1))
        var fake = Dagent_AuthChallenge()
        fake.nonceBytes = nonce(9)
        fake.proofBytes = [UInt8](repeating: 0xAB, count: 32)
        guard case .failed(let why) = d.receive(.authChallenge(fake)) else { return XCTFail() }
        XCTAssertTrue(why.contains("did not prove"), why)
    }

    func testAListenerWithoutASecretIsRefusedByADialerThatHasOne() {
        var d = AuthHandshake(role: .dialer, secret: secret, nonce: nonce(1))
        guard case .failed(let why) = d.receive(.authChallenge(AuthHandshake.noSecretChallenge(nonce: nonce(2)))) else { return XCTFail() }
        XCTAssertTrue(why.contains("has no cluster secret configured"), why)
    }

    func testAWrongProofIsRefusedByTheListener() {
        var l = AuthHandshake(role: .listener, secret: secret, nonce: nonce(2))
        var hello = Dagent_AuthHello()
        hello.nonceBytes = nonce(1)
        hello.version = 1
        guard case .send = l.receive(.authHello(hello)) else { return XCTFail() }
        var proof = Dagent_AuthProof()
        proof.proofBytes = [UInt8](repeating: 0, count: 32)
        guard case .failed(let why) = l.receive(.authProof(proof)) else { return XCTFail() }
        XCTAssertTrue(why.contains("wrong proof"), why)
        XCTAssertFalse(l.isAuthenticated)
    }

    /// A recorded handshake replayed against a new connection: the listener's
    /// nonce is new, so the recorded proof is wrong for it.
    func testARecordedHandshakeCannotBeReplayed() {
        var d = AuthHandshake(role: .dialer, secret: secret, nonce: nonce(1))
        var l = AuthHandshake(role: .listener, secret: secret, nonce: nonce(2))
        let recorded = run(dialer: &d, listener: &l).frames
        var l2 = AuthHandshake(role: .listener, secret: secret, nonce: nonce(3))
        guard case .send = l2.receive(recorded[0]) else { return XCTFail() }
        guard case .failed = l2.receive(recorded[2]) else { return XCTFail("a replayed proof was accepted") }
    }

    /// The listener's own proof sent back to it as a dialer proof (a reflection) fails.
    func testAReflectedProofFails() {
        var l = AuthHandshake(role: .listener, secret: secret, nonce: nonce(2))
        var hello = Dagent_AuthHello()
        hello.nonceBytes = nonce(1)
        hello.version = 1
        guard case .send(.authChallenge(let c)) = l.receive(.authHello(hello)) else { return XCTFail() }
        var proof = Dagent_AuthProof()
        proof.proofBytes = c.proofBytes
        guard case .failed = l.receive(.authProof(proof)) else { return XCTFail("a reflected proof was accepted") }
        // And a hello that echoes the listener's own nonce is refused outright.
        var l2 = AuthHandshake(role: .listener, secret: secret, nonce: nonce(2))
        hello.nonceBytes = nonce(2)
        guard case .failed(let why) = l2.receive(.authHello(hello)) else { return XCTFail() }
        XCTAssertTrue(why.contains("own nonce"), why)
    }

    func testMalformedAndUnexpectedFramesFailWithAReason() {
        var l = AuthHandshake(role: .listener, secret: secret, nonce: nonce(2))
        var short = Dagent_AuthHello()
        short.nonceBytes = [1, 2, 3]
        short.version = 1
        guard case .failed(let why1) = l.receive(.authHello(short)) else { return XCTFail() }
        XCTAssertTrue(why1.contains("nonce of 3 bytes (must be 32)"), why1)
        var l2 = AuthHandshake(role: .listener, secret: secret, nonce: nonce(2))
        var v2 = Dagent_AuthHello()
        v2.nonceBytes = nonce(1)
        v2.version = 7
        guard case .failed(let why2) = l2.receive(.authHello(v2)) else { return XCTFail() }
        XCTAssertTrue(why2.contains("version 7"), why2)
        var l3 = AuthHandshake(role: .listener, secret: secret, nonce: nonce(2))
        guard case .failed(let why3) = l3.receive(.heartbeat(Dagent_Heartbeat())) else { return XCTFail() }
        XCTAssertTrue(why3.contains("unexpected"), why3)
        guard case .failed = l3.receive(.authHello(v2)) else { return XCTFail("a failed handshake must stay failed") }
        var d = AuthHandshake(role: .dialer, secret: secret, nonce: nonce(1))
        guard case .failed = d.receive(nil) else { return XCTFail() }
        var d2 = AuthHandshake(role: .dialer, secret: secret, nonce: nonce(1))
        var c = Dagent_AuthChallenge()
        c.nonceBytes = nonce(1)
        c.proofBytes = [UInt8](repeating: 1, count: 32)
        guard case .failed(let why4) = d2.receive(.authChallenge(c)) else { return XCTFail() }
        XCTAssertTrue(why4.contains("own nonce"), why4)
    }

    func testRandomNoncesAreFresh() {
        let a = AuthHandshake.randomNonce(), b = AuthHandshake.randomNonce()
        XCTAssertEqual(a.count, 32)
        XCTAssertNotEqual(a, b)
    }

    func testSessionSecrets() {
        let s = SessionSecret.random()
        XCTAssertEqual(s.bytes.count, 16)
        XCTAssertEqual(s.hex.count, 32)
        XCTAssertEqual(SessionSecret(hex: s.hex), s)
        XCTAssertEqual(SessionSecret(hex: s.hex.uppercased()), s)
        XCTAssertNil(SessionSecret(hex: "00ff"))
        XCTAssertNil(SessionSecret(hex: String(repeating: "g", count: 32)))
        XCTAssertNil(SessionSecret(bytes: [1, 2, 3]))
        XCTAssertNotEqual(s.verifier, 0)
        XCTAssertEqual(s.verifier, SessionSecret(bytes: s.bytes)!.verifier)
        XCTAssertNotEqual(s.verifier, SessionSecret.random().verifier)
        XCTAssertNotEqual(SessionSecret.random(), SessionSecret.random())
    }

    func find(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard !needle.isEmpty, hay.count >= needle.count else { return nil }
        for i in 0...(hay.count - needle.count) where Array(hay[i..<i + needle.count]) == needle { return i }
        return nil
    }
}
