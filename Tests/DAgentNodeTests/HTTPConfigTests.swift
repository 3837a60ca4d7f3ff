import XCTest
@testable import DAgentNode

final class HTTPConfigTests: XCTestCase {
    func testHTTPOptions() throws {
        let c = try ConfigFile.parse(yaml: """
        name: a1
        listen: tcp://127.0.0.1:7001
        http: tcp://127.0.0.1:8080
        http_max_header_bytes: 4096
        http_max_body_bytes: 10
        http_max_connections: 5
        http_idle_timeout: 2.5
        http_handler_timeout: 1
        """)
        XCTAssertEqual(c.http, .tcp(host: "127.0.0.1", port: 8080))
        XCTAssertEqual(c.httpLimits.maxHeaderBytes, 4096)
        XCTAssertEqual(c.httpLimits.maxBodyBytes, 10)
        XCTAssertEqual(c.httpLimits.maxConnections, 5)
        XCTAssertEqual(c.httpLimits.idleTimeout, 2.5)
        XCTAssertEqual(c.httpLimits.handlerTimeout, 1)
        XCTAssertNoThrow(try c.validate())
    }

    func testBadHTTPOptionsNameTheOption() throws {
        XCTAssertThrowsError(try ConfigFile.parse(yaml: "name: a\nhttp: msgq:///x")) { XCTAssertTrue("\($0)".contains("not a tcp://HOST:PORT"), "\($0)") }
        XCTAssertThrowsError(try ConfigFile.parse(yaml: "name: a\nhttp: [1]")) { XCTAssertTrue("\($0)".contains("http must be a string"), "\($0)") }
        XCTAssertThrowsError(try ConfigFile.parse(yaml: "name: a\nhttp_max_body_bytes: lots")) { XCTAssertTrue("\($0)".contains("http_max_body_bytes must be an integer"), "\($0)") }
        var c = NodeConfig(name: "a")
        c.listen = [.tcp(host: "127.0.0.1", port: 0)]
        c.httpLimits.maxHeaderBytes = 100
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("http_max_header_bytes must be in 1024...81920"), "\($0)") }
        c.httpLimits.maxHeaderBytes = 200_000
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("81920"), "\($0)") }
    }
}
