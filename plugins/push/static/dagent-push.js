// dagent-push.js: a small browser client of the dagent push gateway (no build step).
// It reconnects with exponential backoff and jitter, resubscribes, and recovers
// from the last sequence number it saw of each topic (docs/push.md).
//
//   const push = new DagentPush("ws://HOST:PORT/ws", {token: TOKEN});
//   push.subscribe("news.>", (msg) => console.log(msg.topic, msg.seq, msg.data));
//   push.publish("chat.lobby", "hello");
//   push.onstatus = (state, detail) => ...;   // "connecting", "connected", "closed"
(function (global) {
  "use strict";

  class DagentPush {
    constructor(url, options) {
      options = options || {};
      this.url = url;
      this.token = options.token || "";
      this.minDelay = options.minDelay || 250;      // ms
      this.maxDelay = options.maxDelay || 10000;    // ms
      this.subs = new Map();        // pattern -> {handler, seqs: {topic: seq}}
      this.epoch = null;
      this.attempt = 0;
      this.closed = false;
      this.onstatus = null;
      this.onerror = null;
      this._connect();
    }

    subscribe(pattern, handler) {
      this.subs.set(pattern, {handler: handler, seqs: {}});
      this._send({op: "sub", topic: pattern});
    }

    unsubscribe(pattern) {
      this.subs.delete(pattern);
      this._send({op: "unsub", topic: pattern});
    }

    publish(topic, data) {
      return this._send({op: "pub", topic: topic, data: data});
    }

    close() {
      this.closed = true;
      if (this.ws) this.ws.close(1000, "bye");
    }

    _status(state, detail) {
      if (this.onstatus) this.onstatus(state, detail);
    }

    _send(obj) {
      if (this.ws && this.ws.readyState === 1 && this.ready) {
        this.ws.send(JSON.stringify(obj));
        return true;
      }
      return false;
    }

    _connect() {
      const sep = this.url.indexOf("?") >= 0 ? "&" : "?";
      this.ready = false;
      this._status("connecting", this.attempt);
      const ws = new WebSocket(this.url + sep + "token=" + encodeURIComponent(this.token));
      this.ws = ws;
      ws.onmessage = (ev) => this._frame(JSON.parse(ev.data));
      ws.onclose = (ev) => {
        this.ready = false;
        this._status("closed", ev.code + " " + ev.reason);
        if (this.closed || ev.code === 4001) return;   // a refused token does not get better by retrying
        const ceiling = Math.min(this.maxDelay, this.minDelay * Math.pow(2, this.attempt++));
        setTimeout(() => this._connect(), ceiling / 2 + Math.random() * ceiling / 2);
      };
    }

    _frame(f) {
      switch (f.op) {
        case "connected":
          this.ready = true;
          this.attempt = 0;
          const sameEpoch = this.epoch === f.epoch;
          this.epoch = f.epoch;
          this._status("connected", f.sub);
          for (const [pattern, s] of this.subs) {
            const req = {op: "sub", topic: pattern};
            const topics = Object.keys(s.seqs);
            if (sameEpoch && topics.length) {
              req.since = pattern.indexOf("*") < 0 && pattern.indexOf(">") < 0
                ? {epoch: f.epoch, seq: s.seqs[pattern] || 0}
                : {epoch: f.epoch, seqs: s.seqs};
            } else {
              s.seqs = {};
            }
            this.ws.send(JSON.stringify(req));
          }
          break;
        case "subscribed": {
          const s = this.subs.get(f.topic);
          if (s && f.seq !== undefined && !(f.topic in s.seqs)) s.seqs[f.topic] = f.seq;
          break;
        }
        case "msg":
          for (const [pattern, s] of this.subs) {
            if (!DagentPush.matches(pattern, f.topic)) continue;
            s.seqs[f.topic] = f.seq;
            if (f.data === undefined && f.data_b64 !== undefined) f.data = atob(f.data_b64);
            s.handler(f);
          }
          break;
        case "error":
          if (this.onerror) this.onerror(f);
          break;
      }
    }

    static matches(pattern, topic) {
      const p = pattern.split("."), t = topic.split(".");
      for (let i = 0; i < p.length; i++) {
        if (p[i] === ">") return t.length > i;
        if (i >= t.length || (p[i] !== "*" && p[i] !== t[i])) return false;
      }
      return p.length === t.length;
    }
  }

  global.DagentPush = DagentPush;
})(typeof window !== "undefined" ? window : globalThis);
