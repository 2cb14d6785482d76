package swarmtest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a child started by Start, running in a process group of its own
// whose id is the child's pid.
type Process struct {
	// Name is the program's base name, used in errors.
	Name string
	// LogPath is the file that holds the child's stdout and stderr, or ""
	// when the caller gave its own writers.
	LogPath string

	cmd      *exec.Cmd
	watchdog *exec.Cmd
	wdPipe   *os.File // write end of the watchdog's stdin; closing it kills the group
	logFile  *os.File
	start    time.Time
	done     chan struct{}

	mu        sync.Mutex // guards groupGone and every kill of the group
	groupGone bool       // the group id may now be reused: never signal it again

	// Set before done is closed.
	res     Result
	waitErr error
}

// Result measures a child that has exited.
type Result struct {
	// Wall is the time from start to exit.
	Wall time.Duration
	// User and Sys are the CPU times of the child and of the descendants it
	// waited for (getrusage's RUSAGE_CHILDREN view through wait4).
	User, Sys time.Duration
	// MaxRSS is the peak resident set size in bytes. It counts mmap-ed file
	// pages too (libtorrent 2.0 maps the files it reads and writes).
	MaxRSS int64
	// ExitCode is the exit status, or -1 when a signal ended the child.
	ExitCode int
}

// CPU returns user plus system time.
func (r Result) CPU() time.Duration { return r.User + r.Sys }

// String formats r for logs.
func (r Result) String() string {
	return fmt.Sprintf("wall %.2fs, cpu %.2fs (user %.2fs, sys %.2fs), peak rss %.1f MiB, exit %d",
		r.Wall.Seconds(), r.CPU().Seconds(), r.User.Seconds(), r.Sys.Seconds(),
		float64(r.MaxRSS)/(1<<20), r.ExitCode)
}

// Start starts cmd in a process group of its own and returns at once.
//
// When cmd.Stdout or cmd.Stderr is nil, that stream goes to a new file at
// logPath (nothing is written when logPath is ""). The child is killed, group
// and all, when ctx ends or Stop is called. cmd.Env gets the proxy variables
// removed, since everything here talks to 127.0.0.1.
func Start(ctx context.Context, cmd *exec.Cmd, logPath string) (*Process, error) {
	return start(ctx, baseName(cmd.Path), cmd, logPath, nil)
}

// start is Start with a name for errors and an optional wrapper around the
// log writer for stdout (see lineWatcher).
func start(ctx context.Context, name string, cmd *exec.Cmd, logPath string, wrapStdout func(io.Writer) io.Writer) (*Process, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := &Process{Name: name, cmd: cmd, done: make(chan struct{})}
	if cmd.Stdout == nil || cmd.Stderr == nil {
		if logPath != "" {
			f, err := os.Create(logPath)
			if err != nil {
				return nil, fmt.Errorf("swarmtest: %s: %w", name, err)
			}
			p.logFile, p.LogPath = f, logPath
		}
		var w io.Writer = io.Discard
		if p.logFile != nil {
			w = p.logFile
		}
		if cmd.Stderr == nil {
			cmd.Stderr = w
		}
		if cmd.Stdout == nil {
			if wrapStdout != nil {
				w = wrapStdout(w)
			}
			cmd.Stdout = w
		}
	}
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = withoutProxy(cmd.Env)
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pgid = 0
	if cmd.WaitDelay == 0 {
		// Bounds Wait when a stray grandchild keeps an output pipe open.
		cmd.WaitDelay = 2 * time.Second
	}

	p.start = time.Now()
	if err := cmd.Start(); err != nil {
		p.closeLog()
		return nil, fmt.Errorf("swarmtest: start %s: %w", name, err)
	}
	if err := p.startWatchdog(); err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		p.closeLog()
		return nil, fmt.Errorf("swarmtest: %s: watchdog: %w", name, err)
	}
	go p.wait()
	go func() {
		select {
		case <-ctx.Done():
			p.kill()
		case <-p.done:
		}
	}()
	return p, nil
}

// startWatchdog puts a shell into the child's group that blocks reading a
// pipe whose write end only this process holds. If this process dies, the
// pipe closes and the shell kills its own group, that is the child's.
func (p *Process) startWatchdog() error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	wd := exec.Command("/bin/sh", "-c", "read _; kill -9 0")
	wd.Stdin = r
	wd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: p.cmd.Process.Pid}
	if err := wd.Start(); err != nil {
		w.Close()
		return err
	}
	p.watchdog, p.wdPipe = wd, w
	return nil
}

func (p *Process) wait() {
	err := p.cmd.Wait()
	end := time.Now()
	// The child is gone; end whatever is left of its group (the watchdog,
	// stray grandchildren). The watchdog keeps the group id alive until then.
	p.mu.Lock()
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	p.wdPipe.Close()
	_ = p.watchdog.Wait()
	p.groupGone = true
	p.mu.Unlock()
	p.closeLog()

	res := Result{Wall: end.Sub(p.start), ExitCode: -1}
	if st := p.cmd.ProcessState; st != nil {
		res.ExitCode = st.ExitCode()
		if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
			res.User = time.Duration(ru.Utime.Nano())
			res.Sys = time.Duration(ru.Stime.Nano())
			res.MaxRSS = ru.Maxrss << 10 // KiB on Linux
		}
	}
	p.res = res
	if err != nil {
		p.waitErr = fmt.Errorf("swarmtest: %s: %w%s", p.Name, err, p.tailSuffix())
	}
	close(p.done)
}

func (p *Process) closeLog() {
	if p.logFile != nil {
		p.logFile.Close()
	}
}

// PID returns the child's process id, which is also its process group id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed once the child has exited and its group is gone.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait waits for the child to exit by itself (or through its context) and
// returns its measurements. The error is non-nil when it exited non-zero or
// was killed; it quotes the end of the log.
func (p *Process) Wait() (Result, error) {
	<-p.done
	return p.res, p.waitErr
}

// Stop kills the child's process group and waits until it is gone. Stopping
// a child that has already exited does nothing. It is safe to call more than
// once and from several goroutines.
func (p *Process) Stop() {
	p.kill()
	<-p.done
}

func (p *Process) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.groupGone {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// Tail returns up to n last lines of the log.
func (p *Process) Tail(n int) string {
	if p.LogPath == "" {
		return ""
	}
	return tailFile(p.LogPath, n)
}

func (p *Process) tailSuffix() string {
	t := p.Tail(15)
	if t == "" {
		return ""
	}
	return fmt.Sprintf("\n--- last lines of %s ---\n%s", p.LogPath, t)
}

func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 16 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		_, _ = f.Seek(st.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func baseName(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[i+1:]
	}
	return path
}

func withoutProxy(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "http_proxy", "https_proxy", "all_proxy", "ftp_proxy", "no_proxy":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// lineWatcher passes everything through to w and reports the first complete
// line that starts with prefix.
type lineWatcher struct {
	w      io.Writer
	prefix []byte
	found  chan string
	mu     sync.Mutex
	buf    []byte
	done   bool
}

func newLineWatcher(w io.Writer, prefix string) *lineWatcher {
	return &lineWatcher{w: w, prefix: []byte(prefix), found: make(chan string, 1)}
}

func (lw *lineWatcher) Write(b []byte) (int, error) {
	lw.mu.Lock()
	if !lw.done {
		lw.buf = append(lw.buf, b...)
		for {
			i := bytes.IndexByte(lw.buf, '\n')
			if i < 0 {
				break
			}
			line := lw.buf[:i]
			lw.buf = lw.buf[i+1:]
			if bytes.HasPrefix(line, lw.prefix) {
				lw.found <- string(line)
				lw.done, lw.buf = true, nil
				break
			}
		}
		if len(lw.buf) > 64<<10 { // a line that long is not the one we look for
			lw.buf = nil
		}
	}
	lw.mu.Unlock()
	return lw.w.Write(b)
}

// waitLine waits until the watcher saw its line, the process exited, ctx
// ended or timeout passed.
func waitLine(ctx context.Context, p *Process, lw *lineWatcher, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case line := <-lw.found:
		return line, nil
	case <-p.Done():
		_, err := p.Wait()
		if err == nil {
			err = fmt.Errorf("swarmtest: %s exited before printing %q%s", p.Name, lw.prefix, p.tailSuffix())
		}
		return "", err
	case <-ctx.Done():
		return "", fmt.Errorf("swarmtest: %s: waiting for %q: %w", p.Name, lw.prefix, ctx.Err())
	case <-t.C:
		return "", fmt.Errorf("swarmtest: %s: no %q after %v%s", p.Name, lw.prefix, timeout, p.tailSuffix())
	}
}

// scanLines returns the lines of the log that start with prefix.
func scanLines(path, prefix string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), prefix) {
			out = append(out, sc.Text())
		}
	}
	return out
}
