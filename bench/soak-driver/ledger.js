'use strict';
// "Nothing lost": who was in which room when, what was sent there, what each
// member received. Times are this process's clock (performance.now()), which
// orders them against the server's single thread:
//   - a member joined before a send when its joined_room arrived before the
//     send was emitted;
//   - a member stayed past a send when it emitted its end-of-membership
//     request (leave_room, or get_room_users as a barrier before a
//     disconnect) after the send's ack arrived; the server answers that
//     request only after everything it queued to the member before it.
// Such a member must receive the message exactly once. A member that left
// (left_room) must receive nothing emitted after its left_room arrived, and
// nobody receives what was acked before it asked to join. In between
// (overlapping in time), a delivery may or may not happen, but at most once.
// Memberships are settled as they end, and messages no unsettled membership
// can still need are dropped, so an hour's run holds only its recent past.

class Ledger {
  constructor() {
    this.rooms = new Map(); // room -> {msgs: Map id -> msg, pendingEmits: Set of msg, members: Set of membership}
    this.pendingByKey = new Map(); // temporary key -> msg before its id is known
    this.totals = { sent: 0, failed: 0, expected: 0, delivered: 0, lost: 0, duplicated: 0, stray: 0, memberships: 0 };
    this.examples = []; // the first few problems, for the report
  }

  room(name) {
    let r = this.rooms.get(name);
    if (!r) { r = { msgs: new Map(), pending: new Set(), members: new Set() }; this.rooms.set(name, r); }
    return r;
  }

  note(text) { if (this.examples.length < 20) this.examples.push(text); }

  // A membership: begun when join_room is emitted.
  joinEmitted(client, room, at) {
    const m = { client, room, joinEmitAt: at, joinedAt: Infinity, endEmitAt: Infinity, endAt: Infinity,
      left: false, finished: false, got: new Map() };
    this.room(room).members.add(m);
    this.totals.memberships++;
    return m;
  }

  joined(m, at) { m.joinedAt = at; }

  // The end-of-membership request (leave_room or the barrier) was emitted, and answered.
  endEmitted(m, at) { m.endEmitAt = at; }
  ended(m, at, left) { m.endAt = at; m.left = left; }
  // No answer can come (the connection is gone without a barrier): nothing is owed to it after its join.
  abandoned(m) { if (m.endEmitAt === Infinity) m.endEmitAt = m.joinedAt; m.finished = true; }
  finished(m) { m.finished = true; }

  // A send (message or file) into a room.
  sendEmitted(sender, room, at) {
    const msg = { sender, room, emitAt: at, ackAt: Infinity, id: null };
    this.room(room).pending.add(msg);
    this.totals.sent++;
    return msg;
  }

  acked(msg, id, at) {
    const r = this.room(msg.room);
    r.pending.delete(msg);
    msg.ackAt = at;
    msg.id = id;
    r.msgs.set(id, msg);
  }

  sendFailed(msg) {
    this.room(msg.room).pending.delete(msg);
    this.totals.failed++;
  }

  delivered(m, id) { m.got.set(id, (m.got.get(id) || 0) + 1); }

  // Settles every finished membership that no unanswered send can still concern,
  // then drops messages that no unsettled membership can need. final: settle all.
  settle(now, final = false) {
    for (const [name, r] of this.rooms) {
      let oldestPending = Infinity;
      for (const msg of r.pending) oldestPending = Math.min(oldestPending, msg.emitAt);
      for (const m of r.members) {
        if (!final && (!m.finished || m.endEmitAt > oldestPending)) continue;
        this.settleOne(r, m);
        r.members.delete(m);
      }
      let keepFrom = now;
      for (const m of r.members) keepFrom = Math.min(keepFrom, m.joinEmitAt);
      for (const [id, msg] of r.msgs) if (msg.ackAt < keepFrom) r.msgs.delete(id);
      if (!r.members.size && !r.pending.size && !r.msgs.size) this.rooms.delete(name);
    }
  }

  settleOne(r, m) {
    const t = this.totals;
    for (const msg of r.msgs.values()) {
      if (msg.sender === m.client) continue;
      const n = m.got.get(msg.id) || 0;
      const present = m.joinedAt < msg.emitAt && msg.ackAt < m.endEmitAt;
      const absent = msg.ackAt < m.joinEmitAt || (m.left && msg.emitAt > m.endAt);
      if (present) {
        t.expected++;
        if (n === 0) { t.lost++; this.note(`lost: ${msg.id} in ${m.room} never reached ${m.client.name} (${m.client.kind})`); }
      }
      if (n > 0) t.delivered++;
      if (n > 1) { t.duplicated++; this.note(`duplicate: ${msg.id} reached ${m.client.name} ${n} times`); }
      if (n > 0 && absent) { t.stray++; this.note(`stray: ${msg.id} reached ${m.client.name}, not a member then`); }
    }
    for (const id of m.got.keys()) {
      if (!r.msgs.has(id)) {
        t.stray++;
        this.note(`stray: ${id} reached ${m.client.name} in ${m.room} but no acked send or a long-gone one`);
      }
    }
  }
}

module.exports = { Ledger };
