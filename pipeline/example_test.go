package pipeline_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"github.com/bitstorm/bitstorm/internal/create"
	"github.com/bitstorm/bitstorm/internal/magnet"
	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages"
)

// ExampleNew downloads a .torrent file's torrent from a peer given by address, into a
// directory, and reports what it verified.
func ExampleNew() {
	seed := startSeed(file{"hello.bin", 100_000})
	defer seed.close()
	out := tempDir()
	defer os.RemoveAll(out)

	m, err := metainfo.Load(seed.torrents[0])
	if err != nil {
		log.Fatal(err)
	}
	p, err := pipeline.New(m,
		pipeline.WithConfig(pipeline.Config{OutDir: out, NoListen: true}),
		pipeline.WithPeerSource(stages.StaticPeers{seed.addr}), // instead of the trackers
	)
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil { // until every piece is verified on disk
		log.Fatal(err)
	}
	st := p.Stats()
	fmt.Printf("%s: %d of %d bytes verified in %d pieces\n", m.Info.Name, st.Verified, st.Total, st.Pieces)
	// Output: hello.bin: 100000 of 100000 bytes verified in 7 pieces
}

// ExampleWithEvents watches a download through its typed events. The function is called
// from the stages' goroutines: it must be safe for concurrent use and must not block.
func ExampleWithEvents() {
	seed := startSeed(file{"hello.bin", 100_000})
	defer seed.close()
	out := tempDir()
	defer os.RemoveAll(out)

	var mu sync.Mutex
	verified, completed := 0, 0
	events := func(e stages.Event) {
		mu.Lock()
		defer mu.Unlock()
		switch e.(type) {
		case stages.PieceVerified:
			verified++
		case stages.Completed:
			completed++
		}
	}
	m, err := metainfo.Load(seed.torrents[0])
	if err != nil {
		log.Fatal(err)
	}
	p, err := pipeline.New(m,
		pipeline.WithConfig(pipeline.Config{OutDir: out, NoListen: true}),
		pipeline.WithPeerSource(stages.StaticPeers{seed.addr}),
		pipeline.WithEvents(events),
	)
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	fmt.Printf("%d pieces verified, completed %d time(s)\n", verified, completed)
	// Output: 7 pieces verified, completed 1 time(s)
}

// ExampleNewMagnet downloads the torrent a magnet link names: its metadata first, from
// the link's x.pe peer (BEP 9), then its data, on the same connections.
func ExampleNewMagnet() {
	seed := startSeed(file{"hello.bin", 100_000})
	defer seed.close()
	out := tempDir()
	defer os.RemoveAll(out)

	link := fmt.Sprintf("magnet:?xt=urn:btih:%x&dn=hello&x.pe=%s", seed.hashes[0], seed.addr)
	mag, err := magnet.Parse(link)
	if err != nil {
		log.Fatal(err)
	}
	p, err := pipeline.NewMagnet(mag, pipeline.WithConfig(pipeline.Config{OutDir: out, NoListen: true}))
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
	m := p.Meta() // known once the metadata arrived; also kept in out/.bitstorm for the next run
	fi, err := os.Stat(filepath.Join(out, m.Info.Name))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %d bytes on disk\n", m.Info.Name, fi.Size())
	// Output: hello.bin: 100000 bytes on disk
}

// ExampleSession downloads two torrents in one session: one listen port, one peer id,
// every torrent's events through one function.
func ExampleSession() {
	seed := startSeed(file{"a.bin", 100_000}, file{"b.bin", 60_000})
	defer seed.close()
	out := tempDir()
	defer os.RemoveAll(out)

	var mu sync.Mutex
	verified := make(map[[20]byte]int)
	s, err := pipeline.NewSession(pipeline.SessionConfig{
		ListenAddr: "127.0.0.1:0",                // port 0 picks one: s.Port()
		Defaults:   pipeline.Config{OutDir: out}, // every torrent's Config
		Events: func(t *pipeline.Torrent, e stages.Event) {
			if _, ok := e.(stages.PieceVerified); ok {
				mu.Lock()
				verified[t.InfoHash()]++
				mu.Unlock()
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close() // stops what still runs; resume records are saved

	var ts []*pipeline.Torrent
	for _, path := range seed.torrents {
		t, err := s.Add(pipeline.FromFile(path), false, pipeline.WithPeerSource(stages.StaticPeers{seed.addr}))
		if err != nil {
			log.Fatal(err)
		}
		ts = append(ts, t)
	}
	for _, t := range ts {
		<-t.Done() // finished, failed (t.Err()), paused or removed
		mu.Lock()
		fmt.Printf("%s: %v, %d bytes, %d pieces verified\n", t.Meta().Info.Name, t.State(), t.Stats().Verified, verified[t.InfoHash()])
		mu.Unlock()
	}
	// Output:
	// a.bin: finished, 100000 bytes, 7 pieces verified
	// b.bin: finished, 60000 bytes, 4 pieces verified
}

// ExampleFromMagnet adds a magnet link to a session: GotInfo is closed once its metadata
// has arrived from peers.
func ExampleFromMagnet() {
	seed := startSeed(file{"hello.bin", 100_000})
	defer seed.close()
	out := tempDir()
	defer os.RemoveAll(out)

	s, err := pipeline.NewSession(pipeline.SessionConfig{ListenAddr: "127.0.0.1:0", Defaults: pipeline.Config{OutDir: out}})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	link := fmt.Sprintf("magnet:?xt=urn:btih:%x&x.pe=%s", seed.hashes[0], seed.addr)
	t, err := s.Add(pipeline.FromMagnet(link), false)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("metadata known:", t.Meta() != nil)
	<-t.GotInfo()
	fmt.Println("name:", t.Meta().Info.Name, "files:", len(t.Files()))
	<-t.Done()
	fmt.Println(t.State())
	// Output:
	// metadata known: false
	// name: hello.bin files: 1
	// finished
}

// ExampleTorrent_Resume adds a torrent paused, then starts it.
func ExampleTorrent_Resume() {
	seed := startSeed(file{"hello.bin", 100_000})
	defer seed.close()
	out := tempDir()
	defer os.RemoveAll(out)

	s, err := pipeline.NewSession(pipeline.SessionConfig{ListenAddr: "127.0.0.1:0", Defaults: pipeline.Config{OutDir: out}})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	t, err := s.Add(pipeline.FromFile(seed.torrents[0]), true, pipeline.WithPeerSource(stages.StaticPeers{seed.addr}))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(t.State())
	if err := t.Resume(); err != nil {
		log.Fatal(err)
	}
	<-t.Done()
	fmt.Println(t.State())
	// Output:
	// paused
	// finished
}

// ExampleTorrent_NewReader streams a file while it downloads: the reader's Read waits
// for the pieces under it, and a Seek moves the download to where it reads next.
func ExampleTorrent_NewReader() {
	seed := startSeed(file{"movie.bin", 300_000})
	defer seed.close()
	out := tempDir()
	defer os.RemoveAll(out)

	s, err := pipeline.NewSession(pipeline.SessionConfig{ListenAddr: "127.0.0.1:0", Defaults: pipeline.Config{OutDir: out}})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	t, err := s.Add(pipeline.FromFile(seed.torrents[0]), false, pipeline.WithPeerSource(stages.StaticPeers{seed.addr}))
	if err != nil {
		log.Fatal(err)
	}
	f, err := t.File(0) // the first file (`bitstorm info` numbers them from 1)
	if err != nil {
		log.Fatal(err)
	}
	r, err := f.NewReader() // or t.NewReader(0)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	r.SetReadahead(64 << 10) // the bytes fetched ahead of the read position
	if _, err := r.Seek(200_000, io.SeekStart); err != nil {
		log.Fatal(err)
	}
	got := make([]byte, 16)
	if _, err := io.ReadFull(r, got); err != nil {
		log.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(seed.dir, "movie.bin"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("16 bytes at 200000 as the seeder has them:", bytes.Equal(got, want[200_000:200_016]))
	// Output: 16 bytes at 200000 as the seeder has them: true
}

// ExampleTorrent_Verify rechecks a downloaded torrent's files: a byte changed on disk
// costs its piece, which the next run fetches again.
func ExampleTorrent_Verify() {
	seed := startSeed(file{"hello.bin", 100_000})
	defer seed.close()
	out := tempDir()
	defer os.RemoveAll(out)

	s, err := pipeline.NewSession(pipeline.SessionConfig{ListenAddr: "127.0.0.1:0", Defaults: pipeline.Config{OutDir: out}})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	t, err := s.Add(pipeline.FromFile(seed.torrents[0]), false, pipeline.WithPeerSource(stages.StaticPeers{seed.addr}))
	if err != nil {
		log.Fatal(err)
	}
	<-t.Done()
	fmt.Println(t.State(), t.Stats().Pieces, "pieces")

	f, err := os.OpenFile(filepath.Join(out, "hello.bin"), os.O_WRONLY, 0)
	if err != nil {
		log.Fatal(err)
	}
	f.WriteAt([]byte("oops"), 50_000) // inside piece 3 of 7
	f.Close()
	if err := t.Verify(context.Background()); err != nil {
		log.Fatal(err)
	}
	fmt.Println("after Verify:", t.State(), t.Stats().Pieces, "pieces")
	if err := t.Resume(); err != nil {
		log.Fatal(err)
	}
	<-t.Done()
	fmt.Println(t.State(), t.Stats().Pieces, "pieces,", t.Stats().Downloaded, "bytes fetched again")
	// Output:
	// finished 7 pieces
	// after Verify: paused 6 pieces
	// finished 7 pieces, 16384 bytes fetched again
}

// file is a payload file of the examples: size seeded random bytes.
type file struct {
	name string
	size int
}

// seeder is the examples' swarm: files, their .torrent files (without trackers) and a
// session on 127.0.0.1 seeding them.
type seeder struct {
	dir      string
	torrents []string // .torrent paths, one per file
	hashes   [][20]byte
	addr     netip.AddrPort
	s        *pipeline.Session
}

func startSeed(files ...file) *seeder {
	sd := &seeder{dir: tempDir()}
	s, err := pipeline.NewSession(pipeline.SessionConfig{ListenAddr: "127.0.0.1:0",
		Defaults: pipeline.Config{OutDir: sd.dir, Seed: true, NoPex: true}})
	if err != nil {
		log.Fatal(err)
	}
	sd.s, sd.addr = s, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), s.Port())
	for i, f := range files {
		data := make([]byte, f.size)
		rng := rand.New(rand.NewPCG(uint64(i), 42))
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		path := filepath.Join(sd.dir, f.name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			log.Fatal(err)
		}
		raw, err := create.Build(context.Background(), path, create.Options{PieceLength: 16 << 10, NoDate: true})
		if err != nil {
			log.Fatal(err)
		}
		torrent := path + ".torrent"
		if err := os.WriteFile(torrent, raw, 0o644); err != nil {
			log.Fatal(err)
		}
		// The seeder asks nobody for peers (the torrents have no tracker); leechers dial it.
		t, err := s.Add(pipeline.FromBytes(raw), false, pipeline.WithPeerSource(stages.StaticPeers{}))
		if err != nil {
			log.Fatal(err)
		}
		sd.torrents, sd.hashes = append(sd.torrents, torrent), append(sd.hashes, t.InfoHash())
	}
	return sd
}

func (sd *seeder) close() {
	sd.s.Close()
	os.RemoveAll(sd.dir)
}

func tempDir() string {
	dir, err := os.MkdirTemp("", "bitstorm-example-")
	if err != nil {
		log.Fatal(err)
	}
	return dir
}
