"""Seed many torrents from one libtorrent 2.0 session on 127.0.0.1 (bench scale table).

usage: scale_seed.py SAVE_DIR TORRENT...

Every torrent is added in seed_mode (no initial hash check) and announces to its
tracker. Prints "seeding port=P" once every torrent seeds and its tracker has answered,
then runs until killed, with a "status peers=N uploaded=U" line on stderr every 10 s.
Plain TCP on loopback only: no DHT, LSD, UPnP, NAT-PMP or uTP; every peer is 127.0.0.1,
so several connections per IP are allowed. No unchoke slot limit: a leecher of every
torrent at once is served by every torrent at once, not 8 at a time (libtorrent's
default), which would measure libtorrent's choker rather than the leecher.
"""

import sys
import time

import libtorrent as lt


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def main():
    save, torrents = sys.argv[1], sys.argv[2:]
    s = lt.default_settings()
    s.update({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "enable_incoming_tcp": True,
        "enable_outgoing_tcp": True,
        "allow_multiple_connections_per_ip": True,
        "unchoke_slots_limit": -1,
        "num_want": 0,  # a seeder needs no peers from the tracker
        "alert_mask": (lt.alert.category_t.error_notification
                       | lt.alert.category_t.status_notification
                       | lt.alert.category_t.tracker_notification),
    })
    ses = lt.session(s)
    handles = []
    for t in torrents:
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(t)
        atp.save_path = save
        # paused and auto_managed are set by default; with them a torrent never announces.
        atp.flags = (atp.flags & ~lt.torrent_flags.paused & ~lt.torrent_flags.auto_managed) \
            | lt.torrent_flags.seed_mode
        handles.append(ses.add_torrent(atp))
    announced = set()  # torrent names (each torrent's is its own)
    said = False
    last = 0.0
    while True:
        ses.wait_for_alert(500)
        for a in ses.pop_alerts():
            if isinstance(a, lt.tracker_reply_alert):
                announced.add(a.torrent_name)
            elif a.category() & lt.alert.category_t.error_notification:
                log("alert:", a.what(), a.message())
        if not said:
            sts = [h.status() for h in handles]
            for st in sts:
                if st.errc.value() != 0:
                    log("torrent error:", st.name, st.errc.message())
                    sys.exit(1)
            if ses.is_listening() and len(announced) == len(handles) and all(st.is_seeding for st in sts):
                print("seeding port=%d" % ses.listen_port(), flush=True)
                said = True
        now = time.monotonic()
        if now - last >= 10:
            last = now
            sts = [h.status() for h in handles]
            log("status peers=%d uploaded=%d" % (sum(st.num_peers for st in sts),
                                                 sum(st.all_time_upload for st in sts)))


if __name__ == "__main__":
    main()
