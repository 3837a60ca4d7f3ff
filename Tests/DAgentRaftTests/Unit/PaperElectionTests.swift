@testable import DAgentRaft
import XCTest
@testable import DAgentRaftStorage
import DAgentTestSupport

/// Election rules from the Raft paper (§5.2, §5.4.1) plus pre-vote and leases.
final class PaperElectionTests: XCTestCase {
    func testFollowerStartsElectionAfterRandomizedTimeout() throws {
        let n = try makeNode(1, voters: [1, 2, 3], terms: [1, 1])
        var ticks = 0
        while n.role == .follower && ticks < 100 {
            n.tick()
            ticks += 1
        }
        XCTAssertEqual(n.role, .candidate)
        XCTAssertGreaterThanOrEqual(ticks, 10)
        XCTAssertLessThan(ticks, 20)
        XCTAssertEqual(n.term, 2)
        XCTAssertEqual(n.vote, 1, "a candidate votes for itself")
        let reqs = n.takeMessages()
        XCTAssertEqual(reqs.map(\.to).sorted(), [2, 3])
        for m in reqs {
            XCTAssertEqual(m.type, .vote)
            XCTAssertEqual(m.term, 2)
            XCTAssertEqual(m.index, 2)
            XCTAssertEqual(m.logTerm, 1)
        }
    }

    func testRandomizedTimeoutsDifferAcrossSeeds() throws {
        var seen = Set<Int>()
        for id in 1...20 {
            let n = try makeNode(NodeID(id), voters: [NodeID(id), 100])
            seen.insert(n.randomizedElectionTimeout)
            XCTAssertTrue((10..<20).contains(n.randomizedElectionTimeout))
        }
        XCTAssertGreaterThan(seen.count, 3)
    }

    func testCandidateWinsWithMajorityAndLosesOnMajorityRejection() throws {
        let n = try makeNode(1, voters: [1, 2, 3, 4, 5])
        n.campaign()
        _ = n.takeMessages()
        n.step(Message(type: .voteResponse, from: 2, to: 1, term: 1))
        XCTAssertEqual(n.role, .candidate, "2 of 5 is not a majority")
        n.step(Message(type: .voteResponse, from: 2, to: 1, term: 1))
        XCTAssertEqual(n.role, .candidate, "duplicate votes do not count twice")
        n.step(Message(type: .voteResponse, from: 3, to: 1, term: 1))
        XCTAssertEqual(n.role, .leader)

        let m = try makeNode(1, voters: [1, 2, 3, 4, 5])
        m.campaign()
        for peer: NodeID in [2, 3] {
            m.step(Message(type: .voteResponse, from: peer, to: 1, term: 1, reject: true))
        }
        XCTAssertEqual(m.role, .candidate)
        m.step(Message(type: .voteResponse, from: 4, to: 1, term: 1, reject: true))
        XCTAssertEqual(m.role, .follower, "3 of 5 rejected: the election is lost")
        XCTAssertEqual(m.term, 1)
    }

    func testVoteGrantedAtMostOncePerTerm() throws {
        let n = try makeNode(1, voters: [1, 2, 3])
        n.step(Message(type: .vote, from: 2, to: 1, term: 5))
        XCTAssertEqual(n.takeMessages().map(\.reject), [false])
        XCTAssertEqual(n.vote, 2)
        XCTAssertEqual(n.term, 5)
        n.step(Message(type: .vote, from: 3, to: 1, term: 5))
        let r = n.takeMessages()
        XCTAssertEqual(r.map(\.reject), [true], "already voted for 2 in term 5")
        XCTAssertEqual(r.first?.term, 5)
        n.step(Message(type: .vote, from: 2, to: 1, term: 5))
        XCTAssertEqual(n.takeMessages().map(\.reject), [false], "re-granting the same candidate is fine")
        n.step(Message(type: .vote, from: 3, to: 1, term: 6))
        XCTAssertEqual(n.takeMessages().map(\.reject), [false], "a new term allows a new vote")
        XCTAssertEqual(n.vote, 3)
    }

    /// §5.4.1: grant only if the candidate's log is at least as up to date
    /// (higher last term, or same last term and at least as long).
    func testVoteRequiresUpToDateLog() throws {
        // Voter log: terms [1, 1, 2] -> last index 3, last term 2.
        let cases: [(index: UInt64, logTerm: UInt64, granted: Bool)] = [
            (3, 2, true), (4, 2, true), (2, 2, false), (10, 1, false), (1, 3, true), (0, 0, false),
        ]
        for c in cases {
            let n = try makeNode(1, voters: [1, 2, 3], terms: [1, 1, 2])
            n.step(Message(type: .vote, from: 2, to: 1, term: 3, logTerm: c.logTerm, index: c.index))
            let resp = n.takeMessages()
            XCTAssertEqual(resp.count, 1)
            XCTAssertEqual(resp.first?.reject, !c.granted, "candidate last=(\(c.index), t\(c.logTerm))")
            XCTAssertEqual(n.vote, c.granted ? 2 : 0)
            XCTAssertEqual(n.term, 3, "the term is bumped either way")
        }
    }

    func testHigherTermTurnsAnyRoleIntoFollower() throws {
        for start in [RaftRole.follower, .candidate, .leader] {
            for type in [MessageType.append, .heartbeat, .voteResponse, .appendResponse] {
                let n = try makeNode(1, voters: [1, 2, 3], terms: [1])
                if start == .candidate { n.campaign() }
                if start == .leader { n.electSelf() }
                XCTAssertEqual(n.role, start)
                _ = n.takeMessages()
                n.step(Message(type: type, from: 2, to: 1, term: 9, logTerm: 1, index: 1))
                XCTAssertEqual(n.role, .follower, "\(start) on \(type)")
                XCTAssertEqual(n.term, 9)
                XCTAssertEqual(n.vote, 0, "the vote is reset with the new term")
                let expectLeader: NodeID = (type == .append || type == .heartbeat) ? 2 : 0
                XCTAssertEqual(n.leader, expectLeader)
            }
        }
    }

    func testStaleTermMessagesAreIgnored() throws {
        let n = try makeNode(1, voters: [1, 2, 3], terms: [1, 3], hardTerm: 3)
        n.step(Message(type: .append, from: 2, to: 1, term: 2, logTerm: 1, index: 1,
                       entries: [Entry(term: 2, index: 2)], commit: 2))
        XCTAssertEqual(n.term, 3)
        XCTAssertEqual(n.lastIndex, 2)
        XCTAssertEqual(n.logTerm(at: 2), 3, "stale leader's entries are not accepted")
        XCTAssertEqual(n.commitIndex, 0)
        XCTAssertTrue(n.takeMessages().isEmpty, "without pre-vote/check-quorum a stale append gets no answer")

        let q = try makeNode(1, voters: [1, 2, 3], terms: [1, 3], hardTerm: 3, checkQuorum: true)
        q.step(Message(type: .heartbeat, from: 2, to: 1, term: 2))
        let r = q.takeMessages()
        XCTAssertEqual(r.map(\.type), [.appendResponse], "with check-quorum the stale leader learns our term")
        XCTAssertEqual(r.first?.term, 3)
    }

    func testCandidateStepsDownOnAppendFromLeaderOfSameTerm() throws {
        let n = try makeNode(1, voters: [1, 2, 3])
        n.campaign()
        XCTAssertEqual(n.role, .candidate)
        n.step(Message(type: .append, from: 2, to: 1, term: n.term))
        XCTAssertEqual(n.role, .follower)
        XCTAssertEqual(n.leader, 2)
    }

    func testPreVoteDoesNotChangeTermUntilItWins() throws {
        let n = try makeNode(1, voters: [1, 2, 3], terms: [1], preVote: true)
        n.campaign()
        XCTAssertEqual(n.role, .preCandidate)
        XCTAssertEqual(n.term, 1)
        XCTAssertEqual(n.vote, 0)
        let reqs = n.takeMessages()
        XCTAssertEqual(reqs.map(\.type), [.preVote, .preVote])
        XCTAssertEqual(reqs.map(\.term), [2, 2], "pre-votes ask about the next term")
        // A granting voter answers with the future term; that does not bump our term.
        n.step(Message(type: .preVoteResponse, from: 2, to: 1, term: 2))
        XCTAssertEqual(n.role, .candidate, "pre-vote won: now a real election")
        XCTAssertEqual(n.term, 2)
        XCTAssertEqual(n.takeMessages().map(\.type), [.vote, .vote])
    }

    func testPreVoteVoterKeepsItsTermAndVote() throws {
        let n = try makeNode(1, voters: [1, 2, 3], terms: [1], preVote: true)
        n.step(Message(type: .preVote, from: 2, to: 1, term: 5, logTerm: 1, index: 1))
        XCTAssertEqual(n.takeMessages().map(\.reject), [false])
        XCTAssertEqual(n.term, 1, "a pre-vote never changes the voter's term")
        XCTAssertEqual(n.vote, 0)
    }

    func testLeaderLeaseIgnoresDisruptiveVotes() throws {
        let n = try makeNode(1, voters: [1, 2, 3], terms: [1], checkQuorum: true)
        n.step(Message(type: .heartbeat, from: 2, to: 1, term: 1))
        _ = n.takeMessages()
        n.step(Message(type: .vote, from: 3, to: 1, term: 2, logTerm: 1, index: 5))
        XCTAssertEqual(n.term, 1, "inside the lease the vote is ignored without bumping the term")
        XCTAssertTrue(n.takeMessages().isEmpty)
        // A transfer-forced campaign bypasses the lease.
        n.step(Message(type: .vote, from: 3, to: 1, term: 2, logTerm: 1, index: 5, context: campaignTransferContext))
        XCTAssertEqual(n.term, 2)
        XCTAssertEqual(n.takeMessages().map(\.reject), [false])
        // After an election timeout without hearing from the leader the lease is over.
        let m = try makeNode(1, voters: [1, 2, 3], terms: [1], checkQuorum: true)
        m.step(Message(type: .heartbeat, from: 2, to: 1, term: 1))
        m.setElectionTimeoutForTesting(100)
        for _ in 0..<10 { m.tick() }
        m.step(Message(type: .vote, from: 3, to: 1, term: 2, logTerm: 1, index: 5))
        XCTAssertEqual(m.term, 2)
    }

    func testNonVoterNeverCampaigns() throws {
        let n = try makeNode(4, voters: [1, 2, 3])
        for _ in 0..<100 { n.tick() }
        n.campaign()
        XCTAssertEqual(n.role, .follower)
        XCTAssertTrue(n.takeMessages().isEmpty)
    }

    func testSingleNodeElectsItselfAndCommits() throws {
        let n = try makeNode(1, voters: [1])
        n.campaign()
        XCTAssertEqual(n.role, .leader)
        XCTAssertEqual(n.commitIndex, 1, "the no-op commits immediately")
        try n.propose([42])
        XCTAssertEqual(n.commitIndex, 2)
        let rd = try n.persistAll()
        XCTAssertEqual(rd.committedEntries.map(\.index), [1, 2])
        XCTAssertEqual(rd.committedEntries.map(\.type), [.noop, .normal])
    }
}
