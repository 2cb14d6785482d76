"""libtorrent 2.0 sessions as DHT nodes, seeders and leechers on private addresses (swarmtest).

Meant for a network namespace of a test's own whose loopback carries one address per
peer: each session listens on --ip:--port (TCP for peers, UDP for the DHT) and knows of
the other nodes only through add_dht_node, each --node IP:PORT (no public bootstrap).

nodes:  one DHT-only session per --ip, all on --port; each adds the others. Prints
        "ready nodes=N" once every session has another in its routing table, then runs
        until killed, printing "announce-in ip=IP port=P info_hash=HEX" each time a node
        receives an announce_peer.
seed:   seeds --torrent from --save with the DHT on (no tracker needed), re-announcing
        every --announce-interval seconds; prints "seeding IP:PORT" once it seeds and
        has a DHT node, then runs until killed.
leech:  downloads the --magnet link (metadata included, BEP 9) into --save, finding
        peers through the DHT; prints "metadata ..." and then "finished elapsed=S bytes=N"
        and exits 0. With --torrent instead of --magnet it starts with the metadata.

Options for tests of peers rather than of the DHT (seed and leech):
  --no-dht           no DHT at all: peers come from --peer, from peers that dial this
                     one, and from PEX (ut_pex, on by default); "seeding" needs no node.
  --peer IP:PORT     dial this peer once the torrent is added; repeatable.
  --upload-limit N, --download-limit N
                     the session's rate limits in bytes per second, applied to every
                     peer (libtorrent exempts private addresses by default).
  --no-seed-dials    a seed never dials (seeding_outgoing_connections off): it meets
                     only the peers that connect to it.
  --first-piece      print "first-piece elapsed=S index=I" when the first piece passes
                     its hash check.
  --log-peers        print "peer-connect ip=IP port=P" for each peer dialled.
  --no-pex           the torrent neither sends nor reads ut_pex messages (disable_pex).

The settings are what libtorrent's DHT needs to accept nodes on private addresses that
share a /24 and whose ids are not derived from their IPs. Plain TCP: no uTP, LSD, UPnP
or NAT-PMP. Errors go to stderr.
"""

import argparse
import sys
import time

import libtorrent as lt


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def make_session(ip, port, announce_interval, extra=None):
    s = {
        "listen_interfaces": "%s:%d" % (ip, port),
        "outgoing_interfaces": ip,
        "enable_dht": True,
        "dht_bootstrap_nodes": "",
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_prefer_verified_node_ids": False,
        "dht_ignore_dark_internet": False,
        "dht_announce_interval": announce_interval,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "enable_incoming_tcp": True,
        "enable_outgoing_tcp": True,
        "alert_mask": (lt.alert.category_t.error_notification
                       | lt.alert.category_t.status_notification
                       | lt.alert.category_t.dht_notification),
    }
    s.update(extra or {})
    return lt.session(s)


def peer_session(args):
    """The session of seed and leech: make_session with the options of tests of peers."""
    extra = {}
    mask = (lt.alert.category_t.error_notification | lt.alert.category_t.status_notification
            | lt.alert.category_t.dht_notification)
    if args.no_dht:
        extra["enable_dht"] = False
    limited = args.upload_limit > 0 or args.download_limit > 0
    if args.upload_limit > 0:
        extra["upload_rate_limit"] = args.upload_limit
    if args.download_limit > 0:
        extra["download_rate_limit"] = args.download_limit
    if limited:
        extra["rate_limit_ip_overhead"] = False
    if args.no_seed_dials:
        extra["seeding_outgoing_connections"] = False
    if args.first_piece:
        mask |= lt.alert.category_t.piece_progress_notification
    if args.log_peers:
        mask |= lt.alert.category_t.connect_notification
    extra["alert_mask"] = mask
    ses = make_session(args.ip, args.port, args.announce_interval, extra)
    if limited:
        # Private addresses fall in libtorrent's local peer class, which no rate limit
        # applies to: put every address in the global class.
        f = lt.ip_filter()
        f.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
        f.add_rule("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1 << lt.session.global_peer_class_id)
        ses.set_peer_class_filter(f)
    if not args.no_dht:
        for n in args.node:
            ses.add_dht_node(parse_node(n))
    return ses


def connect_peers(h, peers):
    for p in peers:
        h.connect_peer(parse_node(p))


def peer_events(args, start):
    """Returns drain's callback for --first-piece and --log-peers."""
    first = [True]

    def on(a):
        if args.first_piece and first[0] and isinstance(a, lt.piece_finished_alert):
            first[0] = False
            print("first-piece elapsed=%.3f index=%d" % (time.monotonic() - start, a.piece_index), flush=True)
        elif args.log_peers and isinstance(a, lt.peer_connect_alert):
            print("peer-connect ip=%s port=%d" % (a.endpoint[0], a.endpoint[1]), flush=True)
    return on


def parse_node(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


def routing_nodes(alert):
    n = 0
    for b in alert.routing_table:
        n += b["num_nodes"] if isinstance(b, dict) else b.num_nodes
    return n


def drain(ses, on=None):
    """Logs errors and incoming announces; returns the DHT stats alerts' node counts."""
    counts = []
    for a in ses.pop_alerts():
        if isinstance(a, lt.dht_stats_alert):
            counts.append(routing_nodes(a))
        elif isinstance(a, lt.dht_announce_alert):
            print("announce-in ip=%s port=%d info_hash=%s" % (a.ip, a.port, a.info_hash), flush=True)
        elif a.category() & lt.alert.category_t.error_notification:
            log("alert:", a.what(), a.message())
        if on:
            on(a)
    return counts


def nodes(args):
    sessions = [make_session(ip, args.port, args.announce_interval) for ip in args.ip]
    for i, ses in enumerate(sessions):
        for j, ip in enumerate(args.ip):
            if i != j:
                ses.add_dht_node((ip, args.port))
    known = [0] * len(sessions)
    said = False
    while True:
        time.sleep(0.2)
        for i, ses in enumerate(sessions):
            ses.post_dht_stats()
        time.sleep(0.05)
        for i, ses in enumerate(sessions):
            for n in drain(ses):
                known[i] = n
        if not said and all(k > 0 for k in known):
            print("ready nodes=%d" % len(sessions), flush=True)
            said = True


def seed(args):
    ses = peer_session(args)
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(args.torrent)
    atp.save_path = args.save
    # Both are set by default; with them the torrent never announces.
    atp.flags = (atp.flags & ~lt.torrent_flags.paused & ~lt.torrent_flags.auto_managed) | lt.torrent_flags.seed_mode
    if args.no_pex:
        atp.flags |= lt.torrent_flags.disable_pex
    h = ses.add_torrent(atp)
    connect_peers(h, args.peer)
    on = peer_events(args, time.monotonic())
    said, known, last = False, 0, 0.0
    while True:
        ses.wait_for_alert(200)
        if not args.no_dht:
            ses.post_dht_stats()
        for n in drain(ses, on):
            known = n
        st = h.status()
        if st.errc.value() != 0:
            log("torrent error:", st.errc.message())
            sys.exit(1)
        if not said and st.is_seeding and (args.no_dht or known > 0):
            print("seeding %s:%d" % (args.ip, args.port), flush=True)
            said = True
        now = time.monotonic()
        if now - last >= 5:
            last = now
            log("status state=%s peers=%d uploaded=%d dht_nodes=%d" % (st.state, st.num_peers, st.all_time_upload, known))


def leech(args):
    ses = peer_session(args)
    start = time.monotonic()
    if args.magnet:
        atp = lt.parse_magnet_uri(args.magnet)
    else:
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(args.torrent)
    atp.save_path = args.save
    atp.flags = atp.flags & ~lt.torrent_flags.paused & ~lt.torrent_flags.auto_managed
    if args.no_pex:
        atp.flags |= lt.torrent_flags.disable_pex
    h = ses.add_torrent(atp)
    connect_peers(h, args.peer)
    on = peer_events(args, start)
    size, last = -1, 0.0
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
            print("finished elapsed=%.3f bytes=%d" % (time.monotonic() - start, size), flush=True)
            return
        now = time.monotonic()
        if now - last >= 2:
            last = now
            log("status state=%s peers=%d progress=%.3f" % (st.state, st.num_peers, st.progress))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=["nodes", "seed", "leech"])
    p.add_argument("--ip", action="append", default=[], help="the address to listen on (nodes: one per session)")
    p.add_argument("--port", type=int, required=True, help="TCP and UDP port")
    p.add_argument("--node", action="append", default=[], help="seed, leech: a DHT node IP:PORT; repeatable")
    p.add_argument("--torrent", help="seed: the .torrent file; leech: instead of --magnet")
    p.add_argument("--magnet", help="leech: the magnet link")
    p.add_argument("--save", help="seed, leech: the directory that holds the torrent's name")
    p.add_argument("--announce-interval", type=int, default=5, help="seconds between DHT announces")
    p.add_argument("--no-dht", action="store_true", help="seed, leech: no DHT; peers from --peer, incoming and PEX")
    p.add_argument("--peer", action="append", default=[], help="seed, leech: dial this IP:PORT; repeatable")
    p.add_argument("--upload-limit", type=int, default=0, help="seed, leech: upload bytes per second, 0 for none")
    p.add_argument("--download-limit", type=int, default=0, help="seed, leech: download bytes per second, 0 for none")
    p.add_argument("--no-seed-dials", action="store_true", help="seed, leech: a seed never dials a peer")
    p.add_argument("--first-piece", action="store_true", help="leech: print a line when the first piece verifies")
    p.add_argument("--log-peers", action="store_true", help="seed, leech: print a line for each peer dialled")
    p.add_argument("--no-pex", action="store_true", help="seed, leech: no ut_pex for the torrent")
    args = p.parse_args()
    if not args.ip or (args.mode != "nodes" and len(args.ip) != 1):
        p.error("nodes takes --ip for each session; seed and leech one --ip")
    if args.mode == "leech" and bool(args.magnet) == bool(args.torrent):
        p.error("leech takes --magnet or --torrent")
    log("libtorrent", lt.__version__, args.mode, "ip", ",".join(args.ip), "port", args.port)
    if args.mode == "nodes":
        nodes(args)
        return
    args.ip = args.ip[0]
    if args.mode == "seed":
        seed(args)
    else:
        leech(args)
        log("session closed")


if __name__ == "__main__":
    main()
