import DAgentPush

/// DAgentPush: the JSON text frames a browser sends to the push gateway.
enum PushTargets {
    static let maxTopicBytes = 64

    static let push = FuzzTarget(
        name: "push-json",
        summary: "browser push frames (PushRequest.parse): a request whose topic passes the rules, or an error frame",
        seeds: {
            [#"{"op":"sub","topic":"news.>","id":1}"#, #"{"op":"sub","topic":"a.*","since":{"epoch":"e","seqs":{"a.b":3}}}"#,
             #"{"op":"unsub","topic":"news.>","id":"x"}"#, #"{"op":"pub","topic":"chat.room1","data":{"text":"hi"}}"#,
             #"{"op":"pub","topic":"t","data_b64":"aGk="}"#, #"{"op":"sub","topic":"t","since":{"epoch":"e","seq":7}}"#]
                .enumerated().map { ("frame-\($0.offset)", Array($0.element.utf8)) }
        },
        run: { input in
            switch PushRequest.parse(input.bytes, maxTopicBytes: maxTopicBytes) {
            case .failure(let e):
                _ = PushFrames.error(e)
            case .success(.sub(_, let pattern, _)), .success(.unsub(_, let pattern)):
                FuzzCheck.require(PushTopic.problem(pattern: pattern, maxBytes: maxTopicBytes) == nil, "accepted a bad pattern \(pattern)")
                _ = PushFrames.subscribed(pattern: pattern, epoch: "e", recovered: false, seq: nil, replayed: 0, ref: nil)
            case .success(.pub(let ref, let topic, let data)):
                FuzzCheck.require(PushTopic.problem(topic: topic, maxBytes: maxTopicBytes) == nil, "accepted a bad topic \(topic)")
                _ = PushFrames.msg(topic: topic, seq: 1, payload: data)
                _ = PushFrames.published(topic: topic, ref: ref)
            }
        })
}
