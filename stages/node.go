package stages

import (
	"github.com/reugn/go-streams"
)

// node is a Flow whose body runs in one goroutine over the flow's raw channels, for stages
// that need more than a map: their own goroutines, a select on the run's context, state.
// The body must drain in until it is closed (a stage that stops reading would block its
// upstream forever, go-streams' early-stop trap); node closes out when the body returns.
type node struct {
	in  chan any
	out chan any
}

var _ streams.Flow = (*node)(nil)

func newNode(outBuf int, body func(in <-chan any, out chan<- any)) *node {
	n := &node{in: make(chan any), out: make(chan any, outBuf)}
	go func() {
		defer close(n.out)
		body(n.in, n.out)
	}()
	return n
}

func (n *node) In() chan<- any  { return n.in }
func (n *node) Out() <-chan any { return n.out }

// Via streams the node's output into f and returns f.
func (n *node) Via(f streams.Flow) streams.Flow {
	go transmit(n, f)
	return f
}

// To streams the node's output into sink and blocks until the sink completes.
func (n *node) To(sink streams.Sink) {
	transmit(n, sink)
	sink.AwaitCompletion()
}

func transmit(from streams.Outlet, to streams.Inlet) {
	for e := range from.Out() {
		to.In() <- e
	}
	close(to.In())
}

// source is a Source over a channel that its producer owns and closes.
type source struct {
	out chan any
}

var _ streams.Source = (*source)(nil)

func (s *source) Out() <-chan any { return s.out }

// Via streams the source's output into f and returns f.
func (s *source) Via(f streams.Flow) streams.Flow {
	go transmit(s, f)
	return f
}

// NewSource returns a Source over out; the caller sends elements and closes out when done.
func NewSource(out chan any) streams.Source { return &source{out: out} }
