"""Seed or leech one torrent with libtorrent 2.0 on 127.0.0.1 (swarmtest).

seed:  prints "seeding port=P" once the torrent seeds and the tracker has
       answered an announce, then runs until killed.
seeds: runs --count sessions in this one process, each seeding the torrent
       from --save on a port of its own that the system picks; prints
       "seeding ports=P1,P2,..." once every one seeds and the tracker has
       answered each, then runs until killed. Each session has a line
       "status port=P peers=N uploaded=U" every second its total changed.
leech: downloads into --save, prints "finished elapsed=S bytes=N" and exits 0.
magnet: leeches from --magnet alone (no .torrent): fetches the metadata from
       peers (BEP 9), the link's trackers and each --peer HOST:PORT it dials
       itself, prints "metadata elapsed=S info_hash=HEX name=NAME" once it has
       it, then downloads into --save and prints the "finished" line as leech.

leech and magnet take --first-piece: print "first-piece elapsed=S index=I" when
the first piece passes its hash check (piece_finished_alert), S counted from
the torrent's add, like the other elapsed times.

Plain TCP on loopback only: no DHT, LSD, UPnP, NAT-PMP or uTP. Every peer is
127.0.0.1, so several connections per IP are allowed. Errors go to stderr.

--encryption forced (every mode) makes every session require protocol
encryption (MSE/PE) with RC4, both ways: out_enc_policy and in_enc_policy
pe_forced, allowed_enc_level pe_rc4, as qBittorrent's "require encryption".
The default, enabled, is libtorrent's own: both kinds, plaintext preferred.
"""

import argparse
import sys
import time

import libtorrent as lt


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# Settings of each --encryption choice; make_session applies the chosen one.
ENCRYPTION = {
    "enabled": {},
    "forced": {
        "out_enc_policy": int(lt.enc_policy.pe_forced),
        "in_enc_policy": int(lt.enc_policy.pe_forced),
        "allowed_enc_level": int(lt.enc_level.pe_rc4),
    },
}
encryption = {}


def make_session(port, extra=None):
    s = lt.default_settings()
    s.update({
        "listen_interfaces": "127.0.0.1:%d" % port,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "enable_incoming_tcp": True,
        "enable_outgoing_tcp": True,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": (lt.alert.category_t.error_notification
                       | lt.alert.category_t.status_notification
                       | lt.alert.category_t.tracker_notification),
    })
    s.update(encryption)
    s.update(extra or {})
    return lt.session(s)


def add(ses, torrent, save, seed):
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(torrent)
    atp.save_path = save
    # Both are set by default; with them the torrent never announces.
    flags = atp.flags & ~lt.torrent_flags.paused & ~lt.torrent_flags.auto_managed
    if seed:
        flags |= lt.torrent_flags.seed_mode  # skip the initial hash check
    atp.flags = flags
    return ses.add_torrent(atp), atp.ti.total_size()


def drain(ses, on=None):
    """Logs errors and tracker events; returns whether a tracker replied. on, when
    given, sees every alert."""
    replied = False
    for a in ses.pop_alerts():
        if on:
            on(a)
        if isinstance(a, lt.tracker_reply_alert):
            replied = True
        if isinstance(a, (lt.tracker_error_alert, lt.tracker_warning_alert,
                          lt.listen_failed_alert, lt.file_error_alert,
                          lt.torrent_error_alert, lt.hash_failed_alert)) \
                or a.category() & lt.alert.category_t.error_notification:
            log("alert:", a.what(), a.message())
    return replied


def seed(args):
    extra = {}
    if args.upload_limit > 0:
        # One bucket for the whole session; loopback counts like any other link.
        extra = {"upload_rate_limit": args.upload_limit, "rate_limit_ip_overhead": False}
    ses = make_session(args.port, extra)
    if args.upload_limit > 0:
        # By default loopback peers fall in libtorrent's local peer class, which
        # no rate limit applies to: put every address in the global class.
        f = lt.ip_filter()
        f.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
        f.add_rule("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1 << lt.session.global_peer_class_id)
        ses.set_peer_class_filter(f)
    h, _ = add(ses, args.torrent, args.save, True)
    announced = False
    said = False
    last = 0.0
    while True:
        ses.wait_for_alert(500)
        announced = drain(ses) or announced
        st = h.status()
        if st.errc.value() != 0:
            log("torrent error:", st.errc.message())
            sys.exit(1)
        if not said and st.is_seeding and announced:
            print("seeding port=%d" % args.port, flush=True)
            said = True
        now = time.monotonic()
        if now - last >= 10:
            last = now
            log("status state=%s peers=%d uploaded=%d upload_rate=%d" % (
                st.state, st.num_peers, st.all_time_upload, st.upload_rate))


def seeds(args):
    # Many sessions share two cores: a few disk threads each (reads come
    # through mmap from the page cache), and numwant=0 so that the seeders do
    # not learn of and dial one another through the tracker.
    extra = {"aio_threads": 2, "hashing_threads": 1, "num_want": 0}
    swarm = []
    for _ in range(args.count):
        ses = make_session(0, extra)
        h, _ = add(ses, args.torrent, args.save, True)
        swarm.append({"ses": ses, "h": h, "announced": False, "port": 0, "up": 0})
    said = False
    while True:
        time.sleep(0.25 if not said else 1)
        ready = True
        for s in swarm:
            s["announced"] = drain(s["ses"]) or s["announced"]
            if not s["port"] and s["ses"].is_listening():
                s["port"] = s["ses"].listen_port()
            st = s["h"].status()
            if st.errc.value() != 0:
                log("torrent error port=%d:" % s["port"], st.errc.message())
                sys.exit(1)
            ready = ready and st.is_seeding and s["announced"] and s["port"] != 0
            if said and st.all_time_upload != s["up"]:
                s["up"] = st.all_time_upload
                log("status port=%d peers=%d uploaded=%d" % (s["port"], st.num_peers, s["up"]))
        if not said and ready:
            print("seeding ports=%s" % ",".join(str(s["port"]) for s in swarm), flush=True)
            said = True


def wait_announce(ses, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ses.wait_for_alert(50)
        for a in ses.pop_alerts():
            if isinstance(a, (lt.tracker_reply_alert, lt.tracker_error_alert)):
                return


def add_magnet(ses, uri, save, peers):
    atp = lt.parse_magnet_uri(uri)
    atp.save_path = save
    atp.flags = atp.flags & ~lt.torrent_flags.paused & ~lt.torrent_flags.auto_managed
    h = ses.add_torrent(atp)
    for p in peers:
        host, _, port = p.rpartition(":")
        h.connect_peer((host.strip("[]"), int(port)))
    return h


def leech(args):
    extra = None
    if args.first_piece:
        extra = {"alert_mask": (lt.alert.category_t.error_notification
                                | lt.alert.category_t.status_notification
                                | lt.alert.category_t.tracker_notification
                                | lt.alert.category_t.piece_progress_notification)}
    ses = make_session(args.port, extra)
    start = time.monotonic()
    first = [args.first_piece]

    def on(a):
        if first[0] and isinstance(a, lt.piece_finished_alert):
            first[0] = False
            print("first-piece elapsed=%.3f index=%d" % (time.monotonic() - start, a.piece_index), flush=True)
    if args.magnet:
        h, size = add_magnet(ses, args.magnet, args.save, args.peer), -1
        announce = bool(h.trackers())
    else:
        h, size = add(ses, args.torrent, args.save, False)
        announce = True
    last = 0.0
    while True:
        ses.wait_for_alert(200)
        drain(ses, on)
        st = h.status()
        if st.errc.value() != 0:
            log("torrent error:", st.errc.message())
            sys.exit(1)
        if size < 0 and st.has_metadata:
            ti = h.torrent_file()
            size = ti.total_size()
            print("metadata elapsed=%.3f info_hash=%s name=%s" % (
                time.monotonic() - start, ti.info_hashes().v1, ti.name()), flush=True)
        if size >= 0 and (st.is_finished or st.is_seeding):
            elapsed = time.monotonic() - start
            print("finished elapsed=%.3f bytes=%d" % (elapsed, size), flush=True)
            # Returning drops the session: its destructor announces
            # event=stopped, so that the tracker does not hand out this
            # address as a seeder once the process is gone. It does not while
            # the "completed" announce is in flight, so wait for that first.
            if announce:
                wait_announce(ses, 2)
            ses.apply_settings({"stop_tracker_timeout": 1})
            return
        now = time.monotonic()
        if now - last >= 2:
            last = now
            log("status state=%s peers=%d progress=%.3f download_rate=%d" % (
                st.state, st.num_peers, st.progress, st.download_rate))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=["seed", "seeds", "leech", "magnet"])
    p.add_argument("--torrent", help="every mode but magnet: the .torrent file")
    p.add_argument("--magnet", help="magnet: the magnet link")
    p.add_argument("--peer", action="append", default=[],
                   help="magnet: dial this HOST:PORT once the link is added; repeatable")
    p.add_argument("--save", required=True, help="directory that holds (or will hold) the torrent's name")
    p.add_argument("--port", type=int, default=0, help="seed and leech: the port to listen on")
    p.add_argument("--count", type=int, default=1, help="seeds: how many sessions")
    p.add_argument("--upload-limit", type=int, default=0, help="seed: upload bytes per second, 0 for no limit")
    p.add_argument("--first-piece", action="store_true",
                   help="leech, magnet: print a line when the first piece passes its hash check")
    p.add_argument("--encryption", choices=sorted(ENCRYPTION), default="enabled",
                   help="protocol encryption (MSE/PE): forced requires it with RC4, both ways")
    args = p.parse_args()
    encryption.update(ENCRYPTION[args.encryption])
    if (args.mode == "magnet") != bool(args.magnet) or (args.mode != "magnet") != bool(args.torrent):
        p.error("--magnet goes with mode magnet, --torrent with the others")
    if args.mode == "seeds":
        log("libtorrent", lt.__version__, "seeds count", args.count)
        seeds(args)
        return
    log("libtorrent", lt.__version__, args.mode, "port", args.port)
    if args.mode == "seed":
        seed(args)
    else:
        leech(args)
        log("session closed")


if __name__ == "__main__":
    main()
