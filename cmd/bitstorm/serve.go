package main

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/pipeline"
)

func serveCommand() *cli.Command {
	// The download's flags, less those of a run that ends: serve seeds until Ctrl-C.
	flags := slices.DeleteFunc(downloadCommand().Flags, func(f cli.Flag) bool {
		return slices.ContainsFunc(f.Names(), func(n string) bool {
			return n == "seed-ratio" || n == "seed-time" || n == "seed-idle" || n == "json" || n == "metrics"
		})
	})
	flags = append(flags,
		&cli.StringFlag{Name: "http", Value: "127.0.0.1:8080", Usage: "serve the files over HTTP at `ADDR` (port 0 picks one); served where told, without authentication"},
		&cli.Int64Flag{Name: "readahead", Value: pipeline.DefaultReadahead, Usage: "bytes after a request's position fetched ahead of the rest"})
	return &cli.Command{
		Name:  "serve",
		Usage: "download a torrent and serve its files over HTTP while it downloads (Range requests fetch their pieces first); seeds until Ctrl-C",
		Description: "Each file is at http://ADDR/<its path in the torrent>, listed at http://ADDR/; the URLs are printed on stdout\n" +
			"once the metadata is known. A request for bytes not downloaded yet waits for them, and they are fetched first.",
		ArgsUsage: "FILE.torrent | MAGNET",
		Flags:     flags,
		Action:    serve,
	}
}

func serve(c *cli.Context) error {
	if c.NArg() != 1 {
		return fmt.Errorf("serve: expected one .torrent file or magnet link, got %d arguments", c.NArg())
	}
	if c.Int64("readahead") < 0 {
		return fmt.Errorf("serve: --readahead %d: must not be negative", c.Int64("readahead"))
	}
	s, err := setup(c, pipeline.Config{
		OutDir: c.String("out"), Port: uint16(c.Uint("port")), MaxPeers: c.Int("max-peers"),
		NoPeersTimeout: c.Duration("no-peers-timeout"), Seed: true,
	})
	if err != nil {
		return err
	}
	cfg := s.cfg
	args, err := parseTorrentArgs(s.name, c.Args().Slice())
	if err != nil {
		return err
	}
	a := args[0]
	ln, err := net.Listen("tcp", c.String("http"))
	if err != nil {
		return fmt.Errorf("serve: --http: %w", err)
	}
	defer ln.Close()
	sc := pipeline.SessionConfig{ListenAddr: cfg.ListenAddr, Log: s.log, Defaults: cfg}
	if sc.ListenAddr == "" {
		sc.ListenAddr = fmt.Sprintf(":%d", cfg.Port)
	}
	if a.m == nil || !a.m.Info.Private { // BEP 27
		if node := startDHT(c, cfg, s.log); node != nil {
			defer node.Close()
			sc.DHT = node
		}
	}
	sess, err := pipeline.NewSession(sc)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer sess.Close()
	src := pipeline.FromMetaInfo(a.m)
	if a.m == nil {
		src = pipeline.FromMagnet(a.arg)
	}
	t, err := sess.Add(src, false, s.torrentOptions(c)...)
	if err != nil {
		return fmt.Errorf("serve: %s: %w", a.arg, err)
	}
	srv := &http.Server{Handler: &fileServer{t: t, readahead: c.Int64("readahead"), log: s.log}, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		srv.Close() // ends the requests: their Reads stop waiting
		<-served
	}()
	var prog *progress
	if s.term {
		prog = startProgress(s.out, t.Stats)
		defer prog.stop()
	}
	base := "http://" + ln.Addr().String()
	select {
	case <-t.GotInfo():
		for _, f := range servable(t.Files()) {
			fmt.Fprintln(c.App.Writer, base+"/"+escapePath(f.Path))
		}
	case <-t.Done():
	case <-c.Context.Done():
		return nil
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	}
	select {
	case <-t.Done(): // it seeds until stopped: it ended for an error
		return fmt.Errorf("serve: %s: %w", a.arg, t.Err())
	case <-c.Context.Done(): // Ctrl-C: how serving ends
		return nil
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	}
}

// servable are the files that hold bytes of their own: no padding (BEP 47), no symlinks.
func servable(files []metainfo.File) []metainfo.File {
	return slices.DeleteFunc(slices.Clone(files), func(f metainfo.File) bool { return !f.OnDisk() })
}

// escapePath is a file's path as a URL path, each element escaped.
func escapePath(p []string) string {
	esc := make([]string, len(p))
	for i, e := range p {
		esc[i] = url.PathEscape(e)
	}
	return strings.Join(esc, "/")
}

// fileServer serves a torrent's files at their paths, through pipeline Readers: a request
// waits for the pieces it reads, and they are fetched first.
type fileServer struct {
	t         *pipeline.Torrent
	readahead int64
	log       *slog.Logger
}

func (fs *fileServer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	select { // a magnet link's files are known once its metadata is
	case <-fs.t.GotInfo():
	case <-req.Context().Done():
		return
	}
	files := fs.t.Files()
	if req.URL.Path == "/" {
		fs.list(w, files)
		return
	}
	name := strings.TrimPrefix(req.URL.Path, "/")
	i := slices.IndexFunc(files, func(f metainfo.File) bool { return f.OnDisk() && strings.Join(f.Path, "/") == name })
	if i < 0 {
		http.NotFound(w, req)
		return
	}
	r, err := fs.t.NewReader(i)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer r.Close()
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream" // not sniffed: that would wait for the file's start
	}
	w.Header().Set("Content-Type", ctype)
	fs.log.Debug("serving", "file", name, "range", req.Header.Get("Range"))
	http.ServeContent(w, req, "", time.Time{}, &httpFile{ctx: req.Context(), r: r, readahead: fs.readahead})
}

// list writes the index: a link to each file, with its size.
func (fs *fileServer) list(w http.ResponseWriter, files []metainfo.File) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	title := html.EscapeString(fs.t.Meta().Info.Name)
	fmt.Fprintf(w, "<!doctype html>\n<title>%s</title>\n<h1>%s</h1>\n<ul>\n", title, title)
	for _, f := range servable(files) {
		fmt.Fprintf(w, "<li><a href=\"/%s\">%s</a> (%s)\n", html.EscapeString(escapePath(f.Path)),
			html.EscapeString(strings.Join(f.Path, "/")), humanBytes(f.Length))
	}
	fmt.Fprintf(w, "</ul>\n")
}

// httpFile is a Reader as http.ServeContent uses it: reads with the request's context,
// and seeks that take effect at the first read, so that ServeContent's seeks to learn the
// size move no piece priority, and a range's pieces are the first wanted.
type httpFile struct {
	ctx       context.Context
	r         *pipeline.Reader
	readahead int64
	pos       int64
	started   bool
}

func (f *httpFile) Seek(offset int64, whence int) (int64, error) {
	pos := offset
	switch whence {
	case io.SeekCurrent:
		pos += f.pos
	case io.SeekEnd:
		pos += f.r.Length()
	}
	if pos < 0 || whence < io.SeekStart || whence > io.SeekEnd {
		return 0, errors.New("serve: bad seek")
	}
	f.pos = pos
	if f.started {
		return f.r.Seek(pos, io.SeekStart)
	}
	return pos, nil
}

func (f *httpFile) Read(b []byte) (int, error) {
	if !f.started {
		f.started = true
		if _, err := f.r.Seek(f.pos, io.SeekStart); err != nil {
			return 0, err
		}
		f.r.SetReadahead(f.readahead)
	}
	n, err := f.r.ReadContext(f.ctx, b)
	f.pos += int64(n)
	return n, err
}
