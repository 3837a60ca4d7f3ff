import XCTest
@testable import DAgentMsgq
import DAgentRouting

/// A brother's channel is named as `hex` names it, whichever sender came last.
final class SenderNameTests: XCTestCase {
    func testNamesAreTheHexOfTheChannelAcrossSenderChanges() {
        var names = SenderName()
        for channel: UInt64 in [0x1f, 0x1f, 0xdead_beef, 0x1f, 0, UInt64.max, UInt64.max] {
            XCTAssertEqual(names.name(channel), hex(channel))
        }
    }
}
