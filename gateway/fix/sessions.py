"""quickfix session settings built from our config, and the engines (acceptor/initiator) around them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import quickfix as fix

from gateway.config import FixConfig, Schedule
from gateway.fix import specs
from gateway.fix.connect_watch import ConnectWatch

LOGOUT_TEXT = "shutting down"
MSG_TYPE, TEST_REQ_ID = 35, 112
LOGOUT_TEST_REQ_ID = "logout"  # names log_out's TestRequest (quickfix's own say TEST)


@dataclass(frozen=True, slots=True)
class SessionSpec:
    """One FIX session as quickfix needs it, whichever side of the gateway it is on."""

    begin_string: str
    sender: str
    target: str
    host: str
    port: int
    heartbeat_interval: int | None = None  # None: the engine-wide setting
    start_time: str | None = None  # schedule, UTC; None: always on
    end_time: str | None = None
    start_day: str | None = None  # weekly schedule (a day name, UTC); None: daily
    end_day: str | None = None
    logon_timeout: int | None = None  # seconds; None: quickfix's default
    settings: tuple[tuple[str, str], ...] = ()  # any other quickfix session setting, passed through
    reset_on_logon: bool | None = None  # None: reset when the store is memory, persist when it is a file
    dictionary: Path | None = None  # a counterparty's own dictionary; None: the standard one


@dataclass(frozen=True, slots=True)
class StoreState:
    """What quickfix's message store holds for one session, read before the session starts."""

    next_sender: int  # the MsgSeqNum the next message we send will carry
    next_target: int
    created: str | None  # when the file store was created or last reset; None without a file store
    persistent: bool  # sequence numbers and sent messages survive a restart (file store, kept, never reset by a logon,
    # logout or disconnect)

    def as_dict(self) -> dict:
        return {
            "next_sender": self.next_sender,
            "next_target": self.next_target,
            "created": self.created,
            "persistent": self.persistent,
        }


def scheduled(schedule: Schedule | None, logon_timeout: int | None, settings: dict[str, str]) -> dict:
    """SessionSpec keywords for a configured session's schedule (in UTC as of now), logon timeout and pass-through."""
    times = schedule.in_utc(datetime.now(timezone.utc)) if schedule else (None,) * 4
    return {
        **dict(zip(("start_time", "end_time", "start_day", "end_day"), times)),
        "logon_timeout": logon_timeout,
        "settings": tuple(sorted(settings.items())),
    }


def session_id(spec: SessionSpec) -> fix.SessionID:
    return fix.SessionID(spec.begin_string, spec.sender, spec.target)


def session_key(sid: fix.SessionID) -> str:
    return sid.toString()


def build_settings(role: str, sessions: list[SessionSpec], cfg: FixConfig, work_dir: Path) -> fix.SessionSettings:
    """SessionSettings for an acceptor (role 'acceptor') or an initiator ('initiator')."""
    dictionaries = specs.prepare(work_dir / "dictionaries", cfg.spec_dir)
    settings = fix.SessionSettings()
    defaults = fix.Dictionary()
    for key, value in {
        "ConnectionType": role,
        "StartTime": "00:00:00",
        "EndTime": "00:00:00",
        "HeartBtInt": str(cfg.heartbeat_interval),
        "ReconnectInterval": str(cfg.reconnect_interval),
        "LogonTimeout": str(cfg.logon_timeout_s),  # initiators; the acceptor side is gateway.fix.pending
        "UseDataDictionary": "Y",
        # Missing business fields get an execution report naming them, not a session reject.
        "ValidateRequiredFields": "N",
        "ValidateFieldsOutOfOrder": "N",
        "ValidateUserDefinedFields": "N",
        "AllowUnknownMsgFields": "Y",
        "ResetOnLogon": "Y" if cfg.store == "memory" else "N",
        "ResetOnLogout": "N",
        "ResetOnDisconnect": "N",
        "SocketNodelay": "Y",
        "FileStorePath": str(cfg.store_path),
        "FileLogPath": str(cfg.log_path or work_dir / "log"),
    }.items():
        defaults.setString(key, value)
    settings.set(defaults)
    for spec in sessions:
        d = fix.Dictionary()
        dictionary = dictionaries[spec.begin_string]
        if spec.dictionary is not None:
            dictionary = work_dir / "dictionaries" / f"{spec.begin_string}-{spec.sender}-{spec.target}.xml"
            specs.merge(spec.dictionary, specs.custom_fields_file(), dictionary)
        d.setString("DataDictionary", str(dictionary))
        if spec.heartbeat_interval is not None:
            d.setString("HeartBtInt", str(spec.heartbeat_interval))
        if spec.start_time is not None and spec.end_time is not None:
            d.setString("StartTime", spec.start_time)
            d.setString("EndTime", spec.end_time)
        if spec.start_day is not None and spec.end_day is not None:
            d.setString("StartDay", spec.start_day.capitalize())
            d.setString("EndDay", spec.end_day.capitalize())
        if spec.logon_timeout is not None:
            d.setString("LogonTimeout", str(spec.logon_timeout))
        for key, value in spec.settings:
            d.setString(key, value)
        if spec.reset_on_logon is not None:
            d.setString("ResetOnLogon", "Y" if spec.reset_on_logon else "N")
        if role == "acceptor":
            d.setString("SocketAcceptPort", str(spec.port))
            d.setString("SocketAcceptHost", spec.host)
        else:
            d.setString("SocketConnectHost", spec.host)
            d.setString("SocketConnectPort", str(spec.port))
        settings.set(session_id(spec), d)
    return settings


def uses_file_store(cfg: FixConfig, sessions: Iterable[SessionSpec]) -> bool:
    """A file store when the config asks for one or some session keeps its sequence numbers across restarts."""
    return cfg.store == "file" or any(spec.reset_on_logon is False for spec in sessions)


def store_state(sid: fix.SessionID, cfg: FixConfig, file_store: bool) -> StoreState:
    """The session's store as quickfix opened it (call after the engine is made, before it starts)."""
    session = fix.Session.lookupSession(sid)
    if session is None:
        raise RuntimeError(f"{sid.toString()}: no quickfix session (store_state before the engine was made?)")
    created = None
    if file_store:
        # quickfix's FileStore keeps its creation time in PREFIX.session.
        path = Path(f"{store_prefix(sid, cfg)}.session")
        created = path.read_text().strip() if path.exists() else None
    return StoreState(
        session.getExpectedSenderNum(),
        session.getExpectedTargetNum(),
        created,
        file_store
        and session.getPersistMessages()
        and not (session.getResetOnLogon() or session.getResetOnLogout() or session.getResetOnDisconnect()),
    )


def store_prefix(sid: fix.SessionID, cfg: FixConfig) -> Path:
    """Where quickfix's FileStore keeps the session: PREFIX.body, .header, .seqnums, .session."""
    names = (sid.getBeginString(), sid.getSenderCompID(), sid.getTargetCompID())
    return Path(cfg.store_path) / "-".join(name.getValue() for name in names)


def store_factory(cfg: FixConfig, settings: fix.SessionSettings, persistent: bool = False) -> fix.MessageStoreFactory:
    if persistent:
        Path(cfg.store_path).mkdir(parents=True, exist_ok=True)
        return fix.FileStoreFactory(settings)
    return fix.MemoryStoreFactory()


def log_factory(cfg: FixConfig, settings: fix.SessionSettings) -> fix.LogFactory | None:
    if cfg.log_path is None:
        return None
    Path(cfg.log_path).mkdir(parents=True, exist_ok=True)
    return fix.FileLogFactory(settings)


def make_engine(
    role: str,
    app: fix.Application,
    sessions: list[SessionSpec],
    cfg: FixConfig,
    work_dir: Path,
    watch: ConnectWatch | None = None,
):
    """An acceptor (a thread per connection) or an initiator (one thread for all sessions), not started; `watch`
    sees the sessions' events (connection attempts) besides the file log.

    Acceptors are the threaded kind because SocketAcceptor.stop() closes its server from the
    caller's thread while its own thread deletes it: a use-after-free on every stop.
    """
    settings = build_settings(role, sessions, cfg, work_dir)
    store = store_factory(cfg, settings, uses_file_store(cfg, sessions))
    logs = log_factory(cfg, settings)
    if watch is not None:
        logs = watch.log_factory(logs)
    cls = fix.ThreadedSocketAcceptor if role == "acceptor" else fix.SocketInitiator
    engine = cls(app, store, settings, logs) if logs else cls(app, store, settings)
    return engine


def shutdown(engine, sessions: Iterable[fix.SessionID], timeout: float = 2.0) -> None:
    """Log out of every session, wait (up to timeout) for the peers' Logouts, then stop the engine."""
    log_out(sessions, timeout)
    engine.stop()


def begin_shutdown(engine, sessions: Iterable[fix.SessionID], timeout: float = 2.0) -> Callable[[], None]:
    """shutdown() for an initiator that returns once its sessions are logged out: the engine stops on a thread
    of its own, and the function returned waits for it (call it before dropping the engine).

    A stopped initiator's thread still sleeps out its one-second poll before it ends; the caller need not wait.
    Its sessions are down and disabled, so it neither connects nor calls back any more. A session still up or
    half-way through a logon after the timeout stops the engine here, as shutdown() would.
    """
    if not log_out(sessions, timeout):
        engine.stop()
        return lambda: None
    thread = threading.Thread(target=engine.stop, name="fix-engine-stop")
    thread.start()
    return thread.join


def log_out(sessions: Iterable[fix.SessionID], timeout: float = 2.0) -> bool:
    """Disable every session (no more logons either way), log out of those logged on and wait (up to timeout)
    until each peer has answered; False when some session is still logged on or has a Logon unanswered.

    quickfix's logout() only marks the session: the Logout goes out when the session next looks at its
    state, on its one-second timer or right after it handles an incoming message. So a TestRequest goes
    first, and the application marks the session while quickfix sends it (logging_out): the peer's Heartbeat
    comes back at once, and handling it sends the Logout. The mark is made with the session locked, before
    the TestRequest leaves, so the session cannot miss the Heartbeat, and a Logout the timer sends can only
    follow the TestRequest (before it, the peer would log out without counting the TestRequest and ask for
    it again at the next logon). An application that does not call logging_out is marked just after the
    TestRequest; if the Heartbeat comes back first, the timer still sends the Logout within a second.
    """
    found = [(sid, fix.Session.lookupSession(sid)) for sid in sessions]
    live = [session for _, session in found if session is not None]
    for sid, session in found:
        if session is None:
            continue
        if session.isLoggedOn():
            fix.Session.sendToTarget(_test_request(), sid)
        session.logout(LOGOUT_TEXT)
    deadline = time.monotonic() + timeout
    while any(session.isLoggedOn() for session in live):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.001)
    return not any(session.sentLogon() for session in live)


def logging_out(message: fix.Message, sid: fix.SessionID) -> None:
    """Mark the session logging out if `message` is log_out's TestRequest (not a Heartbeat echoing a stopping
    peer's); every Application.toAdmin calls this with each admin message it sends.

    toAdmin runs on the sending thread with the session locked, before the message is stored and sent.
    """
    if message.getHeader().getField(MSG_TYPE) != "1" or not message.isSetField(TEST_REQ_ID):
        return
    if message.getField(TEST_REQ_ID) == LOGOUT_TEST_REQ_ID:
        session = fix.Session.lookupSession(sid)
        if session is not None:
            session.logout(LOGOUT_TEXT)


def _test_request() -> fix.Message:
    message = fix.Message()  # quickfix fills in the header for the session it is sent on
    message.getHeader().setField(fix.MsgType("1"))
    message.setField(TEST_REQ_ID, LOGOUT_TEST_REQ_ID)
    return message
