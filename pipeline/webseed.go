package pipeline

import (
	"context"
	"slices"
	"sync/atomic"

	"github.com/reugn/go-streams"

	"github.com/bitstorm/bitstorm/internal/bufpool"
	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/stages"
)

// Web seeds (BEP 19): by default the torrent's url-list; WithWebSeeds replaces it, and
// with no URL turns web seeds off (the CLI's --no-webseeds). graph.go merges their blocks
// with the peers' before Assemble.

// WithWebSeeds sets the web seeds to download from, in place of the torrent's url-list;
// none turns web seeds off.
func WithWebSeeds(urls ...string) Option {
	return func(p *Pipeline) { p.web.urls, p.web.set = slices.Clone(urls), true }
}

// WithWebSeedConfig tunes the web seeds: requests in flight, timeouts, back-off. Its URLs
// and Blocks are the pipeline's.
func WithWebSeedConfig(c stages.WebSeedConfig) Option {
	return func(p *Pipeline) { p.web.cfg = c }
}

// WebSeedStats reports what each web seed of the run did; nil before the piece graph
// starts and for a run without web seeds. Safe to call while Run runs.
func (p *Pipeline) WebSeedStats() []stages.WebSeedStats {
	if src := p.web.src.Load(); src != nil {
		return src.Stats()
	}
	return nil
}

// webSeeds is the pipeline's web seed state (WithWebSeeds, WithWebSeedConfig).
type webSeeds struct {
	urls []string
	set  bool // WithWebSeeds was given: urls replace the torrent's url-list
	cfg  stages.WebSeedConfig
	src  atomic.Pointer[stages.WebSeedSource] // the run's, for WebSeedStats
}

// webSeedSource starts the run's web seeds, whose blocks go into the pool blocks with the
// peers'; nil when there are none.
func (p *Pipeline) webSeedSource(ctx context.Context, env *stages.Env, blocks *bufpool.Pool) streams.Source {
	urls := p.webSeedURLs(p.meta)
	if len(urls) == 0 {
		return nil
	}
	cfg := p.web.cfg
	cfg.URLs, cfg.Blocks = urls, blocks
	lim, _ := p.limits() // made, and checked, by New
	cfg.Down = lim.Down  // the torrent's and its session's download limits hold for web seeds too
	src := stages.WebSeeds(ctx, env, cfg)
	p.web.src.Store(src)
	return src
}

// webSeedURLs is where m's web seeds are: WithWebSeeds's URLs, or the torrent's url-list.
func (p *Pipeline) webSeedURLs(m *metainfo.MetaInfo) []string {
	if p.web.set {
		return p.web.urls
	}
	return m.URLList
}
