// Package swarmtest runs real BitTorrent software on loopback for the interop
// tests and the benchmark: opentracker as the tracker, libtorrent (through its
// Python bindings) as a seeder or leecher, or as many seeders in one process
// (StartLibtorrentSeeders), aria2c and transmission as reference leechers,
// qBittorrent through its Web API, rtorrent headless, and mktorrent to make the
// metainfo. Payloads are generated from a
// seed, never checked in. The demo (cmd/demo) uses only its process and payload
// helpers: its swarm is BitStorm alone (embedded tracker, seeder, leecher).
//
// Every child process runs in a process group of its own. Process.Stop kills
// that group by its id and waits for it; a context that ends does the same.
// A watchdog shell inside each group kills the group when this process dies
// without cleaning up (a test binary's timeout panic, say), so no tracker or
// seeder outlives the test that started it. Each child's stdout and stderr go
// to a log file in the caller's directory, and errors quote its last lines.
//
// Network traffic stays on 127.0.0.1: trackers and peers listen there only.
//
// A typical swarm, in a test:
//
//	swarmtest.Require(t, swarmtest.Opentracker, swarmtest.Mktorrent, swarmtest.Libtorrent)
//	dir := t.TempDir()
//	files := []swarmtest.FileSpec{{Path: "demo/a.bin", Size: 5 << 20}}
//	err := swarmtest.WritePayload(dir, 1, files)
//	tr, err := swarmtest.StartTracker(ctx, dir)
//	err = swarmtest.MakeTorrent(ctx, filepath.Join(dir, "demo"), torrent, tr.AnnounceURL, 18)
//	hash, err := swarmtest.InfoHash(ctx, torrent)
//	err = tr.Allow(ctx, hash)
//	seeder, err := swarmtest.StartLibtorrentSeeder(ctx, torrent, dir)
//	err = tr.WaitSeeders(ctx, hash, 1)
//	res, err := swarmtest.RunAria2c(ctx, torrent, out)
//
// The facts these helpers rely on (opentracker's whitelist and chroot,
// libtorrent's flags, aria2c's options) are collected in the project notes on
// real peers.
package swarmtest
