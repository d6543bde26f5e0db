"""Reading what quickfix's own FileStore wrote, including the torn tails a killed process leaves behind."""

from __future__ import annotations

from pathlib import Path

import quickfix as fix

from gateway.fix.filestore import StoredMessages

SID = fix.SessionID("FIX.4.4", "SORGW", "OMS")


def message(seq: int, text: str = "filled") -> str:
    msg = fix.Message()
    msg.getHeader().setField(fix.BeginString("FIX.4.4"))
    msg.getHeader().setField(fix.MsgType("8"))
    msg.getHeader().setField(34, str(seq))
    msg.setField(58, text)
    return msg.toString()


def store_with(path: Path, count: int) -> tuple[fix.FileStore, Path]:
    """A real quickfix FileStore holding messages 1..count, each stored then counted as quickfix's persist() does."""
    store = fix.FileStore(fix.UtcTimeStamp(), str(path), SID)
    for seq in range(1, count + 1):
        store.set(seq, message(seq))
        store.incrNextSenderMsgSeqNum()
    return store, path / "FIX.4.4-SORGW-OMS"


def read(prefix: Path, next_sender: int) -> dict[int, bytes]:
    stored = StoredMessages(prefix, next_sender)
    try:
        return {seq: stored[seq] for seq in stored if stored.get(seq) is not None}
    finally:
        stored.close()


def test_every_message_quickfix_stored_reads_back_byte_for_byte(tmp_path):
    store, prefix = store_with(tmp_path, 3)
    assert store.getNextSenderMsgSeqNum() == 4
    assert read(prefix, 4) == {seq: message(seq).encode() for seq in (1, 2, 3)}


def test_a_message_stored_but_not_yet_counted_was_never_sent_and_is_left_out(tmp_path):
    """quickfix stores, then raises the next sender number, then sends: a death in between sent nothing, and the
    number goes to other content after the restart (the later entry for a number wins, as in quickfix)."""
    store, prefix = store_with(tmp_path, 2)
    store.set(3, message(3, "never sent"))
    assert read(prefix, 3) == {1: message(1).encode(), 2: message(2).encode()}
    store.set(3, message(3, "sent after the restart"))
    store.incrNextSenderMsgSeqNum()
    assert read(prefix, 4)[3] == message(3, "sent after the restart").encode()


def test_a_torn_header_entry_is_skipped_and_the_rest_still_read(tmp_path):
    _, prefix = store_with(tmp_path, 3)
    header = Path(f"{prefix}.header")
    whole = header.read_bytes()
    for cut in range(len(whole) - len(whole.split(b" ")[-2]) - 1, len(whole)):
        header.write_bytes(whole[:cut])  # every cut inside the last entry, its trailing space included
        assert read(prefix, 4) == {1: message(1).encode(), 2: message(2).encode()}, cut


def test_a_header_entry_whose_body_bytes_are_short_or_damaged_is_no_message(tmp_path):
    _, prefix = store_with(tmp_path, 3)
    body = Path(f"{prefix}.body")
    whole = body.read_bytes()
    body.write_bytes(whole[:-1])  # the last body one byte short
    assert sorted(read(prefix, 4)) == [1, 2]
    body.write_bytes(whole[:-4] + b"999\x01")  # complete, but its CheckSum disagrees
    assert sorted(read(prefix, 4)) == [1, 2]
    body.write_bytes(whole)
    assert sorted(read(prefix, 4)) == [1, 2, 3]


def test_body_bytes_with_no_header_entry_are_not_a_message(tmp_path):
    _, prefix = store_with(tmp_path, 2)
    with open(f"{prefix}.body", "ab") as body:
        body.write(message(3).encode())  # the body is flushed before the header: the process died in between
    assert sorted(read(prefix, 4)) == [1, 2]


def test_a_header_entry_pointing_at_another_message_is_no_message(tmp_path):
    _, prefix = store_with(tmp_path, 2)
    with open(f"{prefix}.header", "ab") as header:
        header.write(b"3,0,%d " % len(message(1)))  # message 1's bytes: not MsgSeqNum 3
    assert sorted(read(prefix, 4)) == [1, 2]


def test_bytes_that_are_not_utf8_come_back_exactly(tmp_path):
    """quickfix's Python binding cannot store such bytes itself, so they are appended as FileStore::set does."""
    _, prefix = store_with(tmp_path, 1)
    text = message(2, "caf_").encode().replace(b"caf_", b"caf\xe9")
    length = text.index(b"\x0110=") + 1
    checksum = b"%03d" % (sum(text[:length]) % 256)
    text = text[:length] + b"10=" + checksum + b"\x01"
    offset = Path(f"{prefix}.body").stat().st_size
    with open(f"{prefix}.body", "ab") as body:
        body.write(text)
    with open(f"{prefix}.header", "ab") as header:
        header.write(b"2,%d,%d " % (offset, len(text)))
    assert read(prefix, 3)[2] == text


def test_a_store_never_written_holds_nothing(tmp_path):
    assert read(tmp_path / "FIX.4.4-SORGW-OMS", 1) == {}
